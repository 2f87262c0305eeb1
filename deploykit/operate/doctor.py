"""`deploykit doctor`: the usual reasons a deployed stack stops serving, each a
finding with a fix hint (the ``check`` findings model, so the table and the
JSON report are the same as `deploykit check`'s).

Each check gathers its facts through the Host, then judges them in a pure
function (``*_findings``), which the unit tests drive with canned facts. On a
staging root (no commands run) only the file checks run; the rest are skipped."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from deploykit.apply import journal as journals
from deploykit.apply.releases import Release, ReleaseStore
from deploykit.check.consistency import certificate_expiry
from deploykit.check.findings import CheckResult, Finding, Report, Severity
from deploykit.check.tools import which
from deploykit.errors import DeployKitError, NoRelease
from deploykit.host.base import CommandResult, FileFacts, Host
from deploykit.operate.parse import DiskUsage, Listener, PathStat, can_connect, disk_usage, groups, listeners, path_stat
from deploykit.operate.status import Units
from deploykit.render import Bundle, render
from deploykit.settings.model import Settings
from deploykit.tls import facts as tls_facts

DISK_WARN, DISK_ERROR = 90, 97
JOURNAL_LINES = 10


# judging (pure)
def socket_findings(
    path: str, stat: PathStat | None, user: str, user_groups: set[str] | None, units: Units, mode: str
) -> list[Finding]:
    """Whether nginx's worker user can connect to the app's socket (MODE: the rendered SocketMode)."""
    recreate = f"systemctl restart {' '.join(filter(None, (units.socket, units.service)))}"
    if stat is None:
        return [
            Finding("socket", "error", f"{path} does not exist", path, f"{recreate} creates it", code="socket-missing")
        ]
    if stat.kind != "socket":
        return [
            Finding(
                "socket",
                "error",
                f"{path} is a {stat.kind}, not a socket",
                path,
                f"remove it; {recreate}",
                code="socket-not-a-socket",
            )
        ]
    if user_groups is None:
        hint = "set nginx.user to the user of nginx's workers (the `user` line of nginx.conf)"
        message = f"nginx.user {user!r} does not exist on the host"
        return [Finding("socket", "error", message, path, hint, code="socket-nginx-user-missing")]
    if can_connect(stat, user, user_groups):
        return []
    who = f"nginx (user {user}, groups {' '.join(sorted(user_groups))})"
    shown = f"{stat.mode:04o} {stat.owner}:{stat.group}"
    message = f"{who} cannot connect to {path}: it is {shown}; nginx answers 502 (connect() failed: Permission denied)"
    hint = f"chown root:{user} {path} && chmod {mode} {path} fixes it now; {recreate} recreates it as rendered"
    return [Finding("socket", "error", message, path, hint, code="socket-permission")]


def port_findings(port: int, found: list[Listener]) -> list[Finding]:
    """Port PORT should be held by nginx and nothing else."""
    if not found:
        return [
            Finding(
                "port",
                "error",
                f"nothing listens on port {port}",
                None,
                "systemctl start nginx; `journalctl -u nginx -n 20` says why it stopped",
                code="port-nothing-listens",
            )
        ]
    findings = []
    for names, pids in sorted({(listener.processes, listener.pids) for listener in found}):
        if not names:
            findings.append(
                Finding(
                    "port",
                    "warning",
                    f"port {port} is held by a process ss cannot name",
                    None,
                    "run deploykit doctor as root to see which",
                    code="port-unnamed-holder",
                )
            )
        elif set(names) != {"nginx"}:
            who = ", ".join(names) + (f" (pid {', '.join(map(str, pids))})" if pids else "")
            findings.append(
                Finding(
                    "port",
                    "error",
                    f"port {port} is held by {who}, not nginx",
                    None,
                    "stop it (systemctl disable --now <its unit>) or set nginx.listen to a free port, then apply",
                    code="port-held-by-other",
                )
            )
    return findings


def unit_findings(states: dict[str, str], journals: dict[str, str], idle_ok: set[str]) -> list[Finding]:
    """Units that failed (with their last log lines) or are not running."""
    findings = []
    for unit, state in states.items():
        if state == "failed":
            log = journals.get(unit, "").strip()
            message = f"{unit} has failed" + (f"; its last log lines:\n{log}" if log else "")
            hint = f"fix the cause, then systemctl reset-failed {unit} && systemctl start {unit}"
            findings.append(Finding("units", "error", message, None, hint, code="unit-failed"))
        elif state not in ("active", "reloading", "activating") and not (state == "inactive" and unit in idle_ok):
            hint = f"systemctl start {unit}"
            findings.append(Finding("units", "error", f"{unit} is {state}", None, hint, code="unit-not-running"))
    return findings


def disk_findings(usage: Iterable[tuple[str, DiskUsage]]) -> list[Finding]:
    """Filesystems over 90% (warning) or 97% (error) full, each named once with the paths on it."""
    paths: dict[str, list[str]] = {}
    mounts: dict[str, DiskUsage] = {}
    for path, disk in usage:
        paths.setdefault(disk.mount, []).append(path)
        mounts[disk.mount] = disk
    findings = []
    for mount, disk in mounts.items():
        if disk.percent > DISK_WARN:
            severity: Severity = "error" if disk.percent > DISK_ERROR else "warning"
            free = f"{disk.available_kb // 1024} MiB free; holds {', '.join(paths[mount])}"
            findings.append(
                Finding(
                    "disk",
                    severity,
                    f"{mount} is {disk.percent}% full ({free})",
                    None,
                    "free space: journalctl --vacuum-size=200M, apt-get clean, old logs; fewer deploy.keep_releases",
                    code="disk-full",
                )
            )
    return findings


def clock_findings(ntp: CommandResult, container: bool) -> list[Finding]:
    """``timedatectl show -p NTPSynchronized --value``; a container shares its machine's clock."""
    if ntp.returncode == 127:
        message = "clock synchronisation unknown: timedatectl is not installed"
        return [Finding("clock", "info", message, code="clock-timedatectl-missing")]
    answer = ntp.stdout.strip()
    if ntp.ok and answer == "yes":
        return []
    if not ntp.ok:
        message = f"clock synchronisation unknown: timedatectl: {ntp.output()}"
        return [Finding("clock", "info", message, code="clock-unknown")]
    if container:
        return [
            Finding(
                "clock",
                "info",
                "the clock is not NTP-synchronised here; a container shares the clock of the machine that runs it",
                None,
                "check NTP on that machine",
                code="clock-container",
            )
        ]
    return [
        Finding(
            "clock",
            "warning",
            "the clock is not NTP-synchronised",
            None,
            "timedatectl set-ntp true (systemd-timesyncd), or install chrony; TLS, tokens and log times depend on it",
            code="clock-not-synchronised",
        )
    ]


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def drift_findings(release: Release | None, on_host: dict[str, FileFacts | None], rendered: Bundle) -> list[Finding]:
    """Files changed on the host since the release in place, and settings changed since it."""
    if release is None:
        return [
            Finding(
                "drift",
                "warning",
                "no release recorded: this stack was not installed by deploykit apply",
                None,
                "deploykit apply",
                code="drift-no-release",
            )
        ]
    findings = []
    for entry in release.files:
        path, facts = entry["path"], on_host.get(entry["path"])
        if facts is None:
            findings.append(
                Finding(
                    "drift",
                    "error",
                    f"{path} was deleted since release {release.id}",
                    path,
                    "deploykit apply puts it back",
                    code="drift-file-deleted",
                )
            )
        elif _sha(facts.content) != entry["sha256"]:
            findings.append(
                Finding(
                    "drift",
                    "warning",
                    f"{path} was changed on the host since release {release.id} (edited by hand?)",
                    path,
                    "move the change into deploykit.toml; `deploykit plan` shows it, `deploykit apply` replaces it",
                    code="drift-file-changed",
                )
            )
        elif facts.mode != entry["mode"]:
            findings.append(
                Finding(
                    "drift",
                    "warning",
                    f"{path} is mode {facts.mode:04o}, release {release.id} installed {entry['mode']:04o}",
                    path,
                    "deploykit apply resets it",
                    code="drift-mode-changed",
                )
            )
    return findings + pending_findings(release, rendered)


