"""apply's transaction on an in-memory host: every step, every way back."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable

import pytest

from deploykit.apply.engine import Deploy
from deploykit.apply.releases import ReleaseStore
from deploykit.apply.run import deploy_release, deploy_settings
from deploykit.errors import ApplyFailed, DeployKitError, Locked, NoRelease
from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from deploykit.render import render
from deploykit.settings.model import Settings
from tests.conftest import settings_for

STATE = "/var/lib/deploykit/demo"
HEALTHY = json.dumps({n: {"status": 200, "error": "", "seconds": 0.01} for n in ("socket", "nginx")})
APP_STARTS = CommandResult(0, 'imported\n{"ok": true, "lifespan": "complete"}\n')


def host_with(**answers: CommandResult) -> FakeHost:
    host = FakeHost()
    host.active["nginx.service"] = True
    host.answers.append((("python3", "-c"), CommandResult(0, answers.pop("health", CommandResult(0, HEALTHY)).stdout)))
    host.answers.append((("systemd-run",), answers.pop("app", APP_STARTS)))
    for prefix, answer in answers.items():
        host.answers.append((tuple(prefix.split("_")), answer))
    return host


def failing(match: list[str], after: int = 0) -> Callable[[list[str]], CommandResult | None]:
    """A hook that fails commands starting with MATCH, after letting AFTER of them pass."""
    seen = {"n": 0}

    def hook(argv: list[str]) -> CommandResult | None:
        if argv[: len(match)] == match:
            seen["n"] += 1
            if seen["n"] > after:
                return CommandResult(1, stderr=f"{' '.join(match)}: boom")
        return None

    return hook


def apply(host: FakeHost, settings: Settings, **kwargs: object) -> Deploy:
    deploy = deploy_settings(settings, host, **kwargs)  # type: ignore[arg-type]
    deploy.run()
    return deploy


def test_fresh_apply_writes_starts_checks_and_records_a_release() -> None:
    settings, host = settings_for(None), host_with()
    report = apply(host, settings).report
    assert report.changed and report.release and not report.failed_step
    assert [s.name for s in report.steps] == [
        "prepare the host", "save the release", "check the new app", "write files", "validate on the host", "services",
        "health", "record the release",
    ]  # fmt: skip
    assert {f.path for f in render(settings)} <= set(host.files)
    assert host.links["/etc/nginx/sites-enabled/demo.conf"] == "/etc/nginx/sites-available/demo.conf"
    assert ["nginx", "-t"] in host.commands and ["systemctl", "daemon-reload"] in host.commands
    assert ["systemctl", "enable", "--now", "demo.socket"] in host.commands
    assert ["systemctl", "reload-or-restart", "nginx.service"] in host.commands
    assert host.files[f"{STATE}/current"].content.decode().strip() == report.release
    manifest = json.loads(host.files[f"{STATE}/releases/{report.release}/manifest.json"].content)
    assert manifest["status"] == "applied" and all(not saved["exists"] for saved in manifest["before"])
    assert host.files[f"{STATE}/releases/{report.release}/manifest.json"].mode == 0o600
    assert [h.name for h in report.health] == ["socket", "nginx"]


def test_second_apply_changes_nothing_and_records_nothing() -> None:
    settings, host = settings_for(None), host_with()
    apply(host, settings)
    commands = len(host.commands)
    report = apply(host, settings).report
    assert not report.changed and report.release is None and report.actions == [] and report.steps == []
    assert all(argv[1] in ("is-enabled", "is-active") for argv in host.commands[commands:])
    assert len(ReleaseStore(host, STATE).all()) == 1


def test_nginx_rejecting_the_site_restores_the_files_and_touches_no_service() -> None:
    settings, host = settings_for(None), host_with()
    apply(host, settings)
    old = dict(host.files)
    host.hook = failing(["nginx", "-t"])
    changed = settings_for(None, "nginx.client_max_body_size=1m")
    start = len(host.commands)
    with pytest.raises(ApplyFailed, match="validate on the host failed: nginx -t: nginx -t: boom") as caught:
        apply(host, changed)
    assert caught.value.restored
    site = "/etc/nginx/sites-available/demo.conf"
    assert host.files[site] == old[site]
    assert not [argv for argv in host.commands[start:] if argv[:2] == ["systemctl", "reload-or-restart"]]
    assert not [argv for argv in host.commands[start:] if argv[1:2] in (["restart"], ["stop"], ["disable"])]
    store = ReleaseStore(host, STATE)
    assert [r.status for r in store.all()] == ["applied", "rolled-back"]
    assert store.current() == store.all()[0].id


def test_a_service_that_fails_to_restart_gets_its_old_files_and_a_restart() -> None:
    settings, host = settings_for(None), host_with()
    apply(host, settings)
    unit = "/etc/systemd/system/demo.service"
    old = host.files[unit]
    host.hook = failing(["systemctl", "restart", "demo.service"], after=0)
    with pytest.raises(ApplyFailed, match="services failed: systemctl restart demo.service") as caught:
        apply(host, settings_for(None, "app.module=app.other:app"))
    # the restore's own restart fails too with this hook, so the host says it is not fully back
    assert not caught.value.restored and "systemctl restart demo.service" in str(caught.value)
    assert host.files[unit] == old


def test_failed_start_on_a_fresh_host_disables_and_removes_everything() -> None:
    settings, host = settings_for(None), host_with()
    host.hook = failing(["systemctl", "start", "demo.service"])
    with pytest.raises(ApplyFailed) as caught:
        apply(host, settings)
    assert caught.value.restored
    assert not any(path.startswith("/etc/") for path in host.files)
    assert "/etc/nginx/sites-enabled/demo.conf" not in host.links
    assert ["systemctl", "disable", "demo.socket"] in host.commands
    assert ["systemctl", "stop", "demo.service"] in host.commands
    # units are stopped while their files still exist, then the files go
    order = [" ".join(a) for a in host.commands]
    assert order.index("systemctl disable demo.socket") < order.index("systemctl daemon-reload", order.index(
        "systemctl disable demo.socket"))  # fmt: skip


def test_a_failed_health_check_restores_and_says_why() -> None:
    settings = settings_for(None)
    answers = {
        "socket": {"status": 502, "error": "", "seconds": 1.0},
        "nginx": {"status": 200, "error": "", "seconds": 0},
    }
    host = host_with(health=CommandResult(0, json.dumps(answers)))
    with pytest.raises(ApplyFailed, match=r"health failed: socket: HTTP 502 in 1.00s"):
        apply(host, settings)
    assert not any(path.startswith("/etc/") for path in host.files)


def test_a_probe_that_cannot_run_is_a_failure_with_its_reason() -> None:
    host = host_with(health=CommandResult(127, "", "python3: not found"))
    host.answers[0] = (("python3", "-c"), CommandResult(127, "", "python3: not found"))
    with pytest.raises(ApplyFailed, match="probe did not run: python3: not found"):
        apply(host, settings_for(None))


def test_declining_the_question_changes_nothing() -> None:
    host = host_with()
    deploy = deploy_settings(settings_for(None), host)
    with pytest.raises(DeployKitError, match="cancelled"):
        deploy.run(lambda plan: False)
    assert not any(path.startswith("/etc/") for path in host.files)


def test_a_held_lock_refuses_a_second_apply() -> None:
    host = host_with()
    host.locked.add(f"{STATE}/lock")
    with pytest.raises(Locked):
        apply(host, settings_for(None))
    assert not host.files


def test_a_missing_user_is_created_and_removed_again_when_apply_fails() -> None:
    settings = settings_for(None, "app.user=demo")
    host = host_with(**{"id_-u_demo": CommandResult(1, stderr="no such user")})
    host.hook = failing(["systemctl", "start", "demo.service"])
    with pytest.raises(ApplyFailed):
        apply(host, settings)
    assert ["useradd", "--system", "--no-create-home", "--home-dir", "/srv/demo", "--shell", "/usr/sbin/nologin",
            "--user-group", "demo"] in host.commands  # fmt: skip
    assert ["userdel", "demo"] in host.commands


def test_install_app_makes_the_venv_and_removes_it_when_apply_fails() -> None:
    host = host_with()
    host.write("/mnt/wheels/app-1.0-py3-none-any.whl", b"", mode=0o644)
    host.hook = failing(["systemctl", "start", "demo.service"])
    with pytest.raises(ApplyFailed):
        apply(host, settings_for(None), install_app="/mnt/wheels")
    assert ["python3", "-m", "venv", "/srv/demo/.venv"] in host.commands
    pip = next(argv for argv in host.commands if argv[1:4] == ["-m", "pip", "install"])
    assert pip[-1] == "/mnt/wheels/app-1.0-py3-none-any.whl" and "--no-index" in pip


def test_new_app_code_alone_restarts_the_running_service() -> None:
    """--install-app (the old name of --wheelhouse) without code releases: the plan installs into
    app.venv in place and restarts, as a code release's plan does (no second restart path)."""
    settings, host = settings_for(None), host_with()
    apply(host, settings)
    host.write("/srv/demo/.venv/bin/python3", b"", mode=0o755)
    host.write("/mnt/wheels/app-2.0-py3-none-any.whl", b"v2", mode=0o644)
    host.answers.insert(0, (("/srv/demo/.venv/bin/python3", "-c"), CommandResult(0, HEALTHY)))
    report = apply(host, settings, install_app="/mnt/wheels").report
    version = host.files["/srv/demo/.venv/.deploykit-code"].content.decode().strip()
    assert report.changed and report.actions == [
        f"install code {version} into /srv/demo/.venv (in place, from the wheelhouse)",
        "systemctl restart demo.service",
    ]
    assert [s.name for s in report.steps][:2] == ["prepare the host", "install the app"]
    assert ["cp", "-a", "/srv/demo/.venv", "/srv/demo/.venv.deploykit-previous"] in host.commands
    assert "/srv/demo/.venv.deploykit-previous" not in host.dirs  # removed once the apply succeeded


