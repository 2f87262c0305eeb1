"""Findings: what a validator reports. Validators return them; they never print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    message: str
    file: str | None = None
    hint: str | None = None
    #: A stable name for the kind of finding (doctor's: each has an entry in docs/troubleshooting.md).
    code: str | None = None

    @property
    def counts(self) -> bool:
        """Info findings are shown but do not fail `deploykit check`."""
        return self.severity != "info"


@dataclass(frozen=True)
class CheckResult:
    """One validator's outcome; ``ran`` is False when its tool is missing."""

    name: str
    findings: tuple[Finding, ...] = ()
    ran: bool = True
    seconds: float = 0.0


@dataclass(frozen=True)
class Report:
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for r in self.results for f in r.findings)

    @property
    def failed(self) -> bool:
        return any(f.counts for f in self.findings)
