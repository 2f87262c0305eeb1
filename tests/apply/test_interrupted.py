"""An apply killed (SIGKILL) at every step boundary, hung up on (SIGHUP), or
failing inside its own restore: the next run always converges, and the host
is never left half-changed."""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from deploykit.apply import journal as journals
from deploykit.apply.journal import Journal, Prepared, UnitBefore
from deploykit.apply.releases import ReleaseStore
from deploykit.apply.restore import restore
from deploykit.apply.run import deploy_settings, plan_with_recovery
from deploykit.errors import ApplyFailed, DeployKitError
from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from deploykit.render import render
from deploykit.settings.model import Settings
from tests.apply.test_engine import APP_STARTS, HEALTHY, STATE, apply, host_with
from tests.conftest import settings_for

OLD = settings_for(None)
NEW = settings_for(None, "app.env.GREETING=new", "nginx.client_max_body_size=1m")


class Killed(BaseException):
    """SIGKILL: nothing after it runs in the process (no except, no finally that restores)."""


@dataclass
class DyingHost(FakeHost):
    """Dies at its KILL_AT-th change or command; logs every change and command in order."""

    kill_at: int = 0
    ops: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)

    def _op(self, kind: str, what: str) -> None:
        self.ops += 1
        if self.kill_at and self.ops == self.kill_at:
            self.kill_at = 0
            raise Killed(f"killed at {kind} {what}")
        self.log.append((kind, what))

    def write(self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root") -> None:
        self._op("write", path)
        super().write(path, content, mode=mode, owner=owner, group=group)

    def symlink(self, link: str, target: str) -> None:
        self._op("link", link)
        super().symlink(link, target)

    def remove(self, path: str) -> None:
        self._op("remove", path)
        super().remove(path)

    def remove_tree(self, path: str) -> None:
        self._op("remove", path)
        super().remove_tree(path)

    def run(self, argv: Sequence[str], *, timeout: float = 120) -> CommandResult:
        if list(argv[:2]) not in (["systemctl", "is-enabled"], ["systemctl", "is-active"]):
            self._op("run", " ".join(argv[:3]))
        return super().run(argv, timeout=timeout)


def dying_host() -> DyingHost:
    host = DyingHost()
    host.active["nginx.service"] = True
    host.answers += [(("python3", "-c"), CommandResult(0, HEALTHY)), (("systemd-run",), APP_STARTS)]
    return host


def etc(host: FakeHost) -> dict[str, FileFacts]:
    return {p: f for p, f in host.files.items() if p.startswith("/etc/")}


def converged(host: DyingHost, settings: Settings, start: int) -> None:
    """The host runs SETTINGS' stack: files, link, units, no journal, no open release, nothing left to do."""
    assert {f.path: f.content.encode() for f in render(settings)} == {p: f.content for p, f in etc(host).items()}
    assert host.links["/etc/nginx/sites-enabled/demo.conf"] == "/etc/nginx/sites-available/demo.conf"
    assert host.active["demo.service"] and host.active["demo.socket"] and host.enabled["demo.socket"]
    assert journals.path(STATE) not in host.files
    store = ReleaseStore(host, STATE)
    releases, warnings = store.scan()
    assert warnings == [] and all(r.status != "pending" for r in releases)
    assert store.current() == releases[-1].id if releases[-1].status == "applied" else True
    # the service (re)started after the last change to its env file, and nginx reloaded after its site's
    log = host.log[start:] if start else host.log
    effects = {
        "/etc/default/demo": ("run systemctl restart demo.service", "run systemctl start demo.service"),
        "/etc/nginx/sites-available/demo.conf": ("run systemctl reload-or-restart nginx.service",),
    }
    for path, actions in effects.items():
        writes = [i for i, (kind, what) in enumerate(host.log) if kind == "write" and what == path]
        if writes and log:
            after = [f"{k} {w}" for k, w in host.log[writes[-1] :]]
            assert any(line.startswith(actions) for line in after), (path, after)
    assert not deploy_settings(settings, host).run().changed


def count_ops(settings: Settings, first: Settings | None) -> int:
    host = dying_host()
    if first is not None:
        apply(host, first)
    start = host.ops
    apply(host, settings)
    return host.ops - start


@pytest.mark.parametrize("first", [OLD, None], ids=["update", "fresh-host"])
def test_an_apply_killed_at_every_step_boundary_is_undone_and_the_next_run_converges(first: Settings | None) -> None:
    total = count_ops(NEW, first)
    assert total > 20
    for kill_at in range(1, total + 1):
        host = dying_host()
        if first is not None:
            apply(host, first)
        host.kill_at = host.ops + kill_at
        with pytest.raises(Killed):
            apply(host, NEW)
        host.locked.clear()  # the kernel drops a killed process's flock
        pending = plan_with_recovery(host, render(NEW), NEW)
        if journals.path(STATE) in host.files:
            assert pending.changes and "interrupted during" in pending.recovery, kill_at
        start = len(host.log)
        report = deploy_settings(NEW, host).run()
        if journals.path(STATE) in host.files or report.steps[:1] and report.steps[0].name.startswith("recover"):
            assert report.steps[0].status == "ok", (kill_at, report.steps)
        converged(host, NEW, start)


def test_before_the_journal_a_kill_after_writing_files_said_no_changes_forever() -> None:
    host = dying_host()
    apply(host, OLD)

    def kill_after_the_env_file(argv: list[str]) -> CommandResult | None:
        if argv[:2] == ["nginx", "-t"]:
            raise Killed("after write files")
        return None

    host.hook = kill_after_the_env_file
    with pytest.raises(Killed):
        apply(host, NEW)
    host.hook, host.locked = None, set()
    assert b'GREETING="new"' in host.files["/etc/default/demo"].content  # written, the service not restarted
    shown = plan_with_recovery(host, render(NEW), NEW)
    assert shown.changes and "'validate on the host'" in shown.recovery
    assert "systemctl restart demo.service" in [a.describe() for a in shown.actions]
    start = len(host.commands)
    report = deploy_settings(NEW, host).run()
    assert report.changed and [s.name for s in report.steps][0] == "recover the interrupted apply"
    assert ["systemctl", "restart", "demo.service"] in host.commands[start:]
    converged(host, NEW, 0)


def test_sighup_during_apply_restores_like_sigterm() -> None:
    class HungUp(Exception):
        pass

    def outside(signum: int, frame: object) -> None:
        raise HungUp

    host = host_with()
    fired: list[bool] = []

    def hang_up(argv: list[str]) -> CommandResult | None:
        if argv[:2] == ["systemctl", "daemon-reload"] and not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGHUP)
        return None

    host.hook = hang_up
    previous = signal.signal(signal.SIGHUP, outside)
    try:
        with pytest.raises(ApplyFailed, match=r"services failed: interrupted \(Ctrl-C, SIGTERM or SIGHUP\)") as caught:
            apply(host, OLD)
        assert signal.getsignal(signal.SIGHUP) is outside
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert caught.value.restored and not etc(host) and journals.path(STATE) not in host.files


