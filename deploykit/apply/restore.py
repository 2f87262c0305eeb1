"""Put the host back the way it was before a failed apply: files, site link,
unit states, nginx, and what "prepare" created. Every undo step runs even
when one fails; the problems come back as lines for the report."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from deploykit.apply.probe import probe
from deploykit.facts import HostState, UnitFacts
from deploykit.plan import LinkSite, Plan, ReloadNginx, Systemctl, WriteFile
from deploykit.render.bundle import Kind

if TYPE_CHECKING:
    from deploykit.apply.engine import Deploy


def restore(deploy: Deploy, before: HostState, pending: Plan) -> list[str]:
    problems: list[str] = []
    written = {a.path for a in pending.actions if isinstance(a, WriteFile)}
    units = _units(deploy, before)
    if deploy.host.runs_commands:
        problems += _stop_new(deploy, units)
    problems += _files(deploy, before, pending, written)
    if deploy.host.runs_commands:
        problems += _restart_old(deploy, units)
    problems += _prepared(deploy)
    if deploy.host.runs_commands and not problems:
        problems += _old_stack_answers(deploy, before)
    return problems


def _units(deploy: Deploy, before: HostState) -> list[tuple[str, UnitFacts | None]]:
    """The units apply started, restarted or enabled (socket first), with what they were before."""
    touched = {a.unit for a in deploy.executed if isinstance(a, Systemctl) and a.unit}
    found = []
    for kind in (Kind.SOCKET_UNIT, Kind.SERVICE_UNIT):
        file = deploy.bundle.by_kind(kind)
        name = PurePosixPath(file.path).name if file is not None else ""
        if name in touched:
            found.append((name, before.units.get(name)))
    return found


def _systemctl(deploy: Deploy, problems: list[str], *args: str) -> None:
    result = deploy.host.run(["systemctl", *args], timeout=180)
    if not result.ok:
        problems.append(f"systemctl {' '.join(args)}: {result.output() or result.returncode}")


def _stop_new(deploy: Deploy, units: list[tuple[str, UnitFacts | None]]) -> list[str]:
    """Units that were not enabled/running before go back to that, while their files still exist."""
    problems: list[str] = []
    for unit, facts in units:
        if facts is None or not facts.enabled:
            _systemctl(deploy, problems, "disable", unit)
        if facts is None or not facts.active:
            _systemctl(deploy, problems, "stop", unit)
    return problems


def _files(deploy: Deploy, before: HostState, pending: Plan, written: set[str]) -> list[str]:
    problems = []
    host = deploy.host
    for path in sorted(written):
        old = before.files.get(path)
        if host.read(path) == old:
            continue  # never written, or a write the host refused (atomic: nothing changed)
        try:
            if old is None:
                host.remove(path)
            else:
                host.write(path, old.content, mode=old.mode, owner=old.owner, group=old.group)
        except Exception as exc:  # noqa: BLE001 - keep undoing the rest, report this one
            problems.append(f"restore {path}: {exc}")
    if any(isinstance(a, LinkSite) for a in pending.actions):
        link = deploy.settings.paths.nginx_site_enabled
        if before.site_link is None:
            host.remove(link)
        else:
            host.symlink(link, before.site_link)
    return problems


def _restart_old(deploy: Deploy, units: list[tuple[str, UnitFacts | None]]) -> list[str]:
    """Back to the old unit files, and the units that were running run them again."""
    problems: list[str] = []
    if any(isinstance(a, Systemctl) and a.verb == "daemon-reload" for a in deploy.executed):
        _systemctl(deploy, problems, "daemon-reload")
    for unit, facts in units:
        if facts is not None and facts.active:
            deploy.host.run(["systemctl", "reset-failed", unit])
            _systemctl(deploy, problems, "restart", unit)
    if any(isinstance(a, ReloadNginx) for a in deploy.executed):
        if deploy.host.run(["nginx", "-t"]).ok:
            _systemctl(deploy, problems, "reload-or-restart", "nginx.service")
        else:
            problems.append("nginx -t still fails after restoring the files; nginx was not reloaded")
    return problems


def _prepared(deploy: Deploy) -> list[str]:
    host, prepared = deploy.host, deploy.prepared
    problems = []
    if prepared.venv_created:
        host.remove_tree(prepared.venv_created)
    if prepared.venv_saved:
        venv = deploy.settings.app.venv
        host.remove_tree(venv)
        if not host.run(["mv", prepared.venv_saved, venv]).ok:
            problems.append(f"could not put the previous venv back from {prepared.venv_saved}")
    for path in reversed(prepared.dirs):
        host.remove_tree(path)
    if prepared.user and not host.run(["userdel", prepared.user]).ok:
        problems.append(f"userdel {prepared.user} failed")
    if prepared.group and not host.run(["groupdel", prepared.group]).ok:
        problems.append(f"groupdel {prepared.group} failed")
    return problems


def _old_stack_answers(deploy: Deploy, before: HostState) -> list[str]:
    """When the app was serving before, it must serve again now."""
    service = deploy.bundle.by_kind(Kind.SERVICE_UNIT)
    was = before.units.get(PurePosixPath(service.path).name) if service is not None else None
    if was is None or not was.active:
        return []
    failed = [r for r in probe(deploy.host, deploy.settings) if not r.ok]
    return [f"after restoring, {r.describe()}" for r in failed]
