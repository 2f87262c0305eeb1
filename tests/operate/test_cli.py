"""`deploykit status|logs|doctor`: thin commands, their output and exit codes (0 ok, 2 usage, 3 found)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploykit import cli
from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from tests.operate.conftest import Canned

BASE = ["-p", "websocket", "--set", "app.name=demo"]


@pytest.fixture
def on_fake(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    monkeypatch.setattr(cli, "connect", lambda root, target, create_root=True: host)
    return host


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_table_and_json(on_fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", *BASE)
    assert code == 0
    assert "demo.service" in out and "2 workers, 1234 requests served" in out and "pids 107, 108" in out
    assert "/run/demo.sock socket 0660 root:www-data" in out and "all units active, health checks pass" in out
    code, out, _ = run(capsys, "status", *BASE, "--format", "json")
    assert code == 0 and json.loads(out)["workers"] == {"count": 2, "requests": 1234, "pids": [107, 108]}


def test_status_exits_3_when_something_is_down(
    on_fake: FakeHost, canned: Canned, capsys: pytest.CaptureFixture[str]
) -> None:
    canned.show["nginx.service"] = "Id=nginx.service\nActiveState=failed\nSubState=failed\n"
    code, out, err = run(capsys, "status", *BASE, "--format", "json")
    assert code == 3 and json.loads(out)["ok"] is False
    assert "error: nginx.service is failed (failed)" in err and "deploykit doctor" in err


def test_doctor_clean_then_a_finding(on_fake: FakeHost, canned: Canned, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "doctor", *BASE)
    assert code == 0 and "deploykit doctor" in out and "all checks passed" in out
    canned.socket_stat = CommandResult(0, "600 root www-data socket\n")
    code, out, err = run(capsys, "doctor", *BASE, "--format", "json")
    report = json.loads(out)
    assert code == 3 and report["ok"] is False and "1 problem(s) found on the host" in err
    socket = next(c for c in report["checks"] if c["name"] == "socket")
    assert socket["findings"][0]["file"] == "/run/demo.sock"


def test_logs_table_and_json_lines(on_fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    line = '127.0.0.1 - - [28/Nov/2026:08:18:24 +0000] "GET /logs-probe-1 HTTP/1.1" 200 102 "-" "curl/7.88.1"\n'
    on_fake.files["/var/log/nginx/demo.access.log"] = FileFacts(line.encode(), 0o644, "root", "root")
    code, out, _ = run(capsys, "logs", *BASE, "-n", "5")
    assert code == 0 and out.startswith("2026-11-28 08:18:24     nginx access │ 127.0.0.1 - - [28/Nov/2026")
    code, out, _ = run(capsys, "logs", *BASE, "--format", "json")
    assert json.loads(out) == {"time": "2026-11-28T08:18:24.000000+00:00", "source": "nginx access",
                               "message": line.strip(), "priority": None}  # fmt: skip


def test_bad_format_or_since_is_a_usage_error(on_fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "status", *BASE, "--format", "xml")[0] == 2
    code, _, err = run(capsys, "logs", *BASE, "--since", "whenever")
    assert code == 2 and "--since 'whenever': not a time" in err


def test_status_and_logs_do_not_offer_a_staging_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """They ask a live host: --root is neither in their help nor accepted (issue 20)."""
    for command in ("status", "logs"):
        assert run(capsys, command, "--help")[0] == 0
        assert "--root" not in capsys.readouterr().out
        code, _, err = run(capsys, command, *BASE, "--root", str(tmp_path))
        assert code == 2 and "No such option: --root" in err
