"""Code releases and hooks on the in-memory host: the plan, the transaction's order, the
ways back (a failing hook before and after the switch), rollback and pruning."""

from __future__ import annotations

import pytest

from deploykit.apply import journal as journals
from deploykit.apply.code import CodeReleases, read_wheelhouse
from deploykit.apply.releases import ReleaseStore
from deploykit.apply.run import deploy_release, deploy_settings, plan_with_recovery
from deploykit.errors import ApplyFailed, DeployKitError
from deploykit.host.base import CommandResult
from deploykit.host.fake import FakeHost
from deploykit.plan import InstallRelease, RunHook, SwitchRelease, Systemctl
from deploykit.render import render
from deploykit.settings.model import Settings
from tests.apply.test_engine import STATE, host_with
from tests.apply.test_interrupted import DyingHost, Killed, dying_host
from tests.conftest import settings_for

RELEASES = ("deploy.code_releases=true", "deploy.keep_releases=2")
HOOKS = ('deploy.hooks.before_switch=["migrate --noinput"]', 'deploy.hooks.after_switch=[["notify", "done"]]')


def released(*overrides: str) -> Settings:
    return settings_for(None, *RELEASES, *HOOKS, *overrides)


def hook_answers(host: FakeHost, output: str = "ran", status: int = 0) -> None:
    """Every hook prints OUTPUT and exits STATUS (the marker line the wrapper prints)."""
    host.answers.insert(0, (("/bin/sh", "-c"), CommandResult(0, f"{output}\n\ndeploykit-hook-exit={status}\n")))


def wheelhouse(host: FakeHost, folder: str, *names: str) -> str:
    for name in names:
        host.write(f"{folder}/{name}", name.encode(), mode=0o644)
    return folder


def apply(host: FakeHost, settings: Settings, wheels: str | None) -> str:
    deploy = deploy_settings(settings, host, install_app=wheels, health=False)
    deploy.run()
    assert deploy.report.release is not None
    return deploy.report.release


def test_a_code_change_is_planned_install_hooks_writes_switch_restart_after_hooks() -> None:
    settings, host = released(), host_with()
    hook_answers(host)
    wheels = wheelhouse(host, "/wh", "app-1-py3-none-any.whl")
    first = plan_with_recovery(host, render(settings), settings, wheels)
    kinds = [type(a).__name__ for a in first.actions]
    assert kinds[:2] == ["InstallRelease", "RunHook"] and kinds[-1] == "RunHook"
    assert kinds.index("SwitchRelease") > max(i for i, k in enumerate(kinds) if k == "WriteFile")
    assert first.actions[1] == RunHook("before_switch", "migrate --noinput")
    assert first.actions[-1] == RunHook("after_switch", "notify done")
    switch = next(a for a in first.actions if isinstance(a, SwitchRelease))
    assert switch.describe() == f"switch /srv/demo/current -> releases/<new> (code {switch.version})"
    apply(host, settings, wheels)
    # same wheels: nothing to do; new wheels: install, hooks, switch and a restart, though no file changed
    assert not plan_with_recovery(host, render(settings), settings, wheels).changes
    newer = wheelhouse(host, "/wh2", "app-2-py3-none-any.whl")
    again = plan_with_recovery(host, render(settings), settings, newer).actions
    assert [type(a).__name__ for a in again] == [
        "InstallRelease", "RunHook", "SwitchRelease", "Systemctl", "RunHook"
    ]  # fmt: skip
    assert again[3] == Systemctl("restart", "demo.service")
    assert isinstance(again[0], InstallRelease) and again[0].folder.startswith("/srv/demo/releases/")


