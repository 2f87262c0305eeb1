"""Plan: compare the rendered bundle with the host's facts (pure; no I/O).

The actions are what ``apply`` will do, in order: write files, link the
nginx site, ``daemon-reload`` when a unit changed, enable the socket (or
restart it when its unit changed: a new path or mode needs a new socket), restart
the service when its unit or environment changed (HUP does not re-read
either), reload it when only Gunicorn's conf changed, start it when it is not
running, enable the ACME renewal timer when it is not, and reload nginx when its site
changed. When an earlier apply was killed, the state planned from is the host after its
undo, which runs first (``recovery``).

Processes and timers (settings/processes.py names their units): the units of one
deleted from the settings are stopped and disabled (``disable --now``), then their
files removed, before the ``daemon-reload``; after the app's service, each new
group is enabled and started, a process whose units or the env file changed is
restarted (a target by stop + start: its instances are PartOf= it, and a restart
would keep ones it no longer wants), a timer whose units changed is restarted,
and a stopped one is started. New app code restarts the processes too.

With a code change (``deploy.code_releases``, see apply/code.py) the order is:
install the new release folder (unless a kept folder holds that code), the
``before_switch`` hooks in it, the file writes, the switch of the ``current``
link, the site link and service actions (the service restarts even when no file
changed: it must run the new code), nginx, and last the ``after_switch`` hooks,
once the new release passed the health gate. Without code releases, a wheelhouse
with new code is installed into ``app.venv`` first and restarts the same units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from deploykit.facts import HostState, bundle_workers, worker_groups
from deploykit.render.bundle import UNIT_KINDS, Bundle, Kind, RenderedFile
from deploykit.render.envfile import masked_diff
from deploykit.settings import processes
from deploykit.settings.model import Settings
from deploykit.settings.processes import UnitGroup


@dataclass(frozen=True)
class WriteFile:
    path: str
    mode: int
    owner: str
    group: str
    change: Literal["create", "update", "mode"]

    def describe(self) -> str:
        return f"{self.change} {self.path} ({self.mode:04o} {self.owner}:{self.group})"


@dataclass(frozen=True)
class LinkSite:
    link: str
    target: str

    def describe(self) -> str:
        return f"link {self.link} -> {self.target}"


@dataclass(frozen=True)
class RemoveFile:
    """A unit file of a process or timer deleted from the settings (after its units stopped)."""

    path: str

    def describe(self) -> str:
        return f"remove {self.path}"


@dataclass(frozen=True)
class Systemctl:
    verb: Literal["daemon-reload", "enable --now", "restart", "reload", "start", "stop", "disable --now"]
    unit: str = ""

    def describe(self) -> str:
        return f"systemctl {self.verb} {self.unit}".rstrip()


@dataclass(frozen=True)
class ReloadNginx:
    def describe(self) -> str:
        return "nginx -t, then systemctl reload nginx"


@dataclass(frozen=True)
class CodeChange:
    """The code switch an apply makes: the ``current`` LINK to TARGET (release folder RELEASE),
    installed from the wheelhouse first when INSTALL (else a kept folder holds that code).
    Without code releases: no LINK, and TARGET is ``app.venv``, installed in place."""

    release: str
    version: str
    link: str
    target: str
    install: bool
    #: the hooks run around the switch (none on a rollback)
    hooks: bool = True


@dataclass(frozen=True)
class InstallRelease:
    folder: str
    version: str
    #: into app.venv itself (no deploy.code_releases), not a new release folder
    in_place: bool = False

    def describe(self) -> str:
        if self.in_place:
            return f"install code {self.version} into {self.folder} (in place, from the wheelhouse)"
        return f"install code {self.version} into {self.folder} (a new venv, from the wheelhouse)"


@dataclass(frozen=True)
class RunHook:
    phase: Literal["before_switch", "after_switch"]
    command: str

    def describe(self) -> str:
        return f"run {self.phase} hook: {self.command}"


@dataclass(frozen=True)
class SwitchRelease:
    link: str
    target: str
    version: str

    def describe(self) -> str:
        return f"switch {self.link} -> {self.target} (code {self.version})"


Action = WriteFile | LinkSite | Systemctl | ReloadNginx | RemoveFile | InstallRelease | RunHook | SwitchRelease


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    diff: tuple[str, ...]
    #: an interrupted apply that will be undone before the actions (see apply/journal.py)
    recovery: str = ""

    @property
    def changes(self) -> bool:
        return bool(self.actions) or bool(self.recovery)


def plan(bundle: Bundle, state: HostState, settings: Settings, code: CodeChange | None = None) -> Plan:
    writes = [w for f in bundle if (w := _write(f, state)) is not None]
    changed = {w.path for w in writes}
    kinds = {f.kind for f in bundle if f.path in changed}
    before: list[Action] = []
    if code is not None and not code.link:  # into app.venv in place: no folder, no switch
        before.append(InstallRelease(code.target, code.version, in_place=True))
    elif code is not None:
        folder = f"{code.link.rsplit('/', 1)[0]}/{code.target}"
        before += [InstallRelease(folder, code.version)] if code.install else []
        before += [
            RunHook("before_switch", processes.shown(c)) for c in settings.deploy.hooks.before_switch if code.hooks
        ]
    actions: list[Action] = [*before, *writes]
    if code is not None and code.link:
        actions.append(SwitchRelease(code.link, code.target, code.version))
    site = settings.paths.nginx_site
    if state.site_link != site:
        actions.append(LinkSite(settings.paths.nginx_site_enabled, site))
    actions += _retire(state)
    actions += _services(bundle, state, kinds, new_code=code is not None)
    # a process runs the app's code and reads the env file: either changing restarts it
    actions += _workers(bundle, state, changed, Kind.ENV_FILE in kinds or code is not None)
    if Kind.NGINX_SITE in kinds or state.site_link != site:
        actions.append(ReloadNginx())
    if code is not None and code.hooks:
        actions += [RunHook("after_switch", processes.shown(c)) for c in settings.deploy.hooks.after_switch]
    secrets = list(settings.app.secrets)
    diff = tuple(line for f in bundle if f.path in changed for line in _diff(f, state, secrets))
    diff += tuple(line for path in state.orphans for line in _removed(path, state))
    return Plan(tuple(actions), diff, state.recovery)


def _write(file: RenderedFile, state: HostState) -> WriteFile | None:
    current = state.files.get(file.path)
    if current is None:
        change: Literal["create", "update", "mode"] = "create"
    elif current.content != file.content.encode():
        change = "update"
    elif current.mode != file.mode or (
        state.tracks_owners and (current.owner, current.group) != (file.owner, file.group)
    ):
        change = "mode"
    else:
        return None
    return WriteFile(file.path, file.mode, file.owner, file.group, change)


def _services(bundle: Bundle, state: HostState, kinds: set[Kind], *, new_code: bool = False) -> list[Action]:
    service = bundle.by_kind(Kind.SERVICE_UNIT)
    socket = bundle.by_kind(Kind.SOCKET_UNIT)
    assert service is not None
    name = PurePosixPath(service.path).name
    actions: list[Action] = []
    if kinds & UNIT_KINDS or state.orphans:
        actions.append(Systemctl("daemon-reload"))
    if socket is not None:
        socket_name = PurePosixPath(socket.path).name
        facts = state.units.get(socket_name)
        enabled = facts.enabled if facts is not None else None
        if enabled is False or (enabled is None and state.files.get(socket.path) is None):
            actions.append(Systemctl("enable --now", socket_name))
        elif Kind.SOCKET_UNIT in kinds and state.files.get(socket.path) is not None:
            # a new path, mode or owner only exists on a new socket; stopping the socket
            # stops the service too (Requires=), which the restart below starts again
            actions.append(Systemctl("restart", socket_name))
    installed = state.files.get(service.path) is not None
    running = state.units.get(name)
    if installed and (new_code or kinds & {Kind.SERVICE_UNIT, Kind.SOCKET_UNIT, Kind.ENV_FILE}):
        actions.append(Systemctl("restart", name))  # HUP re-reads neither the unit, the environment nor new code
    elif installed and Kind.GUNICORN_CONF in kinds:
        actions.append(Systemctl("reload", name))  # a rolling restart re-reads Gunicorn's conf
    elif not installed or (running is not None and running.active is False):
        actions.append(Systemctl("start", name))
    timer = bundle.by_kind(Kind.ACME_TIMER)
    if timer is not None:
        timer_name = PurePosixPath(timer.path).name
        facts = state.units.get(timer_name)
        if facts is None or not facts.enabled or not facts.active:
            actions.append(Systemctl("enable --now", timer_name))
    return actions


def _diff(file: RenderedFile, state: HostState, secret_keys: list[str]) -> list[str]:
    current = state.files.get(file.path)
    old = current.content.decode("utf-8", "replace") if current is not None else ""
    return masked_diff(file.path, old, file.content, file.secret, secret_keys)


def restart(group: UnitGroup) -> list[Action]:
    """Restart a process or timer: a target by stop + start, so instances it no longer wants stop too."""
    if group.main.endswith(".target"):
        return [Systemctl("stop", group.main), Systemctl("start", group.main)]
    return [Systemctl("restart", group.main)]


def _retire(state: HostState) -> list[Action]:
    """Stop and disable the units of processes and timers gone from the settings, then remove their files."""
    actions: list[Action] = []
    for group in worker_groups(state.orphans):
        actions.append(Systemctl("disable --now", group.main))
        actions += [Systemctl("stop", s) for s in group.services if s != group.main and group.kind == "timer"]
    return actions + [RemoveFile(path) for path in state.orphans]


def _workers(bundle: Bundle, state: HostState, changed: set[str], env_changed: bool) -> list[Action]:
    folder = {PurePosixPath(f.path).name: f.path for f in bundle}
    actions: list[Action] = []
    for group in bundle_workers(bundle):
        paths = [folder[name] for name in group.files]
        facts = state.units.get(group.main)
        if any(state.files.get(p) is None for p in paths) or (facts is not None and facts.enabled is False):
            actions.append(Systemctl("enable --now", group.main))
        elif any(p in changed for p in paths) or (env_changed and group.restarts_with_code):
            actions += restart(group)
        elif facts is not None and facts.active is False:
            actions.append(Systemctl("start", group.main))
    return actions


def _removed(path: str, state: HostState) -> list[str]:
    current = state.files.get(path)
    old = current.content.decode("utf-8", "replace") if current is not None else ""
    return masked_diff(path, old, "", False, [])
