"""Messages and control frames with a real client library (websockets) and raw frames:
text/binary/fragmented echo, close codes and reasons both ways, ping/pong, permessage-deflate."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.polling import wait_for
from tests.server.harness import Server
from tests.server_ws.conftest import OwnFactory
from tests.server_ws.raw import close_code, expect_close, frame, open_ws, read_frame


def test_echo_text_binary_fragmented_and_large(shared: Server) -> None:
    with connect(f"ws://127.0.0.1:{shared.port}/echo", max_size=None) as ws:
        ws.send("héllo")
        assert ws.recv() == "héllo"
        ws.send(b"\x00\xffbin")
        assert ws.recv() == b"\x00\xffbin"
        ws.send(["frag", "men", "ted"])  # one message in three frames
        assert ws.recv() == "fragmented"
        big = "x" * 3_000_000
        ws.send(big)
        assert ws.recv() == big


def test_raw_fragments_with_a_ping_between(shared: Server) -> None:
    conn, _ = open_ws(shared)
    with conn:
        conn.send(frame(0x2, b"ab", fin=False) + frame(0x9, b"p?") + frame(0x0, b"cd"))
        assert read_frame(conn) == (0xA, b"p?")  # the server answers the ping in the middle of a message
        assert read_frame(conn) == (0x2, b"abcd")


def test_client_close_code_and_reason_reach_the_app(shared: Server) -> None:
    with connect(f"ws://127.0.0.1:{shared.port}/record") as ws:
        ws.close(4001, "bye now")

    def last_close() -> object:
        with shared.connect() as conn:
            conn.send(b"GET /last-close HTTP/1.1\r\nHost: t\r\n\r\n")
            return json.loads(conn.read_response().body)

    # The app records the close after the client has seen it: wait for the record, then compare.
    assert wait_for(last_close, 5.0, "the app to record the close") == {"code": 4001, "reason": "bye now"}


def test_app_close_code_and_reason_reach_the_client(shared: Server) -> None:
    with connect(f"ws://127.0.0.1:{shared.port}/close?code=4321&reason=app%20says%20bye") as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4321, "app says bye")


def test_client_ping_gets_pong(shared: Server) -> None:
    with connect(f"ws://127.0.0.1:{shared.port}/echo") as ws:
        assert ws.ping(b"hi").wait(2)


def test_server_pings_and_a_silent_client_is_closed_1011(own: OwnFactory) -> None:
    server = own("--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5")
    with connect(f"ws://127.0.0.1:{server.port}/echo") as ws:  # answers pings: stays open
        time.sleep(2.0)
        ws.send("still here")
        assert ws.recv() == "still here"
    conn, _ = open_ws(server)
    with conn:
        opcode, _ = read_frame(conn, timeout=2.0)
        assert opcode == 0x9  # a ping, never answered
        started = time.monotonic()
        expect_close(conn, 1011, timeout=3.0)
        assert time.monotonic() - started < 2.0


def test_permessage_deflate_negotiated_by_default(shared: Server) -> None:
    with connect(f"ws://127.0.0.1:{shared.port}/echo") as ws:
        assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        message = "compressible " * 10_000
        ws.send(message)
        assert ws.recv() == message


def test_permessage_deflate_can_be_turned_off(own: OwnFactory) -> None:
    server = own("--no-ws-per-message-deflate")
    with connect(f"ws://127.0.0.1:{server.port}/echo") as ws:
        assert ws.protocol.extensions == []
        ws.send("plain")
        assert ws.recv() == "plain"


def test_invalid_close_code_from_client_is_1002(shared: Server) -> None:
    conn, _ = open_ws(shared)
    with conn:
        conn.send(frame(0x8, b"\x03\xed"))  # 1005 may never be sent on the wire
        opcode, payload = read_frame(conn)
        assert (opcode, close_code(payload)) == (0x8, 1002)
