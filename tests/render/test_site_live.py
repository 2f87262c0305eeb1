"""The rendered nginx site served by a real nginx (a plain process on loopback,
no root): what a client can reach through it, not only what the text says."""

from __future__ import annotations

import http.client
import os
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from deploykit.check.nginx import wrap
from deploykit.render.nginx import render_site
from tests.conftest import free_port, require, settings_for

pytestmark = pytest.mark.tools


class _Echo(BaseHTTPRequestHandler):
    """The app: GET / answers the client address nginx passed in X-Real-IP; anything else is a 404."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        found = self.path == "/"
        body = (self.headers.get("X-Real-IP") or "-").encode() if found else b"app: not found"
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: object) -> None:
        pass


class _UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def serve(open_tmp: Path) -> Iterator[Callable[..., int]]:
    """Render the site for these overrides, run the app on its socket and nginx on loopback; returns the port."""
    started: list[tuple[subprocess.Popen[bytes], _UnixHTTP]] = []

    def start(*overrides: str) -> int:
        port = free_port()
        sock = open_tmp / "app.sock"
        settings = settings_for(
            None,
            f"nginx.listen={port}",
            'nginx.listen_address="127.0.0.1"',
            "nginx.ipv6=false",
            f'paths.socket="{sock}"',
            *overrides,
        )
        app = _UnixHTTP(str(sock), _Echo)
        os.chmod(sock, 0o666)
        threading.Thread(target=app.serve_forever, daemon=True).start()
        conf = wrap(settings, render_site(settings).content, open_tmp / "nginx")
        nginx = require("nginx")
        argv = [nginx, "-p", f"{open_tmp}/nginx/", "-c", str(conf), "-e", str(open_tmp / "nginx" / "error.log")]
        proc = subprocess.Popen([*argv, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        started.append((proc, app))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            except OSError:
                assert proc.poll() is None, (open_tmp / "nginx" / "error.log").read_text()
                time.sleep(0.05)
        raise AssertionError("nginx did not start listening")

    yield start
    for proc, app in started:
        proc.terminate()
        proc.wait(10)
        app.shutdown()
        app.server_close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("url", "path"), [("/static", "static/"), ("/static/", "static"), ("/static", "static")])
def test_a_static_location_never_serves_files_outside_its_folder(
    serve: Callable[..., int], open_tmp: Path, url: str, path: str
) -> None:
    (open_tmp / "static").mkdir()
    (open_tmp / "static" / "app.css").write_text("body {}")
    (open_tmp / "secret.txt").write_text("the database password")
    port = serve(f'nginx.static=[{{url = "{url}", path = "{open_tmp}/{path}"}}]')

    status, body = get(port, "/static../secret.txt")
    assert b"password" not in body
    assert 400 <= status < 500
    assert get(port, "/static/app.css") == (200, b"body {}")  # the other mismatch: every file was a 404


def _limited(port: int, client: str, times: int) -> list[int]:
    return [get(port, "/", {"X-Forwarded-For": client})[0] for _ in range(times)]


def test_rate_limiting_keys_on_the_client_a_trusted_proxy_names(serve: Callable[..., int]) -> None:
    port = serve(
        'nginx.real_ip_from=["127.0.0.1"]',
        'nginx.rate_limit={rate = "1r/m", burst = 0, urls = ["/"]}',
    )
    assert get(port, "/", {"X-Forwarded-For": "203.0.113.7"}) == (200, b"203.0.113.7")  # the app sees the client
    assert _limited(port, "203.0.113.7", 3) == [429, 429, 429]
    assert get(port, "/", {"X-Forwarded-For": "198.51.100.9"}) == (200, b"198.51.100.9")  # its own bucket


def test_without_real_ip_from_every_client_behind_the_proxy_shares_one_bucket(serve: Callable[..., int]) -> None:
    port = serve('nginx.rate_limit={rate = "1r/m", burst = 0, urls = ["/"]}')
    assert get(port, "/", {"X-Forwarded-For": "203.0.113.7"}) == (200, b"127.0.0.1")
    assert get(port, "/", {"X-Forwarded-For": "198.51.100.9"})[0] == 429
