"""`systemd-analyze verify` and `systemd-analyze security --offline` on the units.

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
from deploykit.render.bundle import Bundle, Kind
from deploykit.settings.layout import code_location
from deploykit.settings.model import Settings

VERIFY = "systemd-analyze verify"
SECURITY = "systemd-analyze security"
_NOT_EXECUTABLE = re.compile(r"Command (\S+) is not executable: No such file or directory")
_EXPOSURE = re.compile(r"Overall exposure level for \S+: ([0-9.]+) (\S+)")


def _missing(name: str) -> CheckResult:
    hint = INSTALL_HINTS["systemd-analyze"]
    return CheckResult(name, (Finding(name, "error", "systemd-analyze is not installed", hint=hint),), False)


def _write_units(bundle: Bundle, folder: Path) -> dict[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind in (Kind.SERVICE_UNIT, Kind.SOCKET_UNIT):
        unit = bundle.by_kind(kind)
        if unit is not None:
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
        if missing and missing.group(1).startswith(code_location(settings).venv + "/"):
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


def check_security(settings: Settings, bundle: Bundle, workdir: Path) -> CheckResult:
    tool = which("systemd-analyze")
    if tool is None:
        return _missing(SECURITY)
    units = _write_units(bundle, workdir / "systemd")
    service = next(local for local, real in units.items() if real == settings.paths.service_unit)
    out = run([tool, "security", "--offline=yes", "--no-pager", str(service)])
    match = _EXPOSURE.search(out.text)
    if match is None:
        message = f"could not read an exposure score: {out.text[-500:]}"
        return CheckResult(SECURITY, (Finding(SECURITY, "error", message, settings.paths.service_unit),))
    score, band = float(match.group(1)), match.group(2)
    limit = settings.systemd.security_threshold
    if score > limit:
        finding = Finding(
            SECURITY,
            "error",
            f"exposure score {score} {band} is above the threshold {limit}",
            settings.paths.service_unit,
            'use systemd.hardening = "strict" (scores about 1.3), or raise systemd.security_threshold',
        )
        return CheckResult(SECURITY, (finding,))
    return CheckResult(
        SECURITY, (Finding(SECURITY, "info", f"exposure score {score} {band}", settings.paths.service_unit),)
    )
