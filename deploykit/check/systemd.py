"""`systemd-analyze verify` and `systemd-analyze security --offline` on the units (the
app's, and every process's and timer's), and `systemd-analyze calendar` on each
timer's ``on_calendar``.

`verify` exits 0 on unknown keys and bad values (it only warns), so any line
it prints is a finding. One message is expected before the first apply and
is reported as info: the app's own executables (in its venv) not existing yet
on the machine running the check.
"""

from __future__ import annotations

import re
from pathlib import Path

from deploykit.check.findings import CheckResult, Finding
from deploykit.check.tools import INSTALL_HINTS, run, which
from deploykit.render.bundle import UNIT_KINDS, Bundle
from deploykit.settings.layout import code_location
from deploykit.settings.model import Settings

VERIFY = "systemd-analyze verify"
SECURITY = "systemd-analyze security"
CALENDAR = "systemd-analyze calendar"
_NOT_EXECUTABLE = re.compile(r"Command (\S+) is not executable: No such file or directory")
_NEXT = re.compile(r"Next elapse: (.+)")
_EXPOSURE = re.compile(r"Overall exposure level for \S+: ([0-9.]+) (\S+)")


def _missing(name: str) -> CheckResult:
    hint = INSTALL_HINTS["systemd-analyze"]
    return CheckResult(name, (Finding(name, "error", "systemd-analyze is not installed", hint=hint),), False)


def _write_units(bundle: Bundle, folder: Path) -> dict[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for unit in bundle:
        if unit.kind in UNIT_KINDS:
            local = folder / Path(unit.path).name
            local.write_text(unit.content, encoding="utf-8")
            written[local] = unit.path
    return written


def check_verify(settings: Settings, bundle: Bundle, workdir: Path) -> CheckResult:
    tool = which("systemd-analyze")
    if tool is None:
        return _missing(VERIFY)
    units = _write_units(bundle, workdir / "systemd")
    out = run([tool, "verify", "--man=no", *map(str, units)])
    findings = []
    for line in out.text.splitlines():
        file = next((real for local, real in units.items() if str(local) in line or local.name in line), None)
        for local, real in units.items():
            line = line.replace(str(local), real)
        missing = _NOT_EXECUTABLE.search(line)
        if missing and _installed_later(settings, missing.group(1)):
            findings.append(
                Finding(
                    VERIFY,
                    "info",
                    f"{missing.group(1)} does not exist on this machine yet",
                    file,
                    "expected on a machine where the app's venv is not installed (e.g. in CI)",
                )
            )
        else:
            findings.append(Finding(VERIFY, "error", line, file))
    if out.returncode != 0 and not findings:
        findings.append(Finding(VERIFY, "error", f"systemd-analyze verify exited {out.returncode}"))
    return CheckResult(VERIFY, tuple(findings))


def _installed_later(settings: Settings, command: str) -> bool:
    """The app's venv, and the ACME client in deploykit's venv, are installed on the host, not in CI."""
    tls = settings.nginx.tls
    return command.startswith(code_location(settings).venv + "/") or (
        tls is not None and tls.acme is not None and command == tls.acme.client
    )


def check_security(settings: Settings, bundle: Bundle, workdir: Path) -> CheckResult:
    """The exposure score of every service unit (the app's, each process's and timer job's) against the threshold."""
    tool = which("systemd-analyze")
    if tool is None:
        return _missing(SECURITY)
    units = _write_units(bundle, workdir / "systemd")
    findings = []
    for local, real in units.items():
        if local.suffix == ".service":
            findings.append(_score(tool, settings, local, real))
    return CheckResult(SECURITY, tuple(findings))


def _score(tool: str, settings: Settings, local: Path, real: str) -> Finding:
    out = run([tool, "security", "--offline=yes", "--no-pager", str(local)])
    match = _EXPOSURE.search(out.text)
    if match is None:
        return Finding(SECURITY, "error", f"could not read an exposure score: {out.text[-500:]}", real)
    score, band = float(match.group(1)), match.group(2)
    limit = settings.systemd.security_threshold
    if score > limit:
        return Finding(
            SECURITY,
            "error",
            f"exposure score {score} {band} is above the threshold {limit}",
            real,
            'use systemd.hardening = "strict" (scores about 1.3), or raise systemd.security_threshold',
        )
    return Finding(SECURITY, "info", f"exposure score {score} {band}", real)


def check_calendar(settings: Settings) -> CheckResult:
    """systemd's own parser on each timer's on_calendar (the model's screen is pure, this is the real one)."""
    if not settings.timers:
        return CheckResult(CALENDAR, ran=False)
    tool = which("systemd-analyze")
    if tool is None:
        return _missing(CALENDAR)
    findings = []
    for name, timer in settings.timers.items():
        out = run([tool, "calendar", timer.on_calendar])
        field = f"timers.{name}.on_calendar"
        if out.returncode != 0:
            why = out.text.strip().splitlines()[-1] if out.text.strip() else f"exit {out.returncode}"
            findings.append(Finding(CALENDAR, "error", f"{field} = {timer.on_calendar!r}: systemd refuses it: {why}"))
        else:
            following = _NEXT.search(out.text)
            when = f"; next: {following.group(1).strip()}" if following else ""
            findings.append(Finding(CALENDAR, "info", f"{field} = {timer.on_calendar!r}{when}"))
    return CheckResult(CALENDAR, tuple(findings))