def test_unchanged_app_code_is_no_change() -> None:
    settings, host = settings_for(None), host_with()
    apply(host, settings)
    host.write("/srv/demo/.venv/bin/python3", b"", mode=0o755)
    host.write("/mnt/wheels/app-1.0-py3-none-any.whl", b"v1", mode=0o644)
    host.answers.insert(0, (("/srv/demo/.venv/bin/python3", "-c"), CommandResult(0, HEALTHY)))
    assert apply(host, settings, install_app="/mnt/wheels").report.changed
    pips = len([c for c in host.commands if c[1:4] == ["-m", "pip", "install"]])
    report = apply(host, settings, install_app="/mnt/wheels").report
    assert not report.changed and report.release is None and report.actions == []
    assert len([c for c in host.commands if c[1:4] == ["-m", "pip", "install"]]) == pips  # pip is not run again


def test_new_app_code_that_fails_its_health_gate_puts_the_previous_venv_back() -> None:
    settings, host = settings_for(None), host_with()
    apply(host, settings)
    host.write("/srv/demo/.venv/bin/python3", b"", mode=0o755)
    host.write("/srv/demo/.venv/.deploykit-code", b"old\n", mode=0o644)
    host.dirs.add("/srv/demo")  # there before this apply: restore keeps it
    host.write("/mnt/wheels/app-2.0-py3-none-any.whl", b"v2", mode=0o644)
    host.answers.insert(0, (("/srv/demo/.venv/bin/python3", "-c"), CommandResult(0, HEALTHY)))
    sick = iter([CommandResult(0, HEALTHY.replace("200", "502"))])  # the new code's probe only

    def shell(argv: list[str]) -> CommandResult | None:  # cp -a and mv on the in-memory files
        if argv[:1] in (["cp"], ["mv"]):
            source, target = argv[-2:]
            for path in [p for p in host.files if p.startswith(f"{source}/")]:
                file = host.files[path] if argv[0] == "cp" else host.files.pop(path)
                host.files[target + path[len(source) :]] = file
            return CommandResult(0)
        return next(sick, None) if argv[1:2] == ["-c"] and "python3" in argv[0] else None

    host.hook = shell
    with pytest.raises(ApplyFailed, match="health failed") as caught:
        apply(host, settings, install_app="/mnt/wheels")
    assert caught.value.restored
    assert ["mv", "/srv/demo/.venv.deploykit-previous", "/srv/demo/.venv"] in host.commands
    assert host.files["/srv/demo/.venv/.deploykit-code"].content == b"old\n"


