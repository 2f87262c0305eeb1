"""Worker processes and a timer on the real systemd host, beside the deployed app: `apply`
installs and starts them with the app's identity, env file, venv and sandbox; `status` and
`logs` show them; the timer's job runs; an env change restarts the process; and deleting
them from the settings (or turning one off: enabled = false) stops, disables and removes
their units. The module ends with the
host as the other real-host tests expect it (the example's settings applied again)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.realhost.conftest import CONFIG, Deployed

pytestmark = pytest.mark.realhost

WITH = "/root/processes.toml"  # /mnt/stage is read-only
#: a shell-line process (env file, $PATH and identity visible in its output), a Python one from
#: the venv in two instances (a template and a target), and a timer
EXTRA = r"""
[processes.ticker]
command = "while true; do echo \"ticker: $DEMO_GREETING; uid $(id -u); $(command -v python)\"; sleep 1; done"

[processes.py]
command = [
    "python",
    "-c",
    "import os, sys, time; print('py', os.environ['DEPLOYKIT_INSTANCE'], sys.prefix, flush=True); time.sleep(1e6)",
]
instances = 2

[timers.stamp]
command = "echo \"stamp fired in $PWD for $DEMO_GREETING\""
on_calendar = "*-*-* 04:00:00"
"""
UNITS = ("demo-ticker.service", "demo-py.target", "demo-py@1.service", "demo-py@2.service", "demo-stamp.timer")


def active(deployed: Deployed, unit: str) -> str:
    return str(deployed.box.run(["systemctl", "is-active", unit], check=False).stdout.strip())


def apply(deployed: Deployed, config: str, *sets: str) -> dict[str, Any]:
    args = [arg for value in sets for arg in ("--set", value)]
    done = deployed.deploykit("apply", "-c", config, "--yes", "--format", "json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def logs(deployed: Deployed, config: str, marker: str, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        done = deployed.deploykit("logs", "-c", config, "-n", "300", "--format", "json")
        assert done.returncode == 0, done.stderr
        found = [e for e in map(json.loads, done.stdout.splitlines()) if marker in e["message"]]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.fixture(scope="module")
def with_processes(deployed: Deployed) -> Iterator[dict[str, Any]]:
    deployed.box.sh(f"cp {CONFIG} {WITH} && cat >> {WITH} <<'EOF'\n{EXTRA}\nEOF")
    try:
        yield apply(deployed, WITH)
    finally:  # the example's own settings again: every unit of these processes goes away
        apply(deployed, CONFIG)


def test_apply_starts_each_process_with_the_apps_env_venv_and_user(
    deployed: Deployed, with_processes: dict[str, Any]
) -> None:
    assert [a for a in with_processes["actions"] if "enable" in a] == [
        "systemctl enable --now demo-ticker.service",
        "systemctl enable --now demo-py.target",
        "systemctl enable --now demo-stamp.timer",
    ]
    assert [active(deployed, u) for u in UNITS] == ["active"] * len(UNITS)
    ticks = logs(deployed, WITH, "ticker: hello from deploykit")
    assert ticks and ticks[-1]["source"] == "demo-ticker.service"
    # the DynamicUser of the app's unit, shared by name: one UID, so files in its StateDirectory stay writable
    app_pid = deployed.box.run(["systemctl", "show", "demo.service", "-p", "MainPID", "--value"]).stdout.strip()
    app_uid = deployed.box.run(["ps", "-o", "uid=", "-p", app_pid]).stdout.strip()
    assert f"uid {app_uid}; /srv/demo/.venv/bin/python" in ticks[-1]["message"]
    instances = sorted(e["message"] for e in logs(deployed, WITH, "py "))
    assert instances[-2:] == ["py 1 /srv/demo/.venv", "py 2 /srv/demo/.venv"]
    sandbox = deployed.box.run(["systemctl", "show", "demo-py@2.service", "-p", "ProtectSystem", "-p", "PrivateUsers",
                                "-p", "WorkingDirectory", "-p", "EnvironmentFiles"]).stdout  # fmt: skip
    assert "ProtectSystem=strict" in sandbox and "PrivateUsers=yes" in sandbox
    assert "WorkingDirectory=/srv/demo" in sandbox and "EnvironmentFiles=/etc/default/demo" in sandbox


def test_status_shows_the_processes_and_the_waiting_timer(deployed: Deployed, with_processes: dict[str, Any]) -> None:
    done = deployed.deploykit("status", "-c", WITH, "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], report["problems"]
    units = {u["name"]: (u["active"], u["sub"], u["ok"]) for u in report["units"]}
    assert [name for name in units if name.startswith("demo-")] == [*UNITS, "demo-stamp.service"]
    assert units["demo-stamp.timer"] == ("active", "waiting", True)
    assert units["demo-stamp.service"] == ("inactive", "dead", True)  # between runs
    assert units["demo-py@2.service"] == ("active", "running", True)


def test_the_timer_fires_and_its_output_is_in_the_logs(deployed: Deployed, with_processes: dict[str, Any]) -> None:
    timer = deployed.box.run(["systemctl", "show", "demo-stamp.timer", "-p", "Persistent", "-p", "TimersCalendar"])
    assert "Persistent=yes" in timer.stdout and "04:00:00" in timer.stdout
    job = deployed.box.run(["systemctl", "show", "demo-stamp.service", "-p", "TimeoutStartUSec", "--value"])
    assert job.stdout.strip() == "1h"  # timers.<name>.timeout's default: a hung job is killed
    deployed.box.run(["systemctl", "start", "demo-stamp.service"])  # what the timer starts, now
    fired = logs(deployed, WITH, "stamp fired")
    assert [(e["source"], e["message"]) for e in fired] == [
        ("demo-stamp.service", "stamp fired in /srv/demo for hello from deploykit")
    ]


def test_an_env_change_restarts_the_processes(deployed: Deployed, with_processes: dict[str, Any]) -> None:
    before = deployed.box.run(["systemctl", "show", "demo-ticker.service", "-p", "MainPID", "--value"]).stdout
    report = apply(deployed, WITH, 'app.env.DEMO_GREETING="second greeting"')
    assert "systemctl restart demo-ticker.service" in report["actions"]
    assert (
        "systemctl stop demo-py.target" in report["actions"] and "systemctl start demo-py.target" in report["actions"]
    )
    after = deployed.box.run(["systemctl", "show", "demo-ticker.service", "-p", "MainPID", "--value"]).stdout
    assert before != after
    assert logs(deployed, WITH, "ticker: second greeting")


def test_turning_a_process_off_stops_and_removes_its_units_only(
    deployed: Deployed, with_processes: dict[str, Any]
) -> None:
    """enabled = false: the way to leave out a process a profile defines (here on the file's own)."""
    report = apply(deployed, WITH, "processes.ticker.enabled=false")
    assert [a for a in report["actions"] if a.startswith(("systemctl disable", "remove"))] == [
        "systemctl disable --now demo-ticker.service",
        "remove /etc/systemd/system/demo-ticker.service",
    ]
    assert active(deployed, "demo-ticker.service") == "inactive"
    assert not deployed.infra.file("/etc/systemd/system/demo-ticker.service").exists
    assert [active(deployed, u) for u in UNITS if "ticker" not in u] == ["active"] * (len(UNITS) - 1)


def test_deleting_them_from_the_settings_stops_and_removes_their_units(
    deployed: Deployed, with_processes: dict[str, Any]
) -> None:
    report = apply(deployed, CONFIG)
    assert [a for a in report["actions"] if a.startswith(("systemctl disable", "systemctl stop", "remove"))] == [
        "systemctl disable --now demo-py.target",
        "systemctl disable --now demo-stamp.timer",
        "systemctl stop demo-stamp.service",
        "remove /etc/systemd/system/demo-py.target",
        "remove /etc/systemd/system/demo-py@.service",
        "remove /etc/systemd/system/demo-stamp.service",
        "remove /etc/systemd/system/demo-stamp.timer",
    ]  # the ticker went in the step before
    assert [active(deployed, u) for u in UNITS] == ["inactive"] * len(UNITS)
    left = deployed.box.run(["sh", "-c", "ls /etc/systemd/system | grep '^demo-' || true"]).stdout
    assert left == ""
    loaded = deployed.box.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "demo-*"]).stdout
    assert loaded.strip() == "", loaded
    status = json.loads(deployed.deploykit("status", "-c", CONFIG, "--format", "json").stdout)
    assert status["ok"] and [u["name"] for u in status["units"]] == ["demo.service", "demo.socket", "nginx.service"]
