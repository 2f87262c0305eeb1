"""Raw WebSocket bytes over a real socket, for what a well-behaved client library never sends."""

from __future__ import annotations

import base64
import os
import struct
import time

from tests.server.harness import RawConn, Response, Server

KEY = base64.b64encode(b"0123456789abcdef").decode()
MASK = b"\x11\x22\x33\x44"


def upgrade_request(path: str = "/echo", headers: tuple[str, ...] = (), key: str | None = KEY) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: test", "Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if not any(h.lower().startswith("sec-websocket-version:") for h in headers):
        lines.append("Sec-WebSocket-Version: 13")
    lines += [h for h in headers if h]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    if size < 126:
        head = bytes((first, (0x80 if mask else 0) | size))
    elif size < 65536:
        head = bytes((first, (0x80 if mask else 0) | 126)) + struct.pack("!H", size)
    else:
        head = bytes((first, (0x80 if mask else 0) | 127)) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def header(opcode: int, declared: int) -> bytes:
    """Only a masked frame's header, declaring DECLARED payload bytes that never follow."""
    first = 0x80 | opcode
    if declared < 126:
        return bytes((first, 0x80 | declared)) + MASK
    if declared < 65536:
        return bytes((first, 0x80 | 126)) + struct.pack("!H", declared) + MASK
    return bytes((first, 0x80 | 127)) + struct.pack("!Q", declared) + MASK


def open_ws(server: Server, path: str = "/echo", headers: tuple[str, ...] = ()) -> tuple[RawConn, Response]:
    conn = server.connect()
    conn.send(upgrade_request(path, headers))
    response = conn.read_response()
    assert response.status == 101, response.head
    return conn, response


def read_frame(conn: RawConn, timeout: float = 3.0) -> tuple[int, bytes]:
    """The next server frame: (opcode, payload). Server frames are never masked."""
    deadline = time.monotonic() + timeout
    while True:
        parsed = _parse(bytes(conn.buf))
        if parsed is not None:
            opcode, payload, used = parsed
            del conn.buf[:used]
            return opcode, payload
        if conn.eof:
            raise AssertionError(f"closed before a whole frame; buffered {bytes(conn.buf)[:100]!r}")
        if not conn._fill(deadline):
            raise AssertionError(f"no frame within {timeout}s; buffered {bytes(conn.buf)[:100]!r}")


def _parse(data: bytes) -> tuple[int, bytes, int] | None:
    if len(data) < 2:
        return None
    assert not data[1] & 0x80, "the server masked a frame"
    size, start = data[1] & 0x7F, 2
    if size == 126:
        if len(data) < 4:
            return None
        size, start = struct.unpack("!H", data[2:4])[0], 4
    elif size == 127:
        if len(data) < 10:
            return None
        size, start = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < start + size:
        return None
    return data[0] & 0x0F, data[start : start + size], start + size


def close_code(payload: bytes) -> int:
    code: int = struct.unpack("!H", payload[:2])[0]
    return code


def expect_close(conn: RawConn, code: int, timeout: float = 3.0, answer: bool = False) -> bytes:
    """Read frames until a close frame; assert its code; ANSWER it with a close frame
    (as a client should, for a close the server started); the connection must then end."""
    while True:
        opcode, payload = read_frame(conn, timeout)
        if opcode == 0x8:
            assert close_code(payload) == code, f"close code {close_code(payload)} ({payload[2:]!r}), expected {code}"
            if answer:
                conn.try_send(frame(0x8, payload[:2]))
            conn.wait_closed(timeout)
            return payload[2:]
