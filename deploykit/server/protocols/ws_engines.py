"""What a WebSocket engine is, and the registry that picks one by ``--ws`` name.

An engine wraps one sans-IO library for one connection *after* the handshake:
it negotiates permessage-deflate, turns received bytes into whole messages
(``str`` or ``bytes``) and control events, and turns outgoing messages into
frame bytes. It never touches a socket; ``websocket.py`` does the I/O, the
ASGI side and the timers for both engines alike.

* ``websockets`` (default): its sans-IO ``ServerProtocol`` checks ``--ws-max-size``
  against each frame's *declared* length before reading the payload, bounds
  inflation of compressed frames, and answers pings itself; its C masking
  speedups make it the faster parser.
* ``wsproto``: the pure-Python alternative; the size limit and a bounded
  inflater are added as wsproto extensions (see ``ws_wsproto.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import struct
from dataclasses import dataclass
from typing import Final, Protocol

# Registry: --ws name -> (module, class). Imported on the first upgrade request,
# so `deploykit serve` starts as fast with WebSockets enabled as without.
ENGINES: Final = {
    "websockets": ("deploykit.server.protocols.ws_websockets", "WebsocketsEngine"),
    "wsproto": ("deploykit.server.protocols.ws_wsproto", "WsprotoEngine"),
}
# Other names for an engine: uvicorn calls its sans-I/O websockets engine
# `websockets-sansio`; the websockets engine here is that one already.
ALIASES: Final = {"websockets-sansio": "websockets"}
# A server's own compression settings, the same for both engines: a 4 KiB window
# (12 bits) and memLevel 5 keep a deflating connection's zlib state near 30 KiB
# instead of ~300 KiB at zlib's defaults; small messages compress about as well.
WINDOW_BITS: Final = 12
MEM_LEVEL: Final = 5


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is closing: the peer sent a close frame (ERROR False) or
    broke the protocol and the engine queued a close frame with CODE (ERROR True)."""

    code: int
    reason: str
    error: bool = False


class Pong:
    """A pong arrived (the answer to the server's keepalive ping)."""


PONG: Final = Pong()
Event = str | bytes | Closed | Pong


class Engine(Protocol):
    def negotiate(self, offers: list[str]) -> str | None:
        """Accept permessage-deflate from the client's offers; the response header value, if any.
        ValueError when an offer is malformed."""

    def feed(self, data: bytes) -> list[Event]:
        """Parse received bytes: whole messages, pongs, and at most one Closed (then stop feeding)."""

    def outgoing(self) -> tuple[bytes, bool]:
        """Bytes the engine wants written (pong, close echo) and whether to close the connection after them."""

    def text(self, data: str) -> bytes: ...

    def binary(self, data: bytes) -> bytes: ...

    def close(self, code: int, reason: str) -> bytes: ...

    def ping(self, payload: bytes) -> bytes: ...


class EngineFactory(Protocol):
    def __call__(self, max_size: int, deflate: bool) -> Engine: ...


def resolve(name: str) -> str | None:
    """The engine --ws NAME means: `auto` is websockets if installed, else wsproto, else none."""
    if name == "none":
        return None
    if name != "auto":
        return ALIASES.get(name, name)
    for candidate in ("websockets", "wsproto"):
        if importlib.util.find_spec(candidate) is not None:
            return candidate
    return None


def engine_factory(name: str) -> EngineFactory:
    module, attr = ENGINES[name]
    factory: EngineFactory = getattr(importlib.import_module(module), attr)
    return factory


def frame(first: int, payload: bytes) -> bytes:
    """An unmasked server frame without extensions: FIN|opcode byte FIRST, then PAYLOAD.
    Built here rather than by the library: this is every uncompressed message the
    server sends, and the framing is three cases of RFC 6455 §5.2."""
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


TEXT: Final = 0x81
BINARY: Final = 0x82
CLOSE: Final = 0x88
PING: Final = 0x89


def close_payload(code: int, reason: str) -> bytes:
    """A close frame's payload: the code, and the reason cut to fit 125 bytes at a character boundary."""
    data = reason.encode("utf-8")[:123]
    return struct.pack("!H", code) + data.decode("utf-8", "ignore").encode("utf-8")