def test_an_ignored_sighup_stays_ignored() -> None:
    host = host_with()
    seen: list[object] = []
    host.hook = lambda argv: seen.append(signal.getsignal(signal.SIGHUP)) if argv[0] == "nginx" else None
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        apply(host, OLD)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert seen == [signal.SIG_IGN]


def test_a_restore_killed_half_way_is_finished_by_the_next_run() -> None:
    host = dying_host()
    apply(host, OLD)
    host.hook = lambda argv: CommandResult(1, stderr="boom") if argv[:2] == ["nginx", "-t"] else None
    host.kill_at = 0

    def die_in_restore(argv: list[str]) -> CommandResult | None:
        if argv[:2] == ["nginx", "-t"]:
            host.hook = None
            host.kill_at = host.ops + 2  # the second change of the restore
            return CommandResult(1, stderr="boom")
        return None

    host.hook = die_in_restore
    with pytest.raises(Killed):
        apply(host, NEW)
    host.locked.clear()
    assert journals.path(STATE) in host.files
    report = deploy_settings(OLD, host).run()
    assert report.steps[0].name == "recover the interrupted apply" and not report.failed_step
    assert etc(host) == {f.path: host.files[f.path] for f in render(OLD)}
    assert journals.path(STATE) not in host.files


# restore: every undo step is attempted, whatever fails