def test_rollback_goes_to_the_previous_release_and_to_a_named_one() -> None:
    host = host_with()
    first = apply(host, settings_for(None)).report.release
    second = apply(host, settings_for(None, "app.env.GREETING=two")).report.release
    env = "/etc/default/demo"
    assert b"GREETING" in host.files[env].content
    back = deploy_release(settings_for(None), host, None)
    back.run()
    assert back.report.source == f"rollback to {first}" and b"GREETING" not in host.files[env].content
    forward = deploy_release(settings_for(None), host, second)
    forward.run()
    assert b"GREETING" in host.files[env].content
    with pytest.raises(NoRelease, match="no release 'nope'"):
        deploy_release(settings_for(None), host, "nope")


def test_rollback_needs_an_earlier_release() -> None:
    host = host_with()
    apply(host, settings_for(None))
    with pytest.raises(NoRelease, match="nothing to roll back to"):
        deploy_release(settings_for(None), host, None)


def test_a_tampered_release_copy_is_refused() -> None:
    host = host_with()
    first = apply(host, settings_for(None)).report.release
    apply(host, settings_for(None, "app.env.GREETING=two"))
    saved = f"{STATE}/releases/{first}/files/etc/default/demo"
    host.files[saved] = FileFacts(b"EVIL=1\n", 0o600, "root", "root")
    with pytest.raises(DeployKitError, match="does not match its checksum"):
        deploy_release(settings_for(None), host, first)


