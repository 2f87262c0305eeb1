"""The `websockets` engine: its sans-IO ``ServerProtocol``, after deploykit's own handshake.

websockets parses frames (masking checked, control frames answered, close
codes validated), enforces ``max_size`` on each frame's declared length before
its payload is read, and inflates permessage-deflate frames with ``max_length``
so a small compressed frame cannot expand past the limit. This module adds
message assembly and UTF-8 validation of text messages (the sans-IO layer
leaves both to its caller).

Fast path (measured: the library's generator-based parser was ~30 % of the
server's CPU per 1 KiB echo). The engine reads each frame *header* itself, only
to know where frames end. A complete frame of the one common shape - FIN set,
no RSV bits, text or binary, masked, within ``max_size``, no fragmented message
in progress - is unmasked here with websockets' own C ``apply_mask``. Every
other frame (control frames, fragments, compressed, unmasked, oversized,
anything odd) goes to the library whole, or streamed with its exact length, so
the library always sees frame boundaries and judges every frame the fast path
does not. An oversized header reaches the library at once, which fails it
with 1009 before any payload is read.
"""

from __future__ import annotations

import logging
import struct

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from deploykit.server.protocols.ws_engines import (
    BINARY,
    MEM_LEVEL,
    PING,
    PONG,
    TEXT,
    WINDOW_BITS,
    Closed,
    Event,
    frame,
)

# websockets logs every closed connection at INFO; deploykit logs its own lines.
_LOG = logging.getLogger("deploykit.websockets")
_LOG.setLevel(logging.WARNING)
_TEXT, _BINARY, _CONT, _CLOSE, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE, Opcode.PONG
_STREAM = 65536  # a frame larger than this is streamed to the library instead of buffered here
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class WebsocketsEngine:
    __slots__ = ("proto", "parts", "kind", "done", "deflate", "max_size", "buffer", "streaming")

    def __init__(self, max_size: int, deflate: bool) -> None:
        extensions = None
        if deflate:
            extensions = [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=WINDOW_BITS,
                    client_max_window_bits=WINDOW_BITS,
                    compress_settings={"memLevel": MEM_LEVEL},
                )
            ]
        self.proto = ServerProtocol(extensions=extensions, state=OPEN, max_size=max_size, logger=_LOG)
        self.parts: list[bytes] = []
        self.kind = _TEXT
        self.done = False
        self.deflate = False
        self.max_size = max_size
        self.buffer = b""  # the start of a frame not complete yet
        self.streaming = 0  # bytes the library still needs to finish the frame it is inside

    def negotiate(self, offers: list[str]) -> str | None:
        if not offers or not self.proto.available_extensions:
            return None
        headers = Headers([("Sec-WebSocket-Extensions", offer) for offer in offers])
        try:
            header, self.proto.extensions = self.proto.process_extensions(headers)
        except InvalidHandshake as exc:
            raise ValueError(str(exc)) from exc
        self.deflate = bool(self.proto.extensions)
        return header

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self.streaming:
            head, data = data[: self.streaming], data[self.streaming :]
            self.streaming -= len(head)
            self._library(head, events)
            if not data or self.done:
                return events
        if self.buffer:
            data, self.buffer = self.buffer + data, b""
        size = len(data)
        pos = 0
        while pos + 2 <= size and not self.done:
            first, second = data[pos], data[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                start += 2
                if start > size:
                    break
                length = _U16.unpack_from(data, pos + 2)[0]
            elif length == 127:
                start += 8
                if start > size:
                    break
                length = _U64.unpack_from(data, pos + 2)[0]
            if second & 0x80:
                start += 4
            end = start + length
            if length > self.max_size - (self.proto.current_size or 0):  # the library fails it (1009) now
                self._library(data[pos:], events)
                return events
            if end > size:
                if end - pos > _STREAM:
                    self.streaming = end - size
                    self._library(data[pos:], events)
                    return events
                break
            if (first == 0x81 or first == 0x82) and second & 0x80 and self.proto.current_size is None:
                payload = apply_mask(data[start:end], data[start - 4 : start])
                events.append(self._message(_TEXT if first == 0x81 else _BINARY, payload))
            else:
                self._library(data[pos:end], events)
            pos = end
        if pos < size and not self.done:
            self.buffer = data[pos:]
        return events

    def _library(self, data: bytes, events: list[Event]) -> None:
        """Frames (or one frame's next bytes) the fast path leaves to websockets."""
        proto = self.proto
        proto.receive_data(data)
        message: Event
        for item in proto.events_received():
            assert isinstance(item, Frame)  # after the handshake, only frames
            opcode = item.opcode
            if opcode is _TEXT or opcode is _BINARY:
                if not item.fin:
                    self.kind, self.parts = opcode, [bytes(item.data)]
                    continue
                message = self._message(opcode, bytes(item.data))
            elif opcode is _CONT:
                self.parts.append(bytes(item.data))
                if not item.fin:
                    continue
                message = self._message(self.kind, b"".join(self.parts))
                self.parts = []
            elif opcode is _CLOSE:
                received = proto.close_rcvd
                message = Closed(received.code, received.reason) if received else Closed(1005, "")
                self.done = True
            elif opcode is _PONG:
                message = PONG
            else:
                continue  # a ping: websockets queued the pong already
            events.append(message)
            if self.done:
                return
        if proto.parser_exc is not None and not self.done:
            self.done = True
            sent = proto.close_sent
            events.append(Closed(sent.code, sent.reason, error=True) if sent else Closed(1006, "", error=True))

    def _message(self, opcode: Opcode, data: bytes) -> str | bytes | Closed:
        if opcode is _BINARY:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            reason = "invalid UTF-8 in a text message"
            self.proto.fail(1007, reason)
            self.done = True
            return Closed(1007, reason, error=True)

    def outgoing(self) -> tuple[bytes, bool]:
        writes = self.proto.data_to_send()
        if not writes:
            return b"", False
        eof = writes[-1] == b""
        return b"".join(writes), eof

    def text(self, data: str) -> bytes:
        if not self.deflate:
            return frame(TEXT, data.encode("utf-8"))
        return self._send(Frame(_TEXT, data.encode("utf-8")))

    def binary(self, data: bytes) -> bytes:
        if not self.deflate:
            return frame(BINARY, data)
        return self._send(Frame(_BINARY, data))

    def _send(self, item: Frame) -> bytes:
        return item.serialize(mask=False, extensions=self.proto.extensions)

    def close(self, code: int, reason: str) -> bytes:
        self.proto.send_close(code, reason)
        return self.outgoing()[0]

    def ping(self, payload: bytes) -> bytes:
        return frame(PING, payload)