def test_the_units_run_from_current_and_hooks_run_in_the_new_release_as_the_service() -> None:
    settings = released("app.user=demo")
    service = render(settings).as_mapping()["/etc/systemd/system/demo.service"].content
    assert "WorkingDirectory=/srv/demo/current\n" in service
    assert "ExecStart=/srv/demo/current/venv/bin/deploykit serve" in service
    host = host_with()
    hook_answers(host)
    release = apply(host, settings, wheelhouse(host, "/wh", "app-1-py3-none-any.whl"))
    assert host.links["/srv/demo/current"] == f"releases/{release}"
    assert host.files[f"/srv/demo/releases/{release}/.deploykit-code"].content.strip()
    venv = f"/srv/demo/releases/{release}/venv"
    assert ["python3", "-m", "venv", venv] in host.commands
    pip = next(c for c in host.commands if c[:2] == [f"{venv}/bin/python3", "-m"] and "install" in c)
    assert "--no-index" in pip and pip[-1] == "/wh/app-1-py3-none-any.whl"
    hooks = [c for c in host.commands if c[:2] == ["/bin/sh", "-c"]]
    assert [c[-3:] for c in hooks] == [["/bin/sh", "-c", "migrate --noinput"], ["/usr/bin/env", "notify", "done"]]
    props = [a for a in hooks[0] if a.startswith("--property=")]
    assert f"--property=WorkingDirectory=/srv/demo/releases/{release}" in props
    assert f"--property=Environment=PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin" in props
    assert "--property=User=demo" in props and "--property=RuntimeMaxSec=300" in props
    assert f"--property=EnvironmentFile={STATE}/releases/{release}/files/etc/default/demo" in props
    assert "--property=ProtectSystem=strict" in props  # the unit's sandbox (appcheck's property builder)


def test_a_failing_before_switch_hook_switches_nothing_and_removes_the_new_folder() -> None:
    settings, host = released(), host_with()
    hook_answers(host)
    first = apply(host, settings, wheelhouse(host, "/wh", "app-1-py3-none-any.whl"))
    restarts = len([c for c in host.commands if c[:2] == ["systemctl", "restart"]])
    hook_answers(host, "django.db.utils.OperationalError: no such table", status=1)
    with pytest.raises(ApplyFailed) as info:
        apply(host, settings, wheelhouse(host, "/wh2", "app-2-py3-none-any.whl"))
    assert str(info.value) == (
        "before_switch hook: migrate --noinput failed: exit 1: django.db.utils.OperationalError: no such table; "
        "the previous state was restored"
    )
    assert host.links["/srv/demo/current"] == f"releases/{first}"
    assert host.list_dir("/srv/demo/releases") == [first]
    assert len([c for c in host.commands if c[:2] == ["systemctl", "restart"]]) == restarts  # the old one serves
    store = ReleaseStore(host, STATE)
    assert store.current() == first and store.all()[-1].status == "rolled-back"


def test_a_failing_after_switch_hook_switches_back_and_restarts_the_old_release() -> None:
    settings, host = released(), host_with()
    hook_answers(host)
    first = apply(host, settings, wheelhouse(host, "/wh", "app-1-py3-none-any.whl"))

    def after_fails(argv: list[str]) -> CommandResult | None:
        if argv[:2] == ["/bin/sh", "-c"] and argv[-2:] == ["notify", "done"]:
            return CommandResult(0, "notify: refused\n\ndeploykit-hook-exit=3\n")
        return None

    host.hook = after_fails
    with pytest.raises(ApplyFailed, match="after_switch hook: notify done failed: exit 3: notify: refused; the prev"):
        apply(host, settings, wheelhouse(host, "/wh2", "app-2-py3-none-any.whl"))
    assert host.links["/srv/demo/current"] == f"releases/{first}"
    assert host.list_dir("/srv/demo/releases") == [first]
    assert host.commands[-1][:2] != ["/bin/sh", "-c"]
    assert ["systemctl", "restart", "demo.service"] in host.commands[-8:]  # the old code runs again


def test_rollback_switches_code_and_config_back_together_and_known_code_is_not_installed_again() -> None:
    settings, host = released(), host_with()
    hook_answers(host)
    one = apply(host, settings, wheelhouse(host, "/wh", "app-1-py3-none-any.whl"))
    two = apply(host, released("server.workers=3"), wheelhouse(host, "/wh2", "app-2-py3-none-any.whl"))
    hooks_run = len([c for c in host.commands if c[:2] == ["/bin/sh", "-c"]])
    back = deploy_release(released("server.workers=3"), host, None, health=False)
    back.run()
    assert host.links["/srv/demo/current"] == f"releases/{one}"
    assert b"--workers 1" in host.files["/etc/systemd/system/demo.service"].content  # v1's config too
    record = ReleaseStore(host, STATE).get(back.report.release or "")
    assert record.code_release == one and record.code_version and record.config_version
    assert len([c for c in host.commands if c[:2] == ["/bin/sh", "-c"]]) == hooks_run  # no hooks on a rollback
    installs = len([c for c in host.commands if c[1:3] == ["-m", "venv"]])
    apply(host, released(), wheelhouse(host, "/wh3", "app-2-py3-none-any.whl"))  # v2's code again
    assert host.links["/srv/demo/current"] == f"releases/{two}"
    assert len([c for c in host.commands if c[1:3] == ["-m", "venv"]]) == installs


