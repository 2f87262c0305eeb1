"""The health probe script, run for real by the local host against real sockets."""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploykit.apply.probe import probe, targets
from deploykit.host.local import LocalHost
from tests.conftest import settings_for


class Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.headers["Host"].encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        conn, _ = self.socket.accept()
        return conn, ("127.0.0.1", 0)  # http.server wants a client address


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, int]]:
    path = str(tmp_path / "app.sock")
    unix = UnixServer(path, Answer)
    tcp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    for server in (unix, tcp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path, tcp.server_address[1]
    for server in (unix, tcp):
        server.shutdown()
        server.server_close()


def test_probe_asks_the_socket_and_nginx_with_the_server_name(servers: tuple[str, int]) -> None:
    path, port = servers
    settings = settings_for(None, f"paths.socket={path}", f"nginx.listen={port}", 'nginx.server_names=["demo.test"]')
    results = probe(LocalHost(), settings, timeout=3)
    assert [(r.name, r.status, r.ok) for r in results] == [("socket", 200, True), ("nginx", 200, True)]


def test_probe_reports_an_error_status_and_a_refused_connection(servers: tuple[str, int], tmp_path: Path) -> None:
    path, port = servers
    Answer.status = 503
    try:
        settings = settings_for(None, f"paths.socket={tmp_path}/none.sock", f"nginx.listen={port}")
        socket_result, nginx_result = probe(LocalHost(), settings, timeout=0.5)
    finally:
        Answer.status = 200
    # one plain line in the health report, not a Python exception name (issue 13 item 6)
    assert (
        not socket_result.ok
        and socket_result.error == f"no socket at {tmp_path}/none.sock (is the socket unit running?)"
    )
    assert nginx_result.status == 503 and not nginx_result.ok and "HTTP 503" in nginx_result.describe()


def test_targets_follow_tls_and_the_listen_address() -> None:
    plain = targets(settings_for(None, "nginx.listen_address=10.0.0.5", 'nginx.server_names=["_", "app.example"]'))
    assert plain["nginx"] == {"address": "10.0.0.5", "port": 80, "tls": False, "host": "app.example"}
    assert targets(settings_for(None))["nginx"]["address"] == "127.0.0.1"
    assert targets(settings_for(None, "nginx.listen_address=::"))["nginx"]["address"] == "::1"