def full_journal() -> Journal:
    return Journal(
        "20260101T000000000Z",
        "apply",
        "health",
        written=("/etc/default/demo", "/etc/systemd/system/demo.service"),
        site_link="/etc/nginx/sites-enabled/demo.conf",
        links_site=True,
        site_link_before="/etc/nginx/sites-available/old.conf",
        units=(UnitBefore("demo.socket", False, False), UnitBefore("demo.service", True, True)),
        touched=("demo.socket", "demo.service"),
        daemon_reload=True,
        nginx_reload=True,
        prepared=Prepared("demo", "demog", ("/srv/demo/data",), "/srv/demo/.venv", False, "/srv/demo/.venv.prev"),
    )


OLD_FILES = {
    "/etc/default/demo": FileFacts(b"OLD=1\n", 0o600, "root", "root"),
    "/etc/systemd/system/demo.service": None,
}
UNDO = [
    "systemctl disable demo.socket",
    "systemctl stop demo.socket",
    "systemctl daemon-reload",
    "systemctl restart demo.service",
    "nginx -t",
    "systemctl reload-or-restart nginx.service",
    "mv /srv/demo/.venv.prev /srv/demo/.venv",
    "userdel demo",
    "groupdel demog",
]


class BrokenHost(FakeHost):
    broken: str = ""

    def write(self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root") -> None:
        if self.broken == f"write {path}":
            raise DeployKitError(f"cannot write {path}: No space left on device")
        super().write(path, content, mode=mode, owner=owner, group=group)

    def symlink(self, link: str, target: str) -> None:
        if self.broken == "link":
            raise DeployKitError(f"cannot link {link} -> {target}: Read-only file system")
        super().symlink(link, target)

    def remove_tree(self, path: str) -> None:
        if self.broken == f"remove {path}":
            raise DeployKitError(f"cannot remove {path}: Device or resource busy")
        super().remove_tree(path)


def undo_host(broken: str) -> BrokenHost:
    host = BrokenHost()
    host.broken = broken
    host.files["/etc/default/demo"] = FileFacts(b"NEW=1\n", 0o600, "root", "root")
    host.files["/etc/systemd/system/demo.service"] = FileFacts(b"[Service]\n", 0o644, "root", "root")
    host.files["/srv/demo/.venv.prev/bin/python3"] = FileFacts(b"", 0o755, "root", "root")
    host.links["/etc/nginx/sites-enabled/demo.conf"] = "/etc/nginx/sites-available/demo.conf"
    host.answers.append((("getent",), CommandResult(0)))
    if broken.startswith("run "):
        argv = broken.split()[1:]
        host.hook = lambda a: CommandResult(1, stderr="boom") if a == argv else None
    return host


@pytest.mark.parametrize(
    "broken",
    ["run systemctl disable demo.socket", "run systemctl stop demo.socket", "write /etc/default/demo", "link",
     "run systemctl daemon-reload", "run systemctl restart demo.service", "run nginx -t",
     "run systemctl reload-or-restart nginx.service", "run mv /srv/demo/.venv.prev /srv/demo/.venv",
     "remove /srv/demo/data", "run userdel demo", "run groupdel demog"],
)  # fmt: skip
def test_every_undo_step_is_attempted_when_one_fails(broken: str) -> None:
    host = undo_host(broken)
    problems = restore(host, full_journal(), OLD_FILES, lambda: ["never asked: something failed"])
    assert len(problems) == 1, problems
    ran = [" ".join(argv) for argv in host.commands if argv[0] != "getent" and argv[1:2] != ["reset-failed"]]
    expected = [c for c in UNDO if not (broken == "run nginx -t" and c.endswith("nginx.service"))]
    assert ran == expected
    if broken != "write /etc/default/demo":
        assert host.files["/etc/default/demo"] == OLD_FILES["/etc/default/demo"]
    assert "/etc/systemd/system/demo.service" not in host.files
    if broken != "link":
        assert host.links["/etc/nginx/sites-enabled/demo.conf"] == "/etc/nginx/sites-available/old.conf"


def test_a_restore_that_runs_twice_ends_in_the_same_state() -> None:
    host = undo_host("")
    assert restore(host, full_journal(), OLD_FILES) == []
    files, links = dict(host.files), dict(host.links)
    host.answers.insert(0, (("getent",), CommandResult(2)))  # the user and group are gone now
    assert restore(host, full_journal(), OLD_FILES) == []
    assert (host.files, host.links) == (files, links)


class LinkFailsOnRestore(FakeHost):
    links_made: int = 0

    def symlink(self, link: str, target: str) -> None:
        self.links_made += 1
        if self.links_made == 3:  # first apply, the failing apply, then its restore
            raise DeployKitError(f"cannot link {link} -> {target}: Read-only file system")
        super().symlink(link, target)


def test_a_failing_site_link_restore_still_restarts_the_units() -> None:
    host = LinkFailsOnRestore()
    host.active["nginx.service"] = True
    host.answers += [(("systemd-run",), APP_STARTS)]
    health = iter([HEALTHY, json.dumps({"socket": {"status": 502, "error": "", "seconds": 1}})])
    host.hook = lambda argv: CommandResult(0, next(health, HEALTHY)) if argv[:2] == ["python3", "-c"] else None
    apply(host, OLD)
    host.links["/etc/nginx/sites-enabled/demo.conf"] = "/etc/nginx/sites-available/other.conf"
    start = len(host.commands)
    with pytest.raises(ApplyFailed, match="restore the link /etc/nginx/sites-enabled/demo.conf") as caught:
        apply(host, NEW)
    assert not caught.value.restored
    failed_at = next(i for i, argv in enumerate(host.commands) if argv[:2] == ["python3", "-c"] and i > start)
    assert ["systemctl", "restart", "demo.service"] in host.commands[failed_at:]
    assert ["systemctl", "reload-or-restart", "nginx.service"] in host.commands[failed_at:]
    assert host.files["/etc/default/demo"].content == render(OLD).as_mapping()["/etc/default/demo"].content.encode()
    # the journal stays, so the next run tries the undo again
    assert journals.path(STATE) in host.files


def test_a_journal_the_host_cannot_write_mid_apply_fails_the_step_and_restores() -> None:
    from tests.apply.test_engine import RefusingHost

    host = RefusingHost()
    host.active["nginx.service"] = True
    host.answers += [(("python3", "-c"), CommandResult(0, HEALTHY)), (("systemd-run",), APP_STARTS)]
    apply(host, OLD)
    old = etc(host)
    written: list[str] = []

    def refuse_once_files_are_written(argv: list[str]) -> CommandResult | None:
        if argv[:2] == ["nginx", "-t"]:
            written.append("yes")
            host.refuse = journals.path(STATE)  # the disk fills up after "write files"
        return None

    host.hook = refuse_once_files_are_written
    with pytest.raises(ApplyFailed, match="services failed: cannot write /var/lib/deploykit/demo/journal.json") as e:
        apply(host, NEW)
    assert written and e.value.restored and etc(host) == old
