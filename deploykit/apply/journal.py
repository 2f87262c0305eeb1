"""The in-progress journal of an apply: ``state_dir/journal.json``.

Rules:
- apply writes the journal (atomically, fsynced) before its first change to
  the host, and rewrites it *before* each step and each service action it
  starts (write-ahead: what the journal names may have happened, what it does
  not name has not);
- the journal is removed only when the transaction ended cleanly: the release
  recorded as applied, or the previous state fully restored;
- a journal found by the next ``plan``/``apply`` means an apply was killed
  (SIGKILL, power loss, OOM) in the middle. That apply never passed its health
  gate, so the next run **restores** the last known-good state from the
  journal and the release's ``before/`` copies, then plans again from there.
  Finishing the service actions instead would start a stack that was never
  validated nor health-checked.

The journal is also what the engine hands ``restore`` after a failed step, so
the in-process undo and the recovery after a kill are one code path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from deploykit.errors import DeployKitError
from deploykit.host.base import Host

NAME = "journal.json"


@dataclass(frozen=True)
class UnitBefore:
    """A unit apply may touch, and its state before the apply (None: unknown or absent)."""

    name: str
    enabled: bool | None
    active: bool | None


@dataclass(frozen=True)
class Prepared:
    """What "prepare" created or set aside, so it can be undone."""

    user: str | None = None
    group: str | None = None
    dirs: tuple[str, ...] = ()
    venv: str = ""
    venv_created: bool = False
    venv_saved: str | None = None
    #: a code release folder this apply made (removed on undo)
    release_dir: str = ""


@dataclass(frozen=True)
class Journal:
    release: str
    source: str
    step: str
    #: the files the plan writes (their previous contents are in the release's before/)
    written: tuple[str, ...] = ()
    site_link: str = ""
    links_site: bool = False
    site_link_before: str | None = None
    #: the bundle's units, socket first, as they were before
    units: tuple[UnitBefore, ...] = ()
    #: units a service action was started on, and whether daemon-reload / nginx reload began
    touched: tuple[str, ...] = ()
    daemon_reload: bool = False
    nginx_reload: bool = False
    #: units a `disable --now` was started on (a process or timer deleted from the settings)
    disabled: tuple[str, ...] = ()
    prepared: Prepared = field(default_factory=Prepared)
    #: the code releases' `current` link, where it pointed before, and whether the switch began
    code_link: str = ""
    code_link_before: str | None = None
    code_switched: bool = False

    def at(self, step: str) -> Journal:
        return replace(self, step=step)

    def describe(self) -> str:
        return (
            f"an apply ({self.source}, release {self.release}) was interrupted during {self.step!r}; "
            "its changes will be undone first (the last known-good state), then planned again"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Journal:
        data: dict[str, Any] = json.loads(text)
        data["units"] = tuple(UnitBefore(**u) for u in data.get("units", ()))
        prepared = dict(data.get("prepared", {}))
        prepared["dirs"] = tuple(prepared.get("dirs", ()))
        data["prepared"] = Prepared(**prepared)
        for key in ("written", "touched", "disabled"):
            data[key] = tuple(str(p) for p in data.get(key, ()))
        journal = cls(**data)
        if not isinstance(journal.release, str) or not journal.release.replace("T", "").rstrip("Z").isdigit():
            raise ValueError(f"bad release id {journal.release!r}")
        return journal


def path(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/{NAME}"


def write(host: Host, state_dir: str, journal: Journal) -> None:
    host.write(path(state_dir), journal.to_json().encode(), mode=0o600)


def clear(host: Host, state_dir: str) -> None:
    host.remove(path(state_dir))


def read(host: Host, state_dir: str) -> Journal | None:
    """The journal an interrupted apply left, or None."""
    facts = host.read(path(state_dir))
    if facts is None:
        return None
    try:
        return Journal.from_json(facts.content.decode())
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise DeployKitError(
            f"{path(state_dir)} is unreadable ({exc}): an interrupted apply left the host in an unknown state",
            hint="Compare the host with `deploykit plan`, put things right, then remove that file.",
        ) from exc
