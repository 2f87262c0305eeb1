"""Stopping with WebSockets open (1012 on SIGTERM, 1001 on SIGINT, exit within the graceful
timeout), bad input over real sockets, --ws none, the h11 parser and the Gunicorn worker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from deploykit.server.protocols.websocket import CLOSE_TIMEOUT
from tests.server.harness import Server
from tests.server_ws.conftest import OwnFactory, start
from tests.server_ws.raw import KEY, expect_close, frame, open_ws, read_frame, upgrade_request
from tests.server_ws.test_limits import rss_kib


def _exits(server: Server, within: float) -> int:
    try:
        return server.proc.wait(within)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {within}s after the signal:\n{server.stderr()}") from None


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 1012), (signal.SIGINT, 1001)], ids=["TERM", "INT"])
def test_stop_closes_open_websockets(own: OwnFactory, sig: signal.Signals, code: int) -> None:
    # Both clients answer the close, so the exit must not wait out the graceful timeout: 10 s,
    # far from the 4 s bound, which leaves room for a loaded machine (make test-stress).
    server = own("--timeout-graceful-shutdown", "10")
    first, _ = open_ws(server)
    second, _ = open_ws(server, "/record")
    with first, second:
        server.signal(sig)
        started = time.monotonic()
        expect_close(first, code, answer=True)
        expect_close(second, code, answer=True)
        assert _exits(server, 4.0) == 0
        assert time.monotonic() - started < 4.0


def test_a_client_that_never_answers_the_close_does_not_hold_the_exit(own: OwnFactory) -> None:
    # A server that waited for the answer would hold the exit for CLOSE_TIMEOUT (5 s) after its
    # close frame; the graceful timeout (1 s) must cut that short. The bound sits between the two,
    # with room for a loaded machine: at load 20 the exit took 2.1-2.5 s (make test-stress).
    server = own("--timeout-graceful-shutdown", "1")
    bound = CLOSE_TIMEOUT - 1.0
    conn, _ = open_ws(server)
    with conn:
        server.signal(signal.SIGTERM)
        started = time.monotonic()
        opcode, _ = read_frame(conn)
        assert opcode == 0x8
        _exits(server, bound)
        assert time.monotonic() - started < bound
        assert conn.closed_within(1.0)


def test_stop_with_a_client_library_answering_the_close(own: OwnFactory) -> None:
    server = own("--timeout-graceful-shutdown", "10")  # the answered close must not wait this out
    with connect(f"ws://127.0.0.1:{server.port}/echo") as ws:
        server.signal(signal.SIGTERM)
        try:
            ws.recv(timeout=3)
        except Exception:  # noqa: BLE001 - ConnectionClosedOK is the expected end
            pass
        assert ws.close_code == 1012
    assert _exits(server, 4.0) == 0


def test_app_that_ignores_the_disconnect_does_not_hold_the_exit(own: OwnFactory) -> None:
    # The app never returns: only the graceful timeout (1 s) ends it. The bound leaves room for a
    # loaded machine yet stays under CLOSE_TIMEOUT, so waiting for the close handshake still fails.
    server = own("--timeout-graceful-shutdown", "1")
    bound = CLOSE_TIMEOUT - 1.0
    conn, _ = open_ws(server, "/stubborn")
    with conn:
        server.signal(signal.SIGTERM)
        started = time.monotonic()
        _exits(server, bound)
        assert time.monotonic() - started < bound


def test_random_and_truncated_frames_never_kill_the_worker(shared: Server) -> None:
    rng = random.Random(6455)
    before = rss_kib(shared.pid)
    good = frame(0x1, b"hello") + frame(0x2, bytes(300)) + frame(0x1, "é".encode() * 40_000)
    for round_ in range(150):
        conn, _ = open_ws(shared)
        with conn:
            kind = round_ % 5
            if kind == 0:
                data = rng.randbytes(rng.randrange(1, 4000))  # garbage
            elif kind == 1:
                data = good[: rng.randrange(1, len(good))]  # truncated mid-frame
            elif kind == 2:
                flipped = bytearray(good)
                for _ in range(rng.randrange(1, 8)):
                    flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
                data = bytes(flipped)  # bit flips: bad opcodes, RSV bits, lengths, UTF-8
            elif kind == 3:
                data = bytes((rng.randrange(256), 0x80 | 127)) + rng.randbytes(12)  # random huge headers
            else:
                data = frame(rng.choice([0x3, 0x8, 0x9, 0xB]), rng.randbytes(rng.randrange(0, 130)))  # odd control
            conn.try_send(data)
            conn.read_quiet(0.02)
    with connect(f"ws://127.0.0.1:{shared.port}/echo") as ws:  # still answering
        ws.send("after the fuzz")
        assert ws.recv() == "after the fuzz"
    assert shared.proc.poll() is None
    assert rss_kib(shared.pid) - before < 30_000, "memory grew during the fuzz"
    assert "Traceback" not in shared.stderr(), shared.stderr()


def test_garbage_before_accept_is_held_then_judged(shared: Server) -> None:
    with shared.connect() as conn:
        conn.send(upgrade_request() + b"\x00\xff garbage")
        assert conn.read_response().status == 101
        opcode, _ = read_frame(conn)
        assert opcode == 0x8


def test_ws_none_serves_upgrades_as_plain_http(log_dir: Path) -> None:
    server = start(log_dir, "--ws", "none")
    try:
        with server.connect() as conn:
            conn.send(upgrade_request("/chat"))
            response = conn.read_response()
            assert response.status == 200 and response.body == b"http /chat"  # the app saw an http scope
            assert response.header("connection") == "close"
            assert conn.closed_within(2.0)
    finally:
        server.stop()


@pytest.mark.parametrize("ws", ["websockets", "wsproto"])
def test_h11_parser(log_dir: Path, ws: str) -> None:
    server = start(log_dir, "--http", "h11", "--ws", ws)
    try:
        with connect(f"ws://127.0.0.1:{server.port}/echo") as client:
            client.send("over h11")
            assert client.recv() == "over h11"
        with server.connect() as conn:
            conn.send(upgrade_request() + frame(0x1, b"early"))
            assert conn.read_response().status == 101
            assert read_frame(conn) == (0x1, b"early")
        with server.connect() as conn:
            conn.send(upgrade_request(headers=("Sec-WebSocket-Version: 8",)))
            assert conn.read_response().status == 426
    finally:
        server.stop()


def test_gunicorn_worker(log_dir: Path) -> None:
    argv = [sys.executable, "-m", "gunicorn", "-k", "deploykit.server.workers.Worker", "-w", "1", "-b",
            "127.0.0.1:PORT", "--no-control-socket", "tests.server_ws.apps:router"]  # fmt: skip
    server = start(log_dir, argv=argv)
    try:
        with connect(f"ws://127.0.0.1:{server.port}/echo") as client:
            client.send("via gunicorn")
            assert client.recv() == "via gunicorn"
        conn, _ = open_ws(server)
        with conn:
            os.kill(server.pid, signal.SIGTERM)  # the arbiter stops its worker with TERM: 1012
            expect_close(conn, 1012, answer=True)
    finally:
        server.stop()


def test_key_constant_is_valid() -> None:
    assert len(KEY) == 24
