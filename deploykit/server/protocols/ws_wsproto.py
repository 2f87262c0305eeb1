"""The `wsproto` engine (``--ws wsproto``): pure Python, after deploykit's own handshake.

wsproto has no message-size limit and inflates without a bound, so two
extensions (wsproto's own hook points, run before any payload is buffered)
add them:

* ``_SizeLimit`` sees each frame header and fails the connection with 1009
  as soon as the *declared* lengths of a message's frames pass ``--ws-max-size``;
* ``_BoundedDeflate`` is wsproto's permessage-deflate with ``max_length`` on
  every ``decompress`` call, so a zip bomb fails with 1009 instead of filling memory.
"""

from __future__ import annotations

import zlib

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

from deploykit.server.protocols.ws_engines import (
    BINARY,
    PING,
    PONG,
    TEXT,
    WINDOW_BITS,
    Closed,
    Event,
    frame,
)

_TOO_BIG = CloseReason.MESSAGE_TOO_BIG
_NO_RSV = RsvBits(False, False, False)
_SYNC_TAIL = b"\x00\x00\xff\xff"


class _SizeLimit(Extension):
    name = "deploykit-size-limit"  # never negotiated: only its frame hooks are used

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            return _NO_RSV
        self.size = payload_length if opcode is not Opcode.CONTINUATION else self.size + payload_length
        return _TOO_BIG if self.size > self.max_size else _NO_RSV


class _BoundedDeflate(PerMessageDeflate):
    def __init__(self, max_size: int) -> None:
        super().__init__(server_max_window_bits=WINDOW_BITS)
        self.max_size = max_size
        self.inflated = 0

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode is not Opcode.CONTINUATION and not opcode.iscontrol():
            self.inflated = 0
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: FrameDecoder | FrameProtocol, fin: bool) -> bytes | CloseReason | None:
        if not fin or not self._inbound_is_compressible or not self._inbound_compressed:
            return super().frame_inbound_complete(proto, fin)
        result = self._inflate(_SYNC_TAIL)
        if isinstance(result, bytes) and self.client_no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        return result

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        decompressor = self._decompressor
        assert decompressor is not None
        room = self.max_size - self.inflated
        try:
            out = decompressor.decompress(data, room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self.inflated += len(out)
        if self.inflated > self.max_size or decompressor.unconsumed_tail:
            return _TOO_BIG
        return out


class WsprotoEngine:
    __slots__ = ("conn", "limit", "deflate", "parts", "pending", "eof", "compress")

    def __init__(self, max_size: int, deflate: bool) -> None:
        self.limit = _SizeLimit(max_size)
        self.deflate = _BoundedDeflate(max_size) if deflate else None
        self.conn: Connection | None = None
        self.parts: list[str | bytes] = []
        self.pending = b""
        self.eof = False
        self.compress = False

    def negotiate(self, offers: list[str]) -> str | None:
        extensions: list[Extension] = [self.limit]
        header = None
        if self.deflate is not None:
            for offer in (item.strip() for value in offers for item in value.split(",")):
                if offer.split(";", 1)[0].strip() != PerMessageDeflate.name:
                    continue
                try:
                    accepted = self.deflate.accept(offer)
                except ValueError as exc:
                    raise ValueError(f"invalid permessage-deflate offer {offer!r}") from exc
                if accepted is not None and accepted is not False:
                    params = f"; {accepted}" if isinstance(accepted, str) and accepted else ""
                    header = PerMessageDeflate.name + params
                    extensions.append(self.deflate)
                    self.compress = True
                    break
        self.conn = Connection(ConnectionType.SERVER, extensions=extensions)
        return header

    def _connection(self) -> Connection:
        if self.conn is None:
            self.negotiate([])
        assert self.conn is not None
        return self.conn

    def feed(self, data: bytes) -> list[Event]:
        conn = self._connection()
        conn.receive_data(data)
        events: list[Event] = []
        for event in conn.events():
            if isinstance(event, TextMessage | BytesMessage):
                piece = event.data if isinstance(event.data, str) else bytes(event.data)
                if event.message_finished and not self.parts:
                    events.append(piece)
                    continue
                self.parts.append(piece)
                if event.message_finished:
                    parts, self.parts = self.parts, []
                    events.append("".join(parts) if isinstance(piece, str) else b"".join(parts))  # type: ignore[arg-type]
            elif isinstance(event, Ping):
                if conn.state is ConnectionState.OPEN:
                    self.pending += conn.send(event.response())
            elif isinstance(event, Pong):
                events.append(PONG)
            elif isinstance(event, CloseConnection):
                events.append(self._closed(conn, event))
                break
        return events

    def _closed(self, conn: Connection, event: CloseConnection) -> Closed:
        self.eof = True
        if conn.state is ConnectionState.REMOTE_CLOSING:  # the peer's close frame: echo it
            self.pending += conn.send(event.response())
            return Closed(int(event.code), event.reason or "")
        if conn.state is ConnectionState.CLOSED:  # the answer to ours
            return Closed(int(event.code), event.reason or "")
        # A parse failure (wsproto reports it as a close event while OPEN): fail the connection.
        reason = (event.reason or "")[:120]
        self.pending += conn.send(CloseConnection(code=event.code, reason=reason))
        return Closed(int(event.code), reason, error=True)

    def outgoing(self) -> tuple[bytes, bool]:
        data, self.pending = self.pending, b""
        return data, self.eof

    def text(self, data: str) -> bytes:
        if not self.compress:
            return frame(TEXT, data.encode("utf-8"))
        return bytes(self._connection().send(TextMessage(data=data)))

    def binary(self, data: bytes) -> bytes:
        if not self.compress:
            return frame(BINARY, data)
        return bytes(self._connection().send(BytesMessage(data=data)))

    def close(self, code: int, reason: str) -> bytes:
        return bytes(self._connection().send(CloseConnection(code=code, reason=reason)))

    def ping(self, payload: bytes) -> bytes:
        return frame(PING, payload)
