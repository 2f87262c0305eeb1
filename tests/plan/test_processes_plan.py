"""Planning processes and timers (pure, host facts from a FakeHost): new ones enabled, changed
ones restarted, deleted ones stopped, disabled and removed; other apps' units never touched."""

from __future__ import annotations

from deploykit.facts import gather
from deploykit.host.base import FileFacts
from deploykit.host.fake import FakeHost
from deploykit.plan import RemoveFile, Systemctl, WriteFile, plan
from deploykit.render import render
from deploykit.settings.model import Settings
from tests.conftest import settings_for
from tests.plan.test_plan import applied

UNITS = "/etc/systemd/system"
CELERY = settings_for("celery")


def running(settings: Settings) -> FakeHost:
    """SETTINGS' bundle installed, with its processes and timers enabled and running."""
    host = applied(settings, render(settings))
    for unit in ("demo-worker.service", "demo-worker.target", "demo-nightly.timer", "demo-beat.service"):
        host.enabled[unit] = host.active[unit] = True
    return host


def services(settings: Settings, host: FakeHost) -> list[str]:
    """The plan's actions other than file writes."""
    bundle = render(settings)
    actions = plan(bundle, gather(host, bundle, settings), settings).actions
    return [a.describe() for a in actions if not isinstance(a, WriteFile)]


def test_a_fresh_host_enables_each_process_and_timer_after_the_app() -> None:
    assert services(CELERY, FakeHost()) == [
        "link /etc/nginx/sites-enabled/demo.conf -> /etc/nginx/sites-available/demo.conf",
        "systemctl daemon-reload",
        "systemctl enable --now demo.socket",
        "systemctl start demo.service",
        "systemctl enable --now demo-worker.service",
        "systemctl enable --now demo-nightly.timer",
        "nginx -t, then systemctl reload nginx",
    ]


def test_nothing_changed_means_nothing_to_do() -> None:
    assert services(CELERY, running(CELERY)) == []


def test_an_env_change_restarts_the_app_and_its_processes_but_not_a_timer() -> None:
    changed = settings_for("celery", 'app.env.CELERY_BROKER_URL="redis://10.0.0.2:6379/0"')
    assert services(changed, running(CELERY)) == [
        "systemctl restart demo.service",
        "systemctl restart demo-worker.service",
    ]


def test_a_process_command_change_restarts_only_that_process() -> None:
    changed = settings_for("celery", 'processes.worker.command="celery --app app.tasks worker --concurrency 4"')
    assert services(changed, running(CELERY)) == ["systemctl daemon-reload", "systemctl restart demo-worker.service"]


def test_a_new_schedule_restarts_only_the_timer() -> None:
    changed = settings_for("celery", 'timers.nightly.on_calendar="hourly"')
    assert services(changed, running(CELERY)) == ["systemctl daemon-reload", "systemctl restart demo-nightly.timer"]


def test_a_stopped_process_is_started_and_a_disabled_one_enabled() -> None:
    host = running(CELERY)
    host.active["demo-worker.service"] = False
    host.enabled["demo-nightly.timer"] = False
    assert services(CELERY, host) == [
        "systemctl start demo-worker.service",
        "systemctl enable --now demo-nightly.timer",
    ]


def test_a_deleted_process_and_timer_are_stopped_disabled_and_removed_before_the_reload() -> None:
    without = settings_for(None)
    host = running(CELERY)
    bundle = render(without)
    result = plan(bundle, gather(host, bundle, without), without)
    assert [a for a in result.actions if not isinstance(a, WriteFile)] == [
        Systemctl("disable --now", "demo-nightly.timer"),
        Systemctl("stop", "demo-nightly.service"),
        Systemctl("disable --now", "demo-worker.service"),
        RemoveFile(f"{UNITS}/demo-nightly.service"),
        RemoveFile(f"{UNITS}/demo-nightly.timer"),
        RemoveFile(f"{UNITS}/demo-worker.service"),
        Systemctl("daemon-reload"),
        Systemctl("restart", "demo.service"),  # the profile's env file differs from the default's
    ]
    assert f"--- a{UNITS}/demo-worker.service\n" in result.diff and "-Type=exec\n" in result.diff


def test_more_instances_replace_the_single_unit_with_a_target_and_fewer_stop_the_extra_ones() -> None:
    three = settings_for("celery", "processes.worker.instances=3")
    assert services(three, running(CELERY)) == [
        "systemctl disable --now demo-worker.service",
        f"remove {UNITS}/demo-worker.service",
        "systemctl daemon-reload",
        "systemctl enable --now demo-worker.target",
    ]
    two = settings_for("celery", "processes.worker.instances=2")
    # stop + start, not restart: a restart of the target would restart instance 3 too (PartOf=)
    assert services(two, running(three)) == [
        "systemctl daemon-reload",
        "systemctl stop demo-worker.target",
        "systemctl start demo-worker.target",
    ]


def test_units_of_another_app_or_written_by_hand_are_never_removed() -> None:
    host = running(CELERY)
    # app "demo-api" has a process "worker": same file-name prefix, its own marker
    other = render(settings_for("celery", "app.name=demo-api"))
    theirs = next(f for f in other if f.path.endswith("demo-api-worker.service"))
    host.files[theirs.path] = FileFacts(theirs.content.encode(), 0o644, "root", "root")
    host.files[f"{UNITS}/demo-backup.service"] = FileFacts(b"[Service]\nExecStart=/bin/true\n", 0o644, "root", "root")
    assert services(CELERY, host) == []
    assert [a for a in services(settings_for(None), host) if "demo-api" in a or "backup" in a] == []
