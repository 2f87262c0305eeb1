"""What the host has of an ACME-managed certificate: its names, serial and
expiry (read from the host, parsed by the local openssl, as `doctor` does),
and the renewal timer's next run and the renewal job's last result."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

from deploykit.check.tools import run, which
from deploykit.host.base import Host
from deploykit.settings.model import Settings


@dataclass(frozen=True)
class CertificateFacts:
    path: str
    names: tuple[str, ...]
    serial: str
    not_after: str  # ISO 8601, UTC
    days_left: int


@dataclass(frozen=True)
class RenewalFacts:
    timer: str
    enabled: bool
    next_run: str  # systemd's words; "" when the timer is not scheduled
    last_result: str  # "success", "exit-code", ...; "" before the first run
    last_run: str


def certificate(host: Host, path: str, *, now: datetime | None = None) -> CertificateFacts | None:
    """The certificate at PATH on HOST, or None when it is missing or unreadable here."""
    facts = host.read(path)
    openssl = which("openssl")
    if facts is None or openssl is None:
        return None
    fd, copy = tempfile.mkstemp(prefix="deploykit-cert-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(facts.content)
        out = run([openssl, "x509", "-in", copy, "-noout", "-enddate", "-serial", "-ext", "subjectAltName"])
    finally:
        os.unlink(copy)
    if out.returncode != 0:
        return None
    return parse_x509(path, out.text, now or datetime.now(UTC))


def parse_x509(path: str, text: str, now: datetime) -> CertificateFacts | None:
    """`openssl x509 -noout -enddate -serial -ext subjectAltName` output -> facts."""
    end = serial = ""
    names: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("notAfter="):
            end = line.removeprefix("notAfter=")
        elif line.startswith("serial="):
            serial = line.removeprefix("serial=").lower()
        elif line.startswith("DNS:"):
            names = [part.strip().removeprefix("DNS:") for part in line.split(",")]
    if not end:
        return None
    expires = datetime.strptime(end.replace("  ", " "), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    days = int((expires - now).total_seconds() // 86400)
    return CertificateFacts(path, tuple(names), serial, expires.isoformat(), days)


def renewal(host: Host, settings: Settings) -> RenewalFacts:
    timer = PurePosixPath(settings.paths.acme_timer_unit).name
    service = PurePosixPath(settings.paths.acme_service_unit).name
    shown = _show(host, timer, "UnitFileState", "NextElapseUSecRealtime")
    job = _show(host, service, "Result", "ExecMainExitTimestamp")
    return RenewalFacts(
        timer,
        shown.get("UnitFileState") == "enabled",
        shown.get("NextElapseUSecRealtime", ""),
        job.get("Result", "") if job.get("ExecMainExitTimestamp") else "",
        job.get("ExecMainExitTimestamp", ""),
    )


def _show(host: Host, unit: str, *properties: str) -> dict[str, str]:
    result = host.run(["systemctl", "show", *(f"-p{p}" for p in properties), unit])
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
