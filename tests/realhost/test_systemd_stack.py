"""The stack `deploykit apply` installed, on a real systemd host: socket activation, Type=notify,
nginx in front, hardening, and `systemctl reload` under load losing nothing."""

from __future__ import annotations

import json

import pytest

from tests.realhost.conftest import Deployed, curl, load_result, under_load
from tests.realhost.host import Container

pytestmark = pytest.mark.realhost


@pytest.fixture(scope="module")
def host(deployed: Deployed) -> Container:
    return deployed.box


def test_served_through_nginx_with_the_env_file(host: Container) -> None:
    response = curl(host)
    assert response.stdout.startswith("HTTP/1.1 200"), response.stdout + response.stderr
    body = json.loads(response.stdout.split("\n\n", 1)[1])  # text mode turned CRLF into LF
    assert body["greeting"] == "hello from deploykit"  # from /etc/default/demo
    assert body["scheme"] == "http" and body["client"] == "127.0.0.1"  # proxy headers from nginx over the socket
    static = curl(host, "/static/hello.txt")
    assert "static file served by nginx" in static.stdout


def test_units_are_active_notify_socket_activated_and_hardened(host: Container) -> None:
    props = host.run(["systemctl", "show", "demo.service", "-p", "ActiveState", "-p", "Type", "-p", "StatusText",
                      "-p", "DynamicUser", "-p", "ProtectSystem", "-p", "NRestarts"]).stdout  # fmt: skip
    assert "ActiveState=active" in props and "Type=notify" in props and "DynamicUser=yes" in props
    assert "ProtectSystem=strict" in props and "NRestarts=0" in props
    assert "StatusText=2 workers" in props  # our STATUS= over $NOTIFY_SOCKET
    assert host.run(["systemctl", "is-active", "demo.socket"]).stdout.strip() == "active"
    socket_mode = host.run(["stat", "-c", "%a %G", "/run/demo.sock"]).stdout.split()
    assert socket_mode == ["660", "www-data"]
    env_mode = host.run(["stat", "-c", "%a %U", "/etc/default/demo"]).stdout.split()
    assert env_mode == ["600", "root"]
    score = host.run(["systemd-analyze", "security", "demo.service", "--no-pager"]).stdout
    assert "Overall exposure level for demo.service: 1." in score


def test_systemctl_reload_under_load_loses_no_request(host: Container) -> None:
    before = host.run(["systemctl", "show", "demo.service", "-p", "MainPID"]).stdout.strip()
    load = under_load(host, 6)
    host.sh("sleep 1.5; systemctl reload demo.service; sleep 1.5; systemctl reload demo.service")
    result = load_result(load, timeout=60)
    assert result["failures"] == []
    assert result["ok"] > 200
    after = host.run(["systemctl", "show", "demo.service", "-p", "MainPID"]).stdout.strip()
    assert before == after  # reloaded in place: the supervisor stayed, its workers were replaced
    journal = host.run(["journalctl", "-u", "demo.service", "--no-pager"]).stdout
    assert journal.count("rolling restart") == 2


def test_stop_is_clean(host: Container) -> None:
    host.run(["systemctl", "stop", "demo.service"])
    result = host.run(["systemctl", "show", "demo.service", "-p", "Result", "-p", "ExecMainStatus"]).stdout
    assert "Result=success" in result and "ExecMainStatus=0" in result
    # the socket stays: the next connection starts the service again (socket activation)
    assert curl(host).stdout.startswith("HTTP/1.1 200")
