"""Put the host back the way it was before an apply, from its journal: files,
site link, unit states, nginx, and what "prepare" created. Used after a failed
step and, by the next run, after an apply that was killed.

Every undo step is attempted even when an earlier one fails (a failing
site-link restore must not leave the units stopped); the problems come back
as lines for the report. Each step is idempotent: running the restore twice
(a restore killed half-way, run again by the next apply) ends in the same
state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from deploykit.apply.journal import Journal, UnitBefore
from deploykit.host.base import FileFacts, Host

#: the previous content of each written path (None: it did not exist)
OldFiles = Mapping[str, FileFacts | None]


def restore(host: Host, journal: Journal, old: OldFiles, answers: Callable[[], list[str]] | None = None) -> list[str]:
    """Undo what JOURNAL says was done; ANSWERS (when given) checks the old stack serves again."""
    problems: list[str] = []
    touched = [u for u in journal.units if u.name in journal.touched]
    if host.runs_commands:
        for unit in touched:
            _stop_new(host, unit, problems)
    for path in sorted(journal.written):
        _attempt(problems, f"restore {path}", partial(_file, host, path, old))
    if journal.links_site:
        _attempt(
            problems,
            f"restore the link {journal.site_link}",
            partial(_relink, host, journal.site_link, journal.site_link_before),
        )
    if journal.code_switched:
        _attempt(
            problems,
            f"switch {journal.code_link} back",
            partial(_relink, host, journal.code_link, journal.code_link_before),
        )
    if host.runs_commands:
        _restart_old(host, journal, touched, problems)
    _prepared(host, journal, problems)
    if answers is not None and host.runs_commands and not problems:
        _attempt(problems, "checking the old stack", lambda: problems.extend(answers()))
    return problems


def _attempt(problems: list[str], what: str, step: Callable[[], object]) -> None:
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - keep undoing the rest, report this one
        problems.append(f"{what}: {exc}")


def _systemctl(host: Host, problems: list[str], *args: str) -> None:
    def run() -> None:
        result = host.run(["systemctl", *args], timeout=180)
        if not result.ok:
            problems.append(f"systemctl {' '.join(args)}: {result.output() or result.returncode}")

    _attempt(problems, f"systemctl {' '.join(args)}", run)


def _stop_new(host: Host, unit: UnitBefore, problems: list[str]) -> None:
    """A unit that was not enabled/running before goes back to that, while its file still exists."""
    if not unit.enabled:
        _systemctl(host, problems, "disable", unit.name)
    if not unit.active:
        _systemctl(host, problems, "stop", unit.name)


def _file(host: Host, path: str, old: OldFiles) -> None:
    if path not in old:
        raise LookupError("its previous content was not saved")
    was = old[path]
    if host.read(path) == was:
        return  # never written, a write the host refused (atomic: nothing changed), or already restored
    if was is None:
        host.remove(path)
    else:
        host.write(path, was.content, mode=was.mode, owner=was.owner, group=was.group)


def _relink(host: Host, link: str, before: str | None) -> None:
    """LINK back where it pointed before (the nginx site link, or the code releases' `current`,
    whose folder is kept until the link is back), or gone when there was none."""
    if host.link_target(link) == before:
        return
    if before is None:
        host.remove(link)
    else:
        host.symlink(link, before)


def _restart_old(host: Host, journal: Journal, touched: list[UnitBefore], problems: list[str]) -> None:
    """Back to the old unit files, and the units that were running run them again."""
    if journal.daemon_reload:
        _systemctl(host, problems, "daemon-reload")
    for unit in touched:
        if unit.enabled and unit.name in journal.disabled:
            _systemctl(host, problems, "enable", unit.name)  # a deleted process's units, back
        if unit.active:
            reset = partial(host.run, ["systemctl", "reset-failed", unit.name])
            _attempt(problems, f"systemctl reset-failed {unit.name}", reset)
            if unit.name.endswith(".target"):  # its instances are PartOf= it: a restart keeps the new ones
                _systemctl(host, problems, "stop", unit.name)
                _systemctl(host, problems, "start", unit.name)
            else:
                _systemctl(host, problems, "restart", unit.name)
    if journal.nginx_reload:

        def reload_nginx() -> None:
            if host.run(["nginx", "-t"]).ok:
                _systemctl(host, problems, "reload-or-restart", "nginx.service")
            else:
                problems.append("nginx -t still fails after restoring the files; nginx was not reloaded")

        _attempt(problems, "reloading nginx", reload_nginx)


def _prepared(host: Host, journal: Journal, problems: list[str]) -> None:
    prepared = journal.prepared
    venv = prepared.venv
    if prepared.venv_created and venv:
        _attempt(problems, f"removing the new venv {venv}", lambda: host.remove_tree(venv))
    saved = prepared.venv_saved
    if saved and venv:

        def venv_back() -> None:
            if not host.list_dir(saved):
                return  # already moved back by an earlier restore
            host.remove_tree(venv)
            if not host.run(["mv", saved, venv]).ok:
                raise RuntimeError(f"could not put the previous venv back from {saved}")

        _attempt(problems, "the previous venv", venv_back)
    if prepared.release_dir:
        folder = prepared.release_dir
        _attempt(problems, f"removing the new release {folder}", lambda: host.remove_tree(folder))
    for path in reversed(prepared.dirs):
        _attempt(problems, f"removing {path}", partial(host.remove_tree, path))
    for remove, exists, name in (("userdel", "passwd", prepared.user), ("groupdel", "group", prepared.group)):
        if name:
            _attempt(problems, f"{remove} {name}", partial(_delete, host, remove, exists, name))


def _delete(host: Host, remove: str, database: str, name: str) -> None:
    """userdel/groupdel NAME, unless an earlier restore already did."""
    if host.run(["getent", database, name]).returncode == 2:
        return  # getent: not found
    if not host.run([remove, name]).ok:
        raise RuntimeError("failed")