def pending_findings(release: Release, rendered: Bundle) -> list[Finding]:
    """The settings render other files than the release installed: changes not applied yet."""
    installed = {e["path"]: e["sha256"] for e in release.files}
    now = {f.path: _sha(f.content.encode()) for f in rendered}
    changed = sorted(p for p in installed.keys() | now.keys() if installed.get(p) != now.get(p))
    if not changed:
        return []
    return [
        Finding(
            "drift",
            "warning",
            f"pending changes: the settings render {len(changed)} file(s) differently "
            f"from release {release.id}: {', '.join(changed)}",
            None,
            "run deploykit plan to see them, deploykit apply to install them",
            code="drift-pending-changes",
        )
    ]


# gathering (through the host)
@dataclass(frozen=True)
class Doctor:
    host: Host
    settings: Settings

    def socket(self) -> list[Finding]:
        path, user = self.settings.paths.socket, self.settings.nginx.user
        stat = self.host.run(["stat", "-L", "-c", "%a %U %G %F", path])
        ids = self.host.run(["id", "-G", "-n", user])
        found = path_stat(stat.stdout) if stat.ok else None
        user_groups = groups(ids.stdout) if ids.ok else None
        mode = self.settings.systemd.socket_mode
        return socket_findings(path, found, user, user_groups, Units.of(self.settings), mode)

    def port(self) -> list[Finding]:
        nginx = self.settings.nginx
        ports = [nginx.listen, *([nginx.listen_tls] if nginx.tls is not None else [])]
        findings = []
        for port in ports:
            result = self.host.run(["ss", "-ltnpH", f"sport = :{port}"])
            if result.returncode == 127:
                message = "ss is not installed on the host; ports not checked"
                return [Finding("port", "info", message, code="port-ss-missing")]
            findings += port_findings(port, listeners(result.stdout))
        return findings

    def units(self) -> list[Finding]:
        units = Units.of(self.settings)
        names = units.names()
        answer = self.host.run(["systemctl", "is-failed", *names]).stdout.split()
        states = {name: answer[i] if i < len(answer) else "unknown" for i, name in enumerate(names)}
        journals = {
            unit: self.host.run(["journalctl", "-u", unit, "-n", str(JOURNAL_LINES), "-o", "cat", "--no-pager"]).stdout
            for unit, state in states.items()
            if state == "failed"
        }
        return unit_findings(states, journals, set(units.idle()))

    def certificate(self) -> list[Finding]:
        tls = self.settings.nginx.tls
        if tls is None:
            return []
        facts = self.host.read(tls.cert_path)
        if facts is None:
            return [
                Finding(
                    "certificate",
                    "error",
                    f"{tls.cert_path} does not exist on the host",
                    tls.cert_path,
                    "deploykit apply issues it (nginx.tls.acme)"
                    if tls.acme
                    else "issue it (e.g. certbot certonly --webroot) or fix nginx.tls.certificate",
                    code="certificate-missing",
                )
            ]
        if which("openssl") is None:
            message = "openssl is not installed here; the certificate was not checked"
            return [Finding("certificate", "info", message, code="certificate-openssl-missing")]
        fd, copy = tempfile.mkstemp(prefix="deploykit-doctor-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(facts.content)
            found = certificate_expiry(copy, tls.cert_path, tls.cert_path, check="certificate")
            hint = "deploykit renew" if tls.acme else "renew it (certbot renew), then systemctl reload nginx"
            findings = [
                Finding(
                    f.check,
                    f.severity,
                    f.message,
                    f.file,
                    hint,
                    code="certificate-expired" if f.severity == "error" else "certificate-expiring",
                )
                for f in found
            ]
            cert = tls_facts.certificate(self.host, tls.cert_path) if tls.acme and not findings else None
            if cert is not None:
                message = f"{tls.cert_path} expires {cert.not_after} ({cert.days_left} days)"
                findings.append(Finding("certificate", "info", message, tls.cert_path, code="certificate-expiry"))
            return findings
        finally:
            os.unlink(copy)

    def disk(self) -> list[Finding]:
        paths = dict.fromkeys([self.settings.paths.state_dir, "/var/log", self.settings.app.working_dir])
        usage = []
        for path in paths:
            result = self.host.run(["df", "-P", path])
            if result.returncode == 127:
                message = "df is not installed on the host; disk space not checked"
                return [Finding("disk", "info", message, code="disk-df-missing")]
            usage += [(path, disk) for disk in disk_usage(result.stdout)]
        return disk_findings(usage)

    def clock(self) -> list[Finding]:
        ntp = self.host.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
        container = self.host.run(["systemd-detect-virt", "--container"]).ok
        return clock_findings(ntp, container)

    def drift(self) -> list[Finding]:
        store = ReleaseStore(self.host, self.settings.paths.state_dir)
        current = store.current()
        try:
            release = store.get(current) if current else None
        except NoRelease as exc:
            return [Finding("drift", "error", f"{exc}, though {store.state_dir}/current names it", None,
                            "deploykit apply records a new release", code="drift-current-missing")]  # fmt: skip
        on_host = {e["path"]: self.host.read(e["path"]) for e in (release.files if release else [])}
        return self.interrupted(store) + drift_findings(release, on_host, render(self.settings))

    def interrupted(self, store: ReleaseStore) -> list[Finding]:
        """An apply killed half-way (its journal), and release folders that are skipped."""
        hint = "inspect, then remove that folder"
        found = [Finding("releases", "warning", w, None, hint, code="releases-skipped") for w in store.scan()[1]]
        try:
            journal = journals.read(self.host, store.state_dir)
        except DeployKitError as exc:
            where = journals.path(store.state_dir)
            return [*found, Finding("drift", "error", str(exc), where, exc.hint, code="drift-journal-unreadable")]
        if journal is not None:
            found.append(Finding("drift", "error", journal.describe(), journals.path(store.state_dir),
                                 "deploykit apply undoes it first, then applies",
                                 code="drift-interrupted-apply"))  # fmt: skip
        return found

    def renewal(self) -> list[Finding]:
        """With nginx.tls.acme: the renewal timer is enabled and its last run succeeded."""
        tls = self.settings.nginx.tls
        if tls is None or tls.acme is None:
            return []
        facts = tls_facts.renewal(self.host, self.settings)
        unit = self.settings.paths.acme_service_unit
        found = []
        if not facts.enabled:
            message = f"{facts.timer} is not enabled"
            found.append(Finding("renewal", "error", message, unit, "deploykit apply", code="renewal-timer-disabled"))
        if facts.last_result and facts.last_result != "success":
            name = PurePosixPath(unit).name
            log = self.host.run(["journalctl", "-u", name, "-n", str(JOURNAL_LINES), "-o", "cat", "--no-pager"])
            message = f"the last renewal failed ({facts.last_result}, {facts.last_run})"
            message = f"{message}:\n{log.stdout.strip()}"
            found.append(Finding("renewal", "error", message, unit, "deploykit renew", code="renewal-failed"))
        return found

    def checks(self) -> list[tuple[str, Callable[[], list[Finding]], bool]]:
        """(name, check, needs commands)."""
        return [
            ("units", self.units, True),
            ("socket", self.socket, True),
            ("port", self.port, True),
            ("drift", self.drift, False),
            ("certificate", self.certificate, False),
            ("renewal", self.renewal, True),
            ("disk", self.disk, True),
            ("clock", self.clock, True),
        ]


def diagnose(host: Host, settings: Settings) -> Report:
    """Run every doctor check on HOST, each timed; checks that need commands are skipped on a staging root."""
    results = []
    for name, check, needs_commands in Doctor(host, settings).checks():
        if needs_commands and not host.runs_commands:
            results.append(CheckResult(name, ran=False))
            continue
        started = time.perf_counter()
        findings = tuple(check())
        results.append(CheckResult(name, findings, True, time.perf_counter() - started))
    return Report(tuple(results))
