"""The opening handshake (RFC 6455 §4.2): what the server refuses itself, and how the app
accepts (subprotocol, extra headers) or refuses (403, a custom response, a crash -> 500)."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.server.harness import Server
from tests.server_ws.raw import expect_close, frame, open_ws, read_frame, upgrade_request


def _refused(server: Server, data: bytes) -> tuple[int, str | None, bytes]:
    with server.connect() as conn:
        conn.send(data)
        response = conn.read_response()
        assert conn.closed_within(2.0), "the connection stayed open after a refused handshake"
        return response.status, response.header("sec-websocket-version"), response.body


@pytest.mark.parametrize(
    ("key", "why"),
    [(None, "missing"), ("not base64!", "invalid base64"), ("c2hvcnQ=", "decodes to 5 bytes, not 16")],
)
def test_missing_or_invalid_key_is_400(shared: Server, key: str | None, why: str) -> None:
    status, _, _ = _refused(shared, upgrade_request(key=key))
    assert status == 400, why


def test_two_keys_is_400(shared: Server) -> None:
    status, _, _ = _refused(shared, upgrade_request(headers=("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",)))
    assert status == 400


@pytest.mark.parametrize("version", ["8", "14", ""])
def test_unsupported_version_is_426_naming_13(shared: Server, version: str) -> None:
    headers = (f"Sec-WebSocket-Version: {version}",) if version else ("Sec-WebSocket-Version: 8, 13",)
    with shared.connect() as conn:
        conn.send(upgrade_request(headers=headers))
        response = conn.read_response()
        assert conn.closed_within(2.0)
    assert (response.status, response.header("sec-websocket-version")) == (426, "13")
    assert response.header("upgrade") == "websocket"
    assert response.values("connection") == ["close"]  # one answer: this connection ends here


def test_non_get_upgrade_is_400(shared: Server) -> None:
    data = upgrade_request().replace(b"GET ", b"POST ", 1)
    status, _, _ = _refused(shared, data)
    assert status == 400


def test_app_closing_before_accept_is_403(shared: Server) -> None:
    status, _, body = _refused(shared, upgrade_request("/deny"))
    assert (status, body) == (403, b"")


def test_websocket_http_response_extension_sends_the_apps_denial(shared: Server) -> None:
    with shared.connect() as conn:
        conn.send(upgrade_request("/respond"))
        response = conn.read_response()
        assert response.status == 418
        assert response.header("x-denied") == "yes"
        assert response.body == b"no websockets here"
        assert conn.closed_within(2.0)


def test_app_raising_before_accept_is_500_and_logged(shared: Server) -> None:
    status, _, _ = _refused(shared, upgrade_request("/raise"))
    assert status == 500
    shared.wait_for_stderr("boom before accept")


def test_accept_with_subprotocol_and_extra_headers(shared: Server) -> None:
    uri = f"ws://127.0.0.1:{shared.port}/echo"
    with connect(uri, subprotocols=["chat.v2", "chat.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v2"
        assert ws.response is not None
        assert ws.response.headers["x-app"] == "echo"
        assert ws.response.headers["server"] == "deploykit"


def test_scope(shared: Server) -> None:
    uri = f"ws://127.0.0.1:{shared.port}/scope?a=1"
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with connect(uri, subprotocols=["p1", "p2"], additional_headers=headers) as ws:  # type: ignore[list-item]
        scope = json.loads(ws.recv())
    assert scope["type"] == "websocket"
    assert scope["spec_version"] == "2.4"
    assert scope["path"] == "/scope" and scope["query_string"] == "a=1"
    assert scope["root_path"] == "/mnt"
    assert scope["subprotocols"] == ["p1", "p2"]
    assert scope["state"] == {"from_lifespan": "yes"}
    assert scope["client"] == ["203.0.113.7", 0]  # from X-Forwarded-For: the peer is a trusted proxy
    assert scope["scheme"] == "wss"  # X-Forwarded-Proto: https
    assert scope["server"][0] == "127.0.0.1"
    assert scope["extensions"] == {"websocket.http.response": {}}


def test_absolute_form_target_gives_path_query_and_authority(shared: Server) -> None:
    """RFC 9112 §3.2.2: the handshake's target in absolute-form is routed by its path; its authority is Host."""
    with shared.connect() as conn:
        conn.send(upgrade_request("http://example.test:81/scope?a=1"))  # upgrade_request also sends Host: test
        assert conn.read_response().status == 101
        _, payload = read_frame(conn)
    scope = json.loads(payload)
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope", "/scope", "a=1")
    assert scope["host"] == ["example.test:81"]
    assert scope["scheme"] == "ws"


def test_frames_sent_with_the_handshake_are_not_lost(shared: Server) -> None:
    with shared.connect() as conn:
        conn.send(upgrade_request() + frame(0x1, b"early"))  # one packet: request, then a frame
        assert conn.read_response().status == 101
        assert read_frame(conn) == (0x1, b"early")
        conn.send(frame(0x8, b"\x03\xe8"))
        expect_close(conn, 1000)


def test_invalid_extension_offer_is_400(shared: Server) -> None:
    status, _, _ = _refused(shared, upgrade_request(headers=('Sec-WebSocket-Extensions: permessage-deflate; x="',)))
    assert status == 400


def test_refused_handshake_seen_by_a_client_library(shared: Server) -> None:
    with pytest.raises(InvalidStatus) as info:
        with connect(f"ws://127.0.0.1:{shared.port}/deny"):
            pass
    assert info.value.response.status_code == 403


def test_plain_http_still_served_next_to_websockets(shared: Server) -> None:
    conn, _ = open_ws(shared)
    conn.close()
    with shared.connect() as http:
        http.send(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
        assert http.read_response().body == b"http /plain"
