"""status, logs and doctor take the processes' and timers' units from the one place that names them."""

from __future__ import annotations

from deploykit.operate.doctor import unit_findings
from deploykit.operate.logs import journal_argv
from deploykit.operate.status import Units
from tests.conftest import settings_for

SETTINGS = settings_for("celery", "processes.worker.instances=2")


def test_status_and_doctor_see_every_unit_and_let_a_timers_job_be_idle() -> None:
    units = Units.of(SETTINGS)
    assert units.names() == [
        "demo.service", "demo.socket",
        "demo-worker.target", "demo-worker@1.service", "demo-worker@2.service",
        "demo-nightly.timer", "demo-nightly.service",
        "nginx.service",
    ]  # fmt: skip
    assert units.idle() == {"demo.service", "demo-nightly.service"}
    assert Units.of(settings_for(None)).names() == ["demo.service", "demo.socket", "nginx.service"]


def test_logs_read_the_journal_of_every_command() -> None:
    argv = journal_argv(SETTINGS)
    units = [argv[i + 1] for i, word in enumerate(argv) if word == "-u"]
    assert units == [
        "demo.service", "demo.socket", "demo-worker@1.service", "demo-worker@2.service", "demo-nightly.service"
    ]  # fmt: skip


def test_doctor_flags_a_failed_or_stopped_process_but_not_a_waiting_timer_job() -> None:
    units = Units.of(SETTINGS)
    states = dict.fromkeys(units.names(), "active")
    states.update(
        {"demo-nightly.service": "inactive", "demo-worker@2.service": "failed", "demo-worker.target": "inactive"}
    )
    found = unit_findings(states, {"demo-worker@2.service": "Traceback: no broker"}, set(units.idle()))
    assert [f.message for f in found] == [
        "demo-worker.target is inactive",
        "demo-worker@2.service has failed; its last log lines:\nTraceback: no broker",
    ]
