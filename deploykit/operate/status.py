"""`deploykit status`: the deployed stack as it runs now. Units (service,
socket, nginx) from ``systemctl show``, the server's workers and request count
from its sd_notify STATUS, the socket file, the release in place and the ones
kept, and a health probe through the socket and through nginx.

Gathering goes through the Host; turning output into facts is in ``parse``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from deploykit.apply.probe import Probe, probe
from deploykit.apply.releases import Release, ReleaseStore
from deploykit.errors import DeployKitError, UsageError
from deploykit.host.base import Host
from deploykit.operate.parse import UNIT_PROPERTIES, PathStat, UnitState, path_stat, pids, served, unit_state
from deploykit.settings import processes
from deploykit.settings.model import Settings
from deploykit.tls import facts as tls_facts
from deploykit.tls.facts import CertificateFacts, RenewalFacts

HEALTH_TIMEOUT = 3.0


@dataclass(frozen=True)
class Units:
    """The unit names this stack runs as (named in settings/processes.py)."""

    service: str
    socket: str | None  # None without socket activation
    nginx: str = "nginx.service"
    #: each process's and timer's units: its main unit (service, target or timer), then the services running it
    workers: tuple[str, ...] = ()
    #: the services that run a process's or timer's command (their journal is the command's output)
    commands: tuple[str, ...] = ()
    #: a timer's job service, inactive between runs
    jobs: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Units:
        service, socket = processes.app_units(settings)
        workers: dict[str, None] = {}
        commands: list[str] = []
        jobs: list[str] = []
        for group in processes.groups(settings).values():
            workers.update(dict.fromkeys([group.main, *group.services]))
            commands += group.services
            jobs += group.services if group.kind == "timer" else []
        return cls(service, socket, workers=tuple(workers), commands=tuple(commands), jobs=tuple(jobs))

    def names(self) -> list[str]:
        return [self.service, *([self.socket] if self.socket else []), *self.workers, self.nginx]

    def idle(self) -> frozenset[str]:
        """Units that may be inactive: a socket-activated service, a timer's job."""
        return frozenset([*([self.service] if self.socket else []), *self.jobs])


@dataclass(frozen=True)
class Workers:
    count: int | None  # from STATUS; None when the server does not report it
    requests: int | None
    pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class SocketFile:
    path: str
    exists: bool
    kind: str = ""
    mode: str = ""
    owner: str = ""
    group: str = ""

    @classmethod
    def of(cls, path: str, stat: PathStat | None) -> SocketFile:
        if stat is None:
            return cls(path, False)
        return cls(path, True, stat.kind, f"{stat.mode:04o}", stat.owner, stat.group)


@dataclass(frozen=True)
class ReleaseLine:
    id: str
    status: str
    source: str
    created: str
    finished: str
    current: bool = False
    #: the code version and its release folder ("" without code releases), and the config version
    code_version: str = ""
    code_release: str = ""
    config_version: str = ""

    @classmethod
    def of(cls, release: Release, current: str | None) -> ReleaseLine:
        return cls(
            release.id,
            release.status,
            release.source,
            release.created,
            release.finished,
            release.id == current,
            release.code_version,
            release.code_release,
            release.config_version,
        )


@dataclass(frozen=True)
class StatusReport:
    app: str
    units: tuple[UnitState, ...]
    workers: Workers
    socket: SocketFile
    releases: tuple[ReleaseLine, ...]
    health: tuple[Probe, ...]
    idle_ok: frozenset[str] = field(default_factory=frozenset)  # units that may be inactive (socket-activated)
    #: with nginx.tls.acme: the certificate on the host (None: not issued yet) and the renewal timer
    certificates: tuple[CertificateFacts, ...] = ()
    renewal: RenewalFacts | None = None

    @property
    def current(self) -> ReleaseLine | None:
        return next((r for r in self.releases if r.current), None)

    def unit_ok(self, unit: UnitState) -> bool:
        if unit.active in ("active", "reloading"):
            return True
        return unit.name in self.idle_ok and unit.active == "inactive"

    def problems(self) -> list[str]:
        found = [f"{u.name} is {u.active} ({u.sub})" for u in self.units if not self.unit_ok(u)]
        if not self.socket.exists:
            found.append(f"{self.socket.path} does not exist")
        found += [f"health {p.describe()}" for p in self.health if not p.ok]
        return found

    @property
    def ok(self) -> bool:
        return not self.problems()

    def to_dict(self) -> dict[str, Any]:
        current = self.current
        return {
            "ok": self.ok,
            "app": self.app,
            "units": [{**asdict(u), "ok": self.unit_ok(u)} for u in self.units],
            "workers": asdict(self.workers),
            "socket": asdict(self.socket),
            "release": asdict(current) if current else None,
            "releases": [asdict(r) for r in self.releases],
            "health": [{**asdict(p), "ok": p.ok} for p in self.health],
            "problems": self.problems(),
            "certificates": [asdict(c) for c in self.certificates],
            "renewal": asdict(self.renewal) if self.renewal else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def require_commands(host: Host, command: str) -> None:
    if not host.runs_commands:
        raise UsageError(f"deploykit {command} asks a live host; --root DIR runs no commands")


def require_systemd(host: Host, command: str) -> None:
    """systemd's own test (sd_booted): /run/systemd/system exists only when systemd is PID 1."""
    if not host.run(["test", "-d", "/run/systemd/system"]).ok:
        raise DeployKitError(
            f"deploykit {command}: this machine does not run systemd (no /run/systemd/system)",
            hint="Run it on the host the app was deployed to; the units, socket and health are read through systemd.",
        )


def unit_states(host: Host, names: list[str]) -> list[UnitState]:
    argv = ["systemctl", "show", "--timestamp=unix", *(f"-p{p}" for p in UNIT_PROPERTIES)]
    return [unit_state(name, host.run([*argv, name]).stdout) for name in names]


def workers(host: Host, service: UnitState) -> Workers:
    count, requests = served(service.status_text)
    children: list[int] = []
    if service.main_pid:
        children = pids(host.run(["ps", "-o", "pid=", "--ppid", str(service.main_pid)]).stdout)
    return Workers(count, requests, tuple(children))


def socket_file(host: Host, path: str) -> SocketFile:
    result = host.run(["stat", "-L", "-c", "%a %U %G %F", path])
    return SocketFile.of(path, path_stat(result.stdout) if result.ok else None)


def releases(host: Host, settings: Settings) -> tuple[ReleaseLine, ...]:
    store = ReleaseStore(host, settings.paths.state_dir)
    current = store.current()
    return tuple(ReleaseLine.of(r, current) for r in sorted(store.all(), key=lambda r: r.id))


def gather_status(host: Host, settings: Settings, *, health_timeout: float = HEALTH_TIMEOUT) -> StatusReport:
    """Everything `deploykit status` shows, read from HOST."""
    require_commands(host, "status")
    require_systemd(host, "status")
    names = Units.of(settings)
    states = unit_states(host, names.names())
    idle = names.idle()
    tls = settings.nginx.tls
    acme = tls is not None and tls.acme is not None
    found = tls_facts.certificate(host, tls.cert_path) if tls is not None and acme else None
    return StatusReport(
        app=settings.app.name,
        units=tuple(states),
        workers=workers(host, states[0]),
        socket=socket_file(host, settings.paths.socket),
        releases=releases(host, settings),
        health=tuple(probe(host, settings, timeout=health_timeout)),
        idle_ok=idle,
        certificates=(found,) if found else (),
        renewal=tls_facts.renewal(host, settings) if acme else None,
    )
