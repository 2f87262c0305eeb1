"""The WebSocket opening handshake (RFC 6455 §4.2), sans-IO.

Shared by both WebSocket engines, so ``--ws websockets`` and ``--ws wsproto``
accept and refuse exactly the same requests and answer byte-for-byte alike:

* not a GET, not HTTP/1.1, or a request body -> 400;
* a missing, repeated or malformed ``Sec-WebSocket-Key`` (base64 of 16 bytes) -> 400;
* a malformed ``Sec-WebSocket-Extensions`` (RFC 6455 §9.1 syntax) -> 400;
* a missing or unsupported ``Sec-WebSocket-Version`` -> 426 with
  ``Sec-WebSocket-Version: 13`` (§4.2.2: the versions the server speaks);
* otherwise the app decides (``websocket.accept`` -> 101).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, NamedTuple

from deploykit.server.protocols.rules import RequestRejected
from deploykit.server.protocols.wire import ResponseError, check_header, status_line

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# RFC 9110 15.5.22: a 426 names the protocol in Upgrade; the connection closes after it (one Connection: close).
VERSION_HEADERS = b"sec-websocket-version: 13\r\nupgrade: websocket\r\n"
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = rf'[ \t]*{_TOKEN}(?:[ \t]*=[ \t]*(?:{_TOKEN}|"(?:[^"\\]|\\.)*"))?[ \t]*'
_EXTENSION = rf"[ \t]*{_TOKEN}[ \t]*(?:;{_PARAM})*"
# RFC 6455 §9.1: Sec-WebSocket-Extensions = 1#( token *( ";" token [ "=" ( token / quoted-string ) ] ) )
_EXTENSIONS = re.compile(rf"{_EXTENSION}(?:,{_EXTENSION})*")
_RESERVED_ACCEPT_HEADERS = frozenset(
    {b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-extensions", b"sec-websocket-protocol"}
)


class Handshake(NamedTuple):
    key: bytes
    subprotocols: list[str]
    extensions: list[str]  # the raw Sec-WebSocket-Extensions values, in order


def check_handshake(method: str, version: str, headers: list[tuple[bytes, bytes]], has_body: bool) -> Handshake:
    """The validated handshake of an upgrade request; RequestRejected (400/426) otherwise."""
    if method != "GET" or version != "1.1":
        raise RequestRejected(400, "WebSocket handshake must be an HTTP/1.1 GET")
    if has_body:
        raise RequestRejected(400, "WebSocket handshake with a request body")
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[str] = []
    extensions: list[str] = []
    for name, value in headers:
        if not name.startswith(b"sec-websocket-"):
            continue
        if name == b"sec-websocket-key":
            keys.append(value.strip())
        elif name == b"sec-websocket-version":
            versions.append(value.strip())
        elif name == b"sec-websocket-protocol":
            protocols += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
        elif name == b"sec-websocket-extensions":
            offer = value.decode("latin-1")
            if not _EXTENSIONS.fullmatch(offer):
                raise RequestRejected(400, "malformed Sec-WebSocket-Extensions")
            extensions.append(offer)
    if len(keys) != 1 or not _valid_key(keys[0]):
        raise RequestRejected(400, "missing or invalid Sec-WebSocket-Key")
    if versions != [b"13"]:
        raise RequestRejected(426, "unsupported Sec-WebSocket-Version (this server speaks 13)", VERSION_HEADERS)
    return Handshake(keys[0], protocols, extensions)


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def accept_value(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def accept_response(key: bytes, subprotocol: Any, extensions: str | None, headers: Any, common: bytes) -> bytes:
    """The 101 response. COMMON holds the server's own lines (server, date, --header)."""
    out = bytearray(status_line(101))
    out += b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: " + accept_value(key) + b"\r\n"
    if subprotocol is not None:
        if not isinstance(subprotocol, str) or not subprotocol.isascii() or not subprotocol.isprintable():
            raise ResponseError(f"invalid subprotocol {subprotocol!r}")
        out += b"sec-websocket-protocol: " + subprotocol.encode("ascii") + b"\r\n"
    if extensions:
        out += b"sec-websocket-extensions: " + extensions.encode("latin-1") + b"\r\n"
    for name, value in headers or ():
        lname = check_header(name, value)
        if lname in _RESERVED_ACCEPT_HEADERS:
            raise ResponseError(f"websocket.accept: header {name!r} is the server's to set")
        out += name + b": " + value + b"\r\n"
    return bytes(out + common + b"\r\n")


def denial_response(status: int, headers: Any, body: bytes, common: bytes) -> bytes:
    """A complete HTTP response that refuses the upgrade (403, or the app's websocket.http.response)."""
    out = bytearray(status_line(status))
    for name, value in headers or ():
        lname = check_header(name, value)
        if lname in (b"content-length", b"transfer-encoding", b"connection"):
            continue  # the server frames the denial: one body, then close
        out += name + b": " + value + b"\r\n"
    out += b"content-length: %d\r\nconnection: close\r\n" % len(body)
    return bytes(out + common + b"\r\n" + body)