def test_old_releases_are_pruned_but_never_the_current_one() -> None:
    host = host_with()
    ids = [apply(host, settings_for(None, "deploy.keep_releases=2", f"app.env.N={n}")).report.release
           for n in range(4)]  # fmt: skip
    kept = [r.id for r in ReleaseStore(host, STATE).all()]
    assert kept == ids[-2:]


class RefusingHost(FakeHost):
    """A host that refuses to write under one path (permission denied, disk full)."""

    refuse: str = ""

    def write(self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root") -> None:
        if self.refuse and path.startswith(self.refuse):
            raise DeployKitError(f"cannot write {path}: Permission denied")
        super().write(path, content, mode=mode, owner=owner, group=group)


def test_a_write_the_host_refuses_restores_the_files_already_written() -> None:
    settings = settings_for(None)
    host = RefusingHost()
    host.answers += [(("python3", "-c"), CommandResult(0, HEALTHY)), (("systemd-run",), APP_STARTS)]
    apply(host, settings)
    old = dict(host.files)
    host.refuse = "/etc/systemd/system/demo.socket"
    with pytest.raises(ApplyFailed, match="write files failed: cannot write /etc/systemd/system/demo.socket") as caught:
        apply(host, settings_for(None, "systemd.socket_mode=0666", "nginx.client_max_body_size=1m"))
    assert caught.value.restored
    assert {p: f for p, f in host.files.items() if p.startswith("/etc/")} == {
        p: f for p, f in old.items() if p.startswith("/etc/")
    }


def test_ctrl_c_during_a_step_restores_and_says_so() -> None:
    settings, host = settings_for(None), host_with()

    fired: list[bool] = []

    def interrupt(argv: list[str]) -> CommandResult | None:
        if argv[:2] == ["systemctl", "daemon-reload"] and not fired:
            fired.append(True)
            raise KeyboardInterrupt
        return None

    host.hook = interrupt
    with pytest.raises(ApplyFailed, match=r"services failed: interrupted \(Ctrl-C, SIGTERM or SIGHUP\)"):
        apply(host, settings)
    assert not any(path.startswith("/etc/") for path in host.files)


def test_sigterm_during_apply_restores_like_ctrl_c() -> None:
    settings, host = settings_for(None), host_with()
    fired: list[bool] = []

    def terminate(argv: list[str]) -> CommandResult | None:
        if argv[:2] == ["systemctl", "daemon-reload"] and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return None

    host.hook = terminate
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ApplyFailed, match="interrupted"):
        apply(host, settings)
    assert not any(path.startswith("/etc/") for path in host.files)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_release_that_cannot_be_saved_undoes_what_prepare_made() -> None:
    settings = settings_for(None, "app.user=demo")
    host = RefusingHost()
    host.refuse = f"{STATE}/releases/"
    host.answers += [(("python3", "-c"), CommandResult(0, HEALTHY)), (("id", "-u", "demo"), CommandResult(1))]
    host.answers.append((("systemd-run",), APP_STARTS))
    with pytest.raises(ApplyFailed, match="save the release failed: cannot write") as caught:
        apply(host, settings)
    assert caught.value.restored and ["userdel", "demo"] in host.commands
    assert not any(path.startswith("/etc/") for path in host.files)
