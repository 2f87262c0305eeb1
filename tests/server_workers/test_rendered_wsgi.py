"""app.interface and server.wsgi_threads reach the running process, in both run modes: the
flask profile rendered, its ExecStart= (serve) or conf.py (gunicorn) started for real,
against a WSGI app that only an explicit `--interface wsgi` can serve (its *args signature
leaves auto unable to tell), and with 3 threads the app sees exactly 3 of them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import settings_for
from tests.server.harness import ROOT, Server, parse_response
from tests.server_workers.test_rendered_settings import serve_argv, start, start_gunicorn

APP = "tests.server.wsgi_apps:ambiguous"
EXTRA = (f'app.module="{APP}"', "server.workers=1", "server.wsgi_threads=3")


@pytest.fixture(params=["serve", "gunicorn"])
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    uds = tmp_path / "app.sock"
    if request.param == "serve":
        server = start(serve_argv(settings_for("flask", *EXTRA), uds), tmp_path, uds)
    else:
        settings = settings_for("flask", *EXTRA, 'app.run_mode="gunicorn"', f'paths.socket="{uds}"')
        server = start_gunicorn(settings, tmp_path, uds)
    try:
        server.wait_ready(20)
        yield server
    finally:
        server.stop()


def get(uds: str, target: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(uds)
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    parsed = parse_response(data, eof=True)
    assert parsed is not None and parsed[0].status == 200, data
    return parsed[0].body


def test_interface_and_threads_reach_the_process(deployed: Server) -> None:
    assert deployed.uds is not None
    assert get(deployed.uds, "/").startswith(b"wsgi")  # served: --interface wsgi arrived
    names: list[bytes] = []
    requests = [threading.Thread(target=lambda: names.append(get(deployed.uds or "", "/?sleep=0.5"))) for _ in range(8)]
    for thread in requests:
        thread.start()
    for thread in requests:
        thread.join()
    assert len(names) == 8 and len(set(names)) == 3, names  # wsgi_threads=3, not the default (4 x CPUs)


def test_auto_cannot_serve_this_app(tmp_path: Path) -> None:
    # The same rendered command without app.interface: the app is refused at start-up, in one line.
    argv = serve_argv(settings_for("flask", *EXTRA, 'app.interface="auto"'), tmp_path / "app.sock")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "cannot tell whether 'ambiguous' is" in done.stderr and "--interface" in done.stderr


def test_gunicorn_worker_refuses_an_app_auto_cannot_classify(tmp_path: Path) -> None:
    # The worker class adapts the app Gunicorn loaded; one it cannot classify stops the arbiter
    # (APP_LOAD_ERROR) with the reason, instead of workers answering 500 or restarting forever.
    argv = [sys.executable, "-m", "gunicorn", "-k", "deploykit.server.workers.Worker", "-b", f"unix:{tmp_path}/s",
            "--no-control-socket", APP]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYKIT_", "LISTEN_", "NOTIFY_"))}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "cannot tell whether 'ambiguous' is" in done.stderr and "App failed to load" in done.stderr
