"""[server] settings reach the running process, in both run modes: the websocket
profile's ws_max_size (1 MiB) closes a 2 MiB message with 1009, and root_path
and a default response header show up in the scope and the responses.

serve: the ExecStart= of the rendered unit, read as systemd reads it, run with
this Python, its inherited socket (--fd 3) swapped for a unix socket in a tmp
folder. gunicorn: the rendered conf.py, run by real Gunicorn on its own bind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploykit.check.consistency import unit_values
from deploykit.render import Kind, render
from deploykit.render.systemd import exec_split
from deploykit.settings.model import Settings
from tests.conftest import settings_for
from tests.server.harness import ROOT, Server
from tests.server_ws.raw import expect_close, frame, open_ws, read_frame

APP = "tests.server_ws.apps:router"
# A header value systemd would otherwise expand (% specifier, $ variable) and split (space).
HEADER = ("X-Deployed", "by deploykit 100% $HOME")
EXTRA = (f'app.module="{APP}"', 'server.root_path="/api"', f'server.headers={{"{HEADER[0]}"="{HEADER[1]}"}}')
MIB = 1024 * 1024


def serve_argv(settings: Settings, uds: Path) -> list[str]:
    service = render(settings).by_kind(Kind.SERVICE_UNIT)
    assert service is not None
    argv = exec_split(unit_values(service.content)["ExecStart"][0])
    assert argv[0] == f"{settings.app.venv}/bin/deploykit" and argv[1] == "serve", argv
    at = argv.index("--fd")
    assert argv[at + 1] == "3"
    return [sys.executable, "-m", "deploykit", *argv[1:at], "--uds", str(uds), *argv[at + 2 :]]


def start(argv: list[str], tmp_path: Path, uds: Path) -> Server:
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYKIT_", "LISTEN_", "NOTIFY_"))}
    env.update(PYTHONUNBUFFERED="1", HOME="/nonexistent")
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    return Server(argv=argv, proc=proc, stderr_path=log, stdout_path=log, uds=str(uds))


def start_gunicorn(settings: Settings, tmp_path: Path, uds: Path) -> Server:
    """Gunicorn with the conf.py SETTINGS render, listening on UDS (paths.socket)."""
    conf = render(settings).by_kind(Kind.GUNICORN_CONF)
    assert conf is not None
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(conf.content)
    return start([sys.executable, "-m", "gunicorn", "--config", str(path)], tmp_path, uds)


@pytest.fixture(params=["serve", "gunicorn"])
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    uds = tmp_path / "app.sock"
    if request.param == "serve":
        server = start(serve_argv(settings_for("websocket", *EXTRA), uds), tmp_path, uds)
    else:
        # the profile's server.workers and graceful timeout are [gunicorn]'s in that run mode
        settings = settings_for("websocket", *EXTRA, 'app.run_mode="gunicorn"', "server.workers=1",
                                "server.timeout_graceful_shutdown=30", f'paths.socket="{uds}"')  # fmt: skip
        server = start_gunicorn(settings, tmp_path, uds)
    try:
        server.wait_ready(20)
        yield server
    finally:
        server.stop()


def test_ws_max_size_from_the_profile_closes_a_2_mib_message_with_1009(deployed: Server) -> None:
    conn, _ = open_ws(deployed, "/echo")
    with conn:
        conn.send(frame(0x2, b"x" * (MIB // 2)))  # under the profile's 1 MiB: echoed
        opcode, payload = read_frame(conn, timeout=10)
        assert (opcode, len(payload)) == (0x2, MIB // 2)
        conn.try_send(frame(0x2, b"y" * (2 * MIB)))  # over it (the default would take 16 MiB)
        expect_close(conn, 1009, timeout=10)


def test_root_path_and_headers_reach_the_app_and_the_responses(deployed: Server) -> None:
    conn, response = open_ws(deployed, "/scope")
    with conn:
        _, payload = read_frame(conn, timeout=10)
    assert json.loads(payload)["root_path"] == "/api"
    reply = deployed.exchange(b"GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10)
    assert reply.status == 200
    assert reply.header(HEADER[0]) == HEADER[1]