def test_pruning_keeps_the_code_the_kept_releases_run_and_removes_the_rest() -> None:
    settings, host = released(), host_with()
    hook_answers(host)
    ids = [apply(host, settings, wheelhouse(host, f"/wh{n}", f"app-{n}-py3-none-any.whl")) for n in range(4)]
    assert host.list_dir("/srv/demo/releases") == ids[-2:]
    assert [r.id for r in ReleaseStore(host, STATE).all()] == ids[-2:]
    # a config-only release keeps running (and keeping) the code folder in place
    config_only = apply(host, released("server.workers=4"), None)
    assert host.list_dir("/srv/demo/releases") == ids[-1:]
    assert ReleaseStore(host, STATE).get(config_only).code_release == ids[-1]


def test_on_a_staging_root_hooks_are_recorded_not_run() -> None:
    settings = released()
    host = FakeHost(runs_commands=False)
    wheels = wheelhouse(host, "/wh", "app-1-py3-none-any.whl")
    report = deploy_settings(settings, host, install_app=wheels, health=False).run()
    hooks = [s for s in report.steps if "hook" in s.name]
    assert [s.detail for s in hooks] == ["ok in 0.0s: recorded, not run (staging root)"] * 2
    assert sum(1 for c in host.commands if c[:2] == ["/bin/sh", "-c"]) == 2


def test_code_releases_without_a_wheelhouse_or_a_live_release_is_refused() -> None:
    with pytest.raises(DeployKitError, match="no code release is in place yet"):
        deploy_settings(released(), host_with(), health=False).run()


def test_a_wheelhouse_without_wheels_is_refused_by_name() -> None:
    host = host_with()
    host.make_dir("/empty", mode=0o755)
    with pytest.raises(DeployKitError, match="no wheels in /empty on the host"):
        read_wheelhouse(host, "/empty")


def test_rolling_back_to_a_release_whose_code_was_pruned_says_so() -> None:
    settings, host = released(), host_with()
    hook_answers(host)
    one = apply(host, settings, wheelhouse(host, "/wh", "app-1-py3-none-any.whl"))
    apply(host, settings, wheelhouse(host, "/wh2", "app-2-py3-none-any.whl"))
    host.remove_tree(f"/srv/demo/releases/{one}")
    with pytest.raises(DeployKitError, match=f"the code of release {one} is gone"):
        CodeReleases(host, settings).switch_back_to(one)


def test_a_code_release_apply_killed_at_every_step_is_undone_by_the_next_run() -> None:
    """The journal names the new folder before it is made and the switch before the link moves:
    whatever a kill leaves, the next run puts v1's code back and removes v2's folder."""
    settings = released()

    def fresh() -> tuple[DyingHost, str]:
        host = dying_host()
        hook_answers(host)
        first = apply(host, settings, wheelhouse(host, "/wh1", "app-1-py3-none-any.whl"))
        wheelhouse(host, "/wh2", "app-2-py3-none-any.whl")
        return host, first

    host, _ = fresh()
    start = host.ops
    apply(host, settings, "/wh2")
    total = host.ops - start
    assert total > 15
    for kill_at in range(1, total + 1):
        host, first = fresh()
        host.kill_at = host.ops + kill_at
        with pytest.raises(Killed):
            apply(host, settings, "/wh2")
        host.locked.clear()  # the kernel drops a killed process's flock
        deploy_settings(settings, host, health=False).run()  # recovers (or finds the kill came after the record)
        live = host.links["/srv/demo/current"]
        if live != f"releases/{first}":  # killed after the release was recorded: v2 is complete and live
            assert ReleaseStore(host, STATE).current() == live.removeprefix("releases/"), kill_at
            continue
        assert host.list_dir("/srv/demo/releases") == [first], kill_at
        assert host.active["demo.service"], kill_at
        assert journals.path(STATE) not in host.files, kill_at
        apply(host, settings, "/wh2")
        assert host.links["/srv/demo/current"] != f"releases/{first}", kill_at
