"""HTTP/1.1 over h11: the pure-Python fallback parser.

h11 is used for parsing only; responses are framed by the shared cycle code
so both parsers answer byte-for-byte alike. A fresh ``h11.Connection`` per
request (fed the previous one's unparsed bytes) keeps h11's server-side
state machine out of the response path.
"""

from __future__ import annotations

import asyncio
import re

import h11

from deploykit.server.config import ServerConfig
from deploykit.server.protocols.connection import HTTPConnection
from deploykit.server.protocols.cycle import IDLE
from deploykit.server.protocols.rules import RequestRejected
from deploykit.server.state import ServerState

# h11 folds "Content-Length: 5, 5" into 5; deploykit refuses list forms outright.
_CONTENT_LENGTH_LIST = re.compile(rb"\r\ncontent-length[ \t]*:[^\r\n]*,", re.IGNORECASE)


class H11Connection(HTTPConnection):
    def __init__(self, config: ServerConfig, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config, state, loop)
        self.max_event = max(config.max_head, self.settings.h11_max_incomplete_event_size)
        self.parser = self._new_parser()
        self.rejected = False
        self.head: bytes | None = b""  # the request head being received, for the list check

    def _new_parser(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_event)

    def data_received(self, data: bytes) -> None:
        if self.phase is IDLE:
            self.bytes_arrived()
        if self.head is not None:
            self.head += data
        self.parser.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self.parser.receive_data(b"")
        self._process()
        return None

    def _process(self) -> None:
        while not self.rejected:
            try:
                event = self.parser.next_event()
                if not isinstance(event, h11.Event) or isinstance(event, h11.ConnectionClosed):
                    return  # NEED_DATA, PAUSED or closed
                if self._handle(event):
                    return  # a request ended with nothing after it: no need to ask the new parser
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint if exc.error_status_hint == 431 else 400
                self._fail(RequestRejected(status, f"malformed request: {exc}"))
            except RequestRejected as exc:
                self._fail(exc)

    def _fail(self, error: RequestRejected) -> None:
        self.rejected = True
        self.reject(error)

    def _handle(self, event: h11.Event) -> bool:
        """Act on EVENT; True when the request ended and no byte is left to parse."""
        if isinstance(event, h11.Data):
            self.body_received(bytes(event.data))
        elif isinstance(event, h11.Request):
            self._request(event)
        elif isinstance(event, h11.EndOfMessage):
            self.message_complete()
            data, closed = self.parser.trailing_data
            if self.upgraded is not None:  # a WebSocket handshake: the old parser stays PAUSED
                self.hand_over(data)
                return True
            self.parser = self._new_parser()
            self.head = data
            if not (data or closed):
                return True
            self.parser.receive_data(data)
            if closed:
                self.parser.receive_data(b"")
        return False

    def _request(self, event: h11.Request) -> None:
        head, self.head = (self.head or b"").partition(b"\r\n\r\n")[0], None
        if _CONTENT_LENGTH_LIST.search(head):
            raise RequestRejected(400, "invalid Content-Length (a list)")
        if len(event.target) > self.settings.max_request_line:
            raise RequestRejected(414, "request-target too long")
        headers = []
        size = 0
        for name, value in event.headers:  # one pass: copy and measure
            headers.append((bytes(name), bytes(value)))
            size += len(name) + len(value) + 4
        if size > self.settings.max_header_size:
            raise RequestRejected(431, "request header fields too large")
        self.start_request(event.method.decode("ascii"), bytes(event.target), headers, event.http_version.decode())
