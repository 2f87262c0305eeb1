"""HTTP/1.1 over httptools (llhttp): the default, fast parser.

llhttp already rejects most malformed input (CL+TE, bad chunk sizes, bare CR,
whitespace before a colon, duplicate Content-Length); this adds the size
limits llhttp does not have and the shared head rules.
"""

from __future__ import annotations

import asyncio

import httptools

from deploykit.server.config import ServerConfig
from deploykit.server.protocols.connection import HTTPConnection
from deploykit.server.protocols.cycle import IDLE
from deploykit.server.protocols.rules import RequestRejected
from deploykit.server.state import ServerState

_METHODS: dict[bytes, str] = {}


class HttpToolsConnection(HTTPConnection):
    def __init__(self, config: ServerConfig, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config, state, loop)
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_head = True
        self.head_bytes = 0
        self.header_bytes = 0
        self.max_line = self.settings.max_request_line
        self.max_headers = self.settings.max_header_size

    def data_received(self, data: bytes) -> None:
        if self.phase is IDLE:
            self.bytes_arrived()
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            if self.upgraded is not None:  # a WebSocket handshake: the rest of DATA is frames
                self.hand_over(data[exc.args[0] :])
            # else another protocol (h2c, or WebSockets with --ws none): served as plain HTTP, then closed
        except httptools.HttpParserCallbackError as exc:
            context = exc.__context__
            if isinstance(context, RequestRejected):
                self.reject(context)
            else:  # pragma: no cover - a bug in a callback
                raise
        except httptools.HttpParserError as exc:
            self.reject(RequestRejected(400, f"malformed request: {exc}"))
        else:
            if self.upgraded is not None:  # llhttp did not see the upgrade we did: switch anyway
                self.hand_over(b"")
            elif self.in_head and self.head_bytes > self.max_line + self.max_headers:
                self.reject(RequestRejected(431, "request header fields too large"))

    # -- llhttp callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.max_line:
            raise RequestRejected(414, "request-target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.max_headers:
            raise RequestRejected(431, "request header fields too large")
        # RFC 9110 §5.5: a field value excludes the whitespace around it. llhttp drops the leading part
        # only; rstrip() returns the same object when there is nothing to strip, and costs fewer
        # instructions than testing the last byte first (measured with callgrind).
        self.headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        parser = self.parser
        raw = parser.get_method()
        method = _METHODS.get(raw)
        if method is None:
            method = raw.decode("ascii")
            if len(_METHODS) < 64:
                _METHODS[raw] = method
        self.start_request(method, self.url, self.headers, parser.get_http_version())

    def on_body(self, body: bytes) -> None:
        self.body_received(body)

    def on_message_complete(self) -> None:
        self.in_head = True
        if self.reading is not None:  # a body was being received: it has ended
            self.message_complete()
        if self.cycle is not None and self.parser.should_upgrade():
            self.cycle.keep_alive = False  # no protocol switch: answer, then close
