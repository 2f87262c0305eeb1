"""What goes on the wire in a response head, checked: status lines and header lines.

Shared by the HTTP cycle and the WebSocket handshake; it knows nothing of connections.
"""

from __future__ import annotations

import http
import re

STATUS_LINES = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode("ascii")) for status in http.HTTPStatus
}
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9a-zA-Z-]+")
_VALID_NAMES: set[bytes] = set()
_MAX_VALID_NAMES = 1024


class ResponseError(RuntimeError):
    """The app sent something the server refuses to put on the wire."""


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ResponseError(f"invalid status code {status!r}")
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def check_name(name: bytes) -> None:
    """NAME (lower-cased) is a token; the ones seen are remembered (at most 1024)."""
    if name in _VALID_NAMES:
        return
    if not isinstance(name, bytes) or not _TOKEN.fullmatch(name):
        raise ResponseError(f"invalid response header name {name!r}")
    if len(_VALID_NAMES) < _MAX_VALID_NAMES:
        _VALID_NAMES.add(name)


def check_value(name: bytes, value: bytes) -> None:
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise ResponseError(f"invalid value for response header {name!r}")


def check_header(name: bytes, value: bytes) -> bytes:
    """NAME lower-cased, once NAME and VALUE are known safe to put on the wire."""
    if not isinstance(name, bytes) or not isinstance(value, bytes):
        raise ResponseError(f"response header {name!r}: names and values must be bytes")
    lname = name.lower()
    check_name(lname)
    check_value(name, value)
    return lname
