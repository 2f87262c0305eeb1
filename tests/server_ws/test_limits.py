"""Limits: --ws-max-size against the declared length (1009 before any payload), unmasked
frames (1002), invalid UTF-8 (1007), zip bombs, and backpressure in both directions."""

from __future__ import annotations

import socket
import time
import zlib
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.server.harness import Server
from tests.server_ws.conftest import OwnFactory
from tests.server_ws.raw import expect_close, frame, header, open_ws, read_frame, upgrade_request


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_declared_length_over_max_size_is_1009_before_the_payload(shared: Server) -> None:
    conn, _ = open_ws(shared)
    with conn:
        started = time.monotonic()
        conn.send(header(0x2, 17 * 1024 * 1024))  # 17 MiB declared (default limit 16 MiB), no payload sent
        expect_close(conn, 1009, timeout=2.0)
        assert time.monotonic() - started < 1.0


def test_fragments_adding_up_past_max_size_are_1009(own: OwnFactory) -> None:
    server = own("--ws-max-size", "1000")
    conn, _ = open_ws(server)
    with conn:
        conn.send(frame(0x1, b"a" * 600, fin=False))
        conn.send(header(0x0, 600))  # the second fragment's header alone passes the limit
        expect_close(conn, 1009)


def test_message_at_max_size_is_fine(own: OwnFactory) -> None:
    server = own("--ws-max-size", "1000")
    with connect(f"ws://127.0.0.1:{server.port}/echo", compression=None) as ws:
        ws.send("a" * 1000)
        assert ws.recv() == "a" * 1000
        ws.send("a" * 1001)
        try:
            ws.recv()
            raise AssertionError("a message over --ws-max-size was echoed")
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1009


def test_unmasked_client_frame_is_1002(shared: Server) -> None:
    conn, _ = open_ws(shared)
    with conn:
        conn.send(frame(0x1, b"hello", mask=False))
        expect_close(conn, 1002)


def test_invalid_utf8_is_1007(shared: Server) -> None:
    for data in (
        frame(0x1, b"ok \xff\xfe"),
        frame(0x1, b"\xe2\x82", fin=False) + frame(0x0, b"(bad"),  # broken across fragments
    ):
        conn, _ = open_ws(shared)
        with conn:
            conn.send(data)
            expect_close(conn, 1007)


def test_zip_bomb_is_1009_not_inflated(own: OwnFactory) -> None:
    server = own("--ws-max-size", "1000000")
    compressor = zlib.compressobj(wbits=-12)
    bomb = compressor.compress(b"\0" * 50_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]  # permessage-deflate drops the sync flush's tail
    assert len(bomb) < 100_000
    conn, response = open_ws(server, headers=("Sec-WebSocket-Extensions: permessage-deflate",))
    assert "permessage-deflate" in (response.header("sec-websocket-extensions") or "")
    before = rss_kib(server.pid)
    with conn:
        conn.send(frame(0x2, bomb, rsv=0x40))  # RSV1: compressed
        expect_close(conn, 1009)
    assert rss_kib(server.pid) - before < 20_000, "the server inflated the bomb"


def test_slow_app_stops_the_server_reading(own: OwnFactory) -> None:
    """/noread never receives: after --ws-max-queue messages the server stops reading,
    so the client's sends block instead of the server buffering without bound."""
    server = own("--ws-max-queue", "4")
    conn, _ = open_ws(server, "/noread")
    before = rss_kib(server.pid)
    message = frame(0x2, b"m" * 65536)
    sent = 0
    with conn:
        conn.sock.settimeout(1.0)
        try:
            while sent < 1000 * len(message):  # 64 MiB, if nothing stopped it
                conn.sock.sendall(message)
                sent += len(message)
        except TimeoutError:
            pass
        # What the kernel's socket buffers absorb (a few MiB on loopback) plus 4 queued messages.
        assert sent < 160 * len(message), f"the server kept reading: {sent} bytes accepted"
        assert rss_kib(server.pid) - before < 30_000


def test_client_not_reading_bounds_what_the_server_buffers(own: OwnFactory) -> None:
    """/flood sends 256 KiB messages forever; a client that reads nothing must not make the server buffer them all."""
    server = own()
    with server.connect() as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        conn.send(upgrade_request("/flood"))
        time.sleep(1.0)
        before = rss_kib(server.pid)
        time.sleep(1.5)
        assert rss_kib(server.pid) - before < 10_000, "the server buffered a slow reader's messages"
        assert conn.read_response().status == 101
        opcode, payload = read_frame(conn)  # and the stream is intact once the client reads
        assert (opcode, len(payload)) == (0x2, 262144)
