"""apply with processes and timers on an in-memory host: a deleted process's units are stopped,
disabled and removed inside the transaction, and every way back (a failed step, a killed apply,
a rollback) puts them back enabled and running."""

from __future__ import annotations

import pytest

from deploykit.apply.recover import pending_recovery
from deploykit.apply.releases import ReleaseStore
from deploykit.apply.run import deploy_release, deploy_settings
from deploykit.errors import ApplyFailed
from deploykit.host.base import CommandResult
from deploykit.host.fake import FakeHost
from deploykit.settings.load import load
from tests.apply.test_engine import HEALTHY, STATE, apply, failing, host_with
from tests.apply.test_interrupted import Killed, dying_host, etc
from tests.conftest import settings_for

WORKER = "/etc/systemd/system/demo-worker.service"
TIMER = "/etc/systemd/system/demo-nightly.timer"
NIGHTLY = ('timers.nightly.command=["python", "-m", "app.nightly"]', 'timers.nightly.on_calendar="daily"')
CELERY = settings_for(None, 'processes.worker.command="celery --app app.tasks worker"', *NIGHTLY)
#: the same stack without its worker (the timer stays)
NO_WORKER = settings_for(None, *NIGHTLY)


def states(host: FakeHost, *units: str) -> list[tuple[bool, bool]]:
    return [(host.enabled.get(u, False), host.active.get(u, False)) for u in units]


def test_apply_enables_the_new_units_and_removes_a_deleted_process() -> None:
    host = host_with()
    apply(host, CELERY)
    assert states(host, "demo-worker.service", "demo-nightly.timer") == [(True, True), (True, True)]
    report = apply(host, NO_WORKER).report
    assert report.actions == [
        "systemctl disable --now demo-worker.service",
        f"remove {WORKER}",
        "systemctl daemon-reload",
    ]
    assert WORKER not in host.files and TIMER in host.files
    assert states(host, "demo-worker.service") == [(False, False)]
    # stopped and disabled while its file still existed, and systemd reloaded after it was gone
    order = [" ".join(c) for c in host.commands]
    disabled = order.index("systemctl disable --now demo-worker.service")
    assert order.index("systemctl daemon-reload", disabled) > disabled
    # the release kept the removed file, so a rollback can bring it back
    release = ReleaseStore(host, STATE).get(report.release)
    assert any(saved.path == WORKER and saved.exists for saved in release.before)


def test_a_failed_step_after_the_removal_puts_the_process_back_enabled_and_running() -> None:
    host = host_with()
    apply(host, CELERY)
    before = etc(host)
    host.hook = failing(["systemctl", "daemon-reload"])  # after the removal, before anything starts
    with pytest.raises(ApplyFailed, match="services failed: systemctl daemon-reload") as caught:
        apply(host, NO_WORKER)
    assert caught.value.restored is False  # the restore's own daemon-reload fails with this hook
    host.hook = None
    assert etc(host) == before
    assert ["systemctl", "enable", "demo-worker.service"] in host.commands
    assert states(host, "demo-worker.service") == [(True, True)]


def test_a_failed_health_gate_restores_the_deleted_process() -> None:
    host = host_with()
    apply(host, CELERY)
    before = etc(host)
    sick = iter([CommandResult(0, HEALTHY.replace("200", "502"))])  # the new stack's probe only
    host.hook = lambda argv: next(sick, None) if argv[:2] == ["python3", "-c"] else None
    with pytest.raises(ApplyFailed, match="health failed") as caught:
        apply(host, NO_WORKER)
    assert caught.value.restored
    assert etc(host) == before and states(host, "demo-worker.service") == [(True, True)]


def test_new_app_code_restarts_the_processes_too() -> None:
    host = host_with()
    apply(host, CELERY)
    host.write("/srv/demo/.venv/bin/python3", b"", mode=0o755)
    host.write("/mnt/wheels/app-2.0-py3-none-any.whl", b"", mode=0o644)
    host.answers.insert(0, (("/srv/demo/.venv/bin/python3", "-c"), CommandResult(0, HEALTHY)))
    report = apply(host, CELERY, install_app="/mnt/wheels").report
    assert report.actions[1:] == ["systemctl restart demo.service", "systemctl restart demo-worker.service"]
    assert report.actions[0].startswith("install code ")


def test_rollback_brings_a_deleted_process_back() -> None:
    host = host_with()
    apply(host, CELERY)
    apply(host, NO_WORKER)
    deploy = deploy_release(NO_WORKER, host, None)
    deploy.run()
    assert WORKER in host.files and states(host, "demo-worker.service") == [(True, True)]
    assert "systemctl enable --now demo-worker.service" in deploy.report.actions


def test_a_killed_apply_that_was_removing_a_process_is_undone_at_every_step() -> None:
    total = 0
    probe = dying_host()
    apply(probe, CELERY)
    start = probe.ops
    apply(probe, NO_WORKER)
    total = probe.ops - start
    assert total > 10
    for kill_at in range(1, total + 1):
        host = dying_host()
        apply(host, CELERY)
        before = etc(host)
        host.kill_at = host.ops + kill_at
        with pytest.raises(Killed):
            apply(host, NO_WORKER)
        host.locked.clear()
        store = ReleaseStore(host, STATE)
        recovery = pending_recovery(host, store)
        if recovery is None:  # killed before the journal, or after the release was recorded
            continue
        assert recovery.undo(host, store) == [], kill_at
        if not recovery.journal.written:
            continue
        assert etc(host) == before, kill_at
        assert states(host, "demo-worker.service") == [(True, True)], kill_at
        # and the next run removes it, to the end
        deploy_settings(NO_WORKER, host).run()
        assert WORKER not in host.files and states(host, "demo-worker.service") == [(False, False)], kill_at


def test_a_profiles_worker_turned_off_is_stopped_and_removed_like_a_deleted_one() -> None:
    profile = load(profile="celery", environ={}, overrides=("app.name=demo",)).settings
    off = load(profile="celery", environ={}, overrides=("app.name=demo", "processes.worker.enabled=false")).settings
    host = host_with()
    apply(host, profile)
    assert states(host, "demo-worker.service") == [(True, True)]
    report = apply(host, off).report
    assert report.actions == ["systemctl disable --now demo-worker.service", f"remove {WORKER}",
                              "systemctl daemon-reload"]  # fmt: skip
    assert WORKER not in host.files and TIMER in host.files
