"""What an apply did, step by step: shown live by the console and printed
as JSON with ``--format json`` (the Ansible role reads ``changed``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from deploykit.apply.probe import Probe

StepStatus = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class Step:
    name: str
    status: StepStatus
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    changed: bool = False
    release: str | None = None
    source: str = "apply"
    actions: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    health: list[Probe] = field(default_factory=list)
    failed_step: str = ""
    error: str = ""
    #: problems that did not block the apply (a release folder with a bad manifest, skipped)
    warnings: list[str] = field(default_factory=list)
    restored: bool | None = None  # None: nothing failed; otherwise whether the previous state is back

    def to_json(self) -> str:
        data = asdict(self)
        data["ok"] = not self.failed_step
        data.pop("diff")  # may hold file contents; `plan` shows the (masked) diff
        return json.dumps(data, indent=2)


class Progress(Protocol):
    def start(self, name: str) -> None: ...

    def done(self, step: Step) -> None: ...

    def output(self, line: str) -> None:
        """A line a running step printed (a hook's output), as it comes."""

    def update(self, phase: str, done: float | None = None, total: float | None = None, *, timed: bool = False) -> None:
        """Where a long step is: its PHASE, DONE of TOTAL (wheels), or with TIMED, seconds waited of TOTAL."""


class Quiet:
    """Progress that shows nothing (``--format json``, library use)."""

    def start(self, name: str) -> None:
        pass

    def done(self, step: Step) -> None:
        pass

    def output(self, line: str) -> None:
        pass

    def update(self, phase: str, done: float | None = None, total: float | None = None, *, timed: bool = False) -> None:
        pass
