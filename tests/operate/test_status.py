"""`gather_status` on a FakeHost answering like the deployed container."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploykit.errors import UsageError
from deploykit.host.base import CommandResult
from deploykit.host.fake import FakeHost
from deploykit.host.staging import StagingHost
from deploykit.operate.status import gather_status
from deploykit.settings.model import Settings
from tests.operate.conftest import Canned


def test_a_healthy_stack(host: FakeHost, settings: Settings) -> None:
    report = gather_status(host, settings)
    assert report.ok and report.problems() == []
    assert [(u.name, u.active, u.main_pid) for u in report.units] == [
        ("demo.service", "active", 105), ("demo.socket", "active", None), ("nginx.service", "active", 38),
    ]  # fmt: skip
    assert (report.workers.count, report.workers.requests, report.workers.pids) == (2, 1234, (107, 108))
    assert (report.socket.exists, report.socket.mode, report.socket.owner, report.socket.group) == (
        True, "0660", "root", "www-data",
    )  # fmt: skip
    assert report.current is not None and report.current.status == "applied" and report.current.source == "apply"
    assert [(p.name, p.status) for p in report.health] == [("socket", 200), ("nginx", 200)]
    assert ["ps", "-o", "pid=", "--ppid", "105"] in host.commands


def test_json_has_every_section(host: FakeHost, settings: Settings) -> None:
    data = json.loads(gather_status(host, settings).to_json())
    assert set(data) == {"ok", "app", "units", "workers", "socket", "release", "releases", "health", "problems",
                         "certificates", "renewal"}  # fmt: skip
    assert data["certificates"] == [] and data["renewal"] is None  # no ACME in this profile
    assert data["ok"] is True and data["units"][0]["ok"] is True
    assert data["release"]["id"] == data["releases"][0]["id"] and data["releases"][0]["current"] is True


def test_a_failed_service_and_a_failed_probe_are_problems(host: FakeHost, settings: Settings, canned: Canned) -> None:
    canned.show["demo.service"] = "Id=demo.service\nActiveState=failed\nSubState=failed\nMainPID=0\nNRestarts=5\n"
    canned.probe = {"socket": {"status": 0, "error": "ConnectionRefusedError: refused", "seconds": 3.0},
                    "nginx": {"status": 502, "error": "", "seconds": 0.01}}  # fmt: skip
    report = gather_status(host, settings)
    assert not report.ok
    assert report.problems() == [
        "demo.service is failed (failed)",
        "health socket: ConnectionRefusedError: refused in 3.00s",
        "health nginx: HTTP 502 in 0.01s",
    ]
    assert report.workers.pids == () and not any(c[0] == "ps" for c in host.commands)


def test_an_idle_socket_activated_service_is_fine(host: FakeHost, settings: Settings, canned: Canned) -> None:
    canned.show["demo.service"] = "Id=demo.service\nActiveState=inactive\nSubState=dead\nMainPID=0\n"
    assert gather_status(host, settings).ok


def test_a_stopped_socket_unit_or_missing_socket_file(host: FakeHost, settings: Settings, canned: Canned) -> None:
    canned.show["demo.socket"] = "Id=demo.socket\nActiveState=inactive\nSubState=dead\n"
    canned.socket_stat = CommandResult(1, "", "stat: cannot statx '/run/demo.sock': No such file or directory")
    report = gather_status(host, settings)
    assert report.problems() == ["demo.socket is inactive (dead)", "/run/demo.sock does not exist"]


def test_no_release_recorded(settings: Settings, canned: Canned) -> None:
    report = gather_status(FakeHost(hook=canned.answer), settings)
    assert report.current is None and report.releases == () and report.ok


def test_status_needs_a_host_that_runs_commands(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(UsageError, match="--root DIR runs no commands"):
        gather_status(StagingHost(tmp_path), settings)
