"""What the host has now, for the files and units a bundle touches. Reading
goes through the Host protocol; turning command output into facts is pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from deploykit.host.base import CommandResult, FileFacts, Host
from deploykit.render.bundle import Bundle, Kind
from deploykit.settings import processes
from deploykit.settings.model import Settings
from deploykit.settings.processes import MARKER, UnitGroup


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
    #: unit files of the app's processes and timers that the settings no longer have (apply removes them)
    orphans: tuple[str, ...] = ()


def unit_facts(enabled: CommandResult, active: CommandResult) -> UnitFacts:
    """`systemctl is-enabled` / `is-active` answers; exit codes other than 0/1-3 mean unknown."""

    def answer(result: CommandResult, yes: set[str]) -> bool | None:
        if result.returncode < 0 or result.returncode == 127:
            return None
        return result.stdout.strip() in yes

    return UnitFacts(answer(enabled, {"enabled", "enabled-runtime", "static"}), answer(active, {"active", "reloading"}))


def worker_groups(paths: Iterable[str]) -> list[UnitGroup]:
    """The processes and timers whose unit files are PATHS (see settings/processes.py)."""
    return processes.from_files([PurePosixPath(p).name for p in paths])


def bundle_workers(bundle: Bundle) -> list[UnitGroup]:
    return worker_groups(f.path for f in bundle if f.kind in (Kind.PROCESS_UNIT, Kind.TIMER_UNIT))


def orphans(host: Host, bundle: Bundle, settings: Settings) -> dict[str, FileFacts]:
    """The app's process and timer unit files on the host that BUNDLE does not have: the ones the
    marker line names this app in (never another app's, whose name may share a prefix)."""
    folder = processes.unit_dir(settings)
    app = settings.app.name
    pattern = re.compile(rf"{re.escape(app)}-[A-Za-z0-9_-]+@?\.(service|timer|target)")
    ours = {f.path for f in bundle}
    found = {}
    for name in sorted(host.list_dir(folder)):
        path = f"{folder}/{name}"
        if not pattern.fullmatch(name) or path in ours:
            continue
        facts = host.read(path)
        if facts is not None and f"\n{MARKER}={app}\n".encode() in facts.content:
            found[path] = facts
    return found


def gather(host: Host, bundle: Bundle, settings: Settings) -> HostState:
    files = {f.path: host.read(f.path) for f in bundle}
    gone = orphans(host, bundle, settings)
    files.update(gone)
    names = []
    for kind in (Kind.SERVICE_UNIT, Kind.SOCKET_UNIT, Kind.ACME_TIMER):
        unit = bundle.by_kind(kind)
        if unit is not None:
            names.append(PurePosixPath(unit.path).name)
    names += [group.main for group in [*bundle_workers(bundle), *worker_groups(gone)]]
    units = {
        name: unit_facts(host.run(["systemctl", "is-enabled", name]), host.run(["systemctl", "is-active", name]))
        for name in names
    }
    link = host.link_target(settings.paths.nginx_site_enabled)
    return HostState(files, link, units, host.tracks_owners, orphans=tuple(gone))
