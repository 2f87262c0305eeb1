"""What the HTTP and WebSocket sides share about one exchange: the request head as
parsed (``RequestHead``), the ASGI versions of the scopes, and what goes on the
wire in a response head, checked: status lines and header lines.

It knows nothing of connections.
"""

from __future__ import annotations

import http
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Final

#: The ``asgi`` entry of every HTTP scope. 2.3, not 2.4: ASGI 2.4 promises that ``send()`` raises an
#: OSError once the client has gone, and frameworks act on that promise (Starlette's StreamingResponse
#: stops listening for ``http.disconnect`` and waits for the OSError instead). deploykit's HTTP ``send()``
#: returns quietly after a disconnect, as uvicorn's does (which also says 2.3), so that apps written
#: against uvicorn keep their behaviour (a background task after the response still runs).
HTTP_ASGI: Final = {"version": "3.0", "spec_version": "2.3"}
#: The ``asgi`` entry of every WebSocket scope: 2.4, since ``send()`` on a closed WebSocket raises
#: ``websocket.ClientDisconnected`` (an OSError).
WEBSOCKET_ASGI: Final = {"version": "3.0", "spec_version": "2.4"}

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


def extra_lines(extra: Iterable[tuple[bytes, bytes]], sent: Container[bytes]) -> bytes:
    """The ``--header`` defaults (EXTRA, names lower-cased) whose name the app did not send
    itself (SENT: the lower-cased names it sent), as header lines."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in extra if name not in sent)


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request head as the connection parsed and checked it (the target split and
    percent-decoded); the WebSocket side builds its scope from it."""

    method: str
    version: str  # "1.1" or "1.0"
    path: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    has_body: bool
