"""What the host has now, for the files and units a bundle touches. Reading
goes through the Host protocol; turning command output into facts is pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from deploykit.host.base import CommandResult, FileFacts, Host
from deploykit.render.bundle import Bundle, Kind
from deploykit.settings.model import Settings


@dataclass(frozen=True)
class UnitFacts:
    enabled: bool | None  # None: unknown (no systemd to ask, e.g. a staging root)
    active: bool | None


@dataclass(frozen=True)
class HostState:
    files: dict[str, FileFacts | None] = field(default_factory=dict)
    site_link: str | None = None
    units: dict[str, UnitFacts] = field(default_factory=dict)
    tracks_owners: bool = False
    #: an interrupted apply's undo, still to run (this state is the host as it will be after it)
    recovery: str = ""


def unit_facts(enabled: CommandResult, active: CommandResult) -> UnitFacts:
    """`systemctl is-enabled` / `is-active` answers; exit codes other than 0/1-3 mean unknown."""

    def answer(result: CommandResult, yes: set[str]) -> bool | None:
        if result.returncode < 0 or result.returncode == 127:
            return None
        return result.stdout.strip() in yes

    return UnitFacts(answer(enabled, {"enabled", "enabled-runtime", "static"}), answer(active, {"active", "reloading"}))


def gather(host: Host, bundle: Bundle, settings: Settings) -> HostState:
    files = {f.path: host.read(f.path) for f in bundle}
    units = {}
    for kind in (Kind.SERVICE_UNIT, Kind.SOCKET_UNIT, Kind.ACME_TIMER):
        unit = bundle.by_kind(kind)
        if unit is not None:
            name = PurePosixPath(unit.path).name
            units[name] = unit_facts(
                host.run(["systemctl", "is-enabled", name]), host.run(["systemctl", "is-active", name])
            )
    return HostState(files, host.link_target(settings.paths.nginx_site_enabled), units, host.tracks_owners)
