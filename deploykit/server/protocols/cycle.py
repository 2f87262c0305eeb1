"""One HTTP request/response exchange: the ASGI ``receive`` and ``send``.

The response is written by the server, never by a parser library, so both
parsers frame responses identically: Content-Length is enforced (extra bytes
are never sent; a short or long body closes the connection), HEAD and
204/304 carry no body, HTTP/1.0 never sees chunked encoding, and header names
and values from the app are validated before anything reaches the wire.
The head is held back and written together with the first body chunk: one
``transport.write`` for the usual small response.
"""

from __future__ import annotations

import asyncio
import contextvars
import http
import re
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploykit.server.protocols.connection import HTTPConnection

Message = dict[str, Any]

STATUS_LINES = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode("ascii")) for status in http.HTTPStatus
}
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9a-zA-Z-]+")
_VALID_NAMES: set[bytes] = set()
_NO_BODY_STATUS = frozenset({204, 304})
_LARGE = 65536
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
DISCONNECT: Message = {"type": "http.disconnect"}


Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


def spawner(loop: asyncio.AbstractEventLoop, reset_contextvars: bool) -> Spawn:
    """How a connection starts the app for a request (or a WebSocket session).

    By default that is ``loop.create_task``: the task runs in a copy of the context
    the server runs in, so a ContextVar set before serving (at import, in an app
    factory) is seen by every request. With --reset-contextvars each task gets a
    new, empty ``contextvars.Context`` instead. Chosen once per connection, so the
    default path costs nothing per request."""
    if not reset_contextvars:
        return loop.create_task

    def in_fresh_context(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return loop.create_task(coro, context=contextvars.Context())

    return in_fresh_context


class ResponseError(RuntimeError):
    """The app sent something the server refuses to put on the wire."""


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ResponseError(f"invalid status code {status!r}")
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def _check_name(name: bytes) -> None:
    if name in _VALID_NAMES:
        return
    if not isinstance(name, bytes) or not _TOKEN.fullmatch(name):
        raise ResponseError(f"invalid response header name {name!r}")
    if len(_VALID_NAMES) < 1024:
        _VALID_NAMES.add(name)


def check_header(name: bytes, value: bytes) -> bytes:
    """NAME lower-cased, once NAME and VALUE are known safe to put on the wire
    (for the WebSocket handshake's responses; the HTTP path inlines this)."""
    if not isinstance(name, bytes) or not isinstance(value, bytes):
        raise ResponseError(f"response header {name!r}: names and values must be bytes")
    lname = name.lower()
    _check_name(lname)
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise ResponseError(f"invalid value for response header {name!r}")
    return lname


class RequestCycle:
    __slots__ = (
        "conn",
        "scope",
        "body",
        "body_size",
        "more_body",
        "delivered",
        "waiter",
        "disconnected",
        "started",
        "complete",
        "keep_alive",
        "expect_continue",
        "http_11",
        "is_head",
        "chunked",
        "expected",
        "sent",
        "pending_head",
        "no_body",
        "status",
        "start_time",
        "rejected",
        "app",
    )

    def __init__(self, conn: HTTPConnection, scope: dict[str, Any], keep_alive: bool, expect_continue: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.body: list[bytes] = []
        self.body_size = 0
        self.more_body = True
        self.delivered = False
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.started = False
        self.complete = False
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.http_11 = scope["http_version"] == "1.1"
        self.is_head = scope["method"] == "HEAD"
        self.chunked = False
        self.expected: int | None = None
        self.sent = 0
        self.pending_head = b""
        self.no_body = False
        self.status = 0
        self.start_time = perf_counter() if conn.settings.access_log else 0.0
        self.rejected = False
        self.app = conn.config.app

    # -- driven by the connection -------------------------------------------------
    def feed_body(self, data: bytes) -> None:
        self.body.append(data)
        self.body_size += len(data)
        self._wake()

    def end_body(self) -> None:
        self.more_body = False
        self._wake()

    def disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        self.waiter = self.conn.loop.create_future()
        await self.waiter

    # -- ASGI ---------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except BaseException as exc:  # noqa: BLE001 - every app failure is handled the same way
            self.conn.app_failed(self, exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        else:
            if not self.complete:
                self.conn.app_failed(self, None)

    async def receive(self) -> Message:
        if self.expect_continue:
            self.expect_continue = False
            if not self.started and not self.disconnected:
                self.conn.transport.write(CONTINUE)
        while not (self.disconnected or self.complete):
            if self.body or (not self.more_body and not self.delivered):
                data = b"".join(self.body) if len(self.body) != 1 else self.body[0]
                self.body.clear()
                self.body_size = 0
                self.delivered = not self.more_body
                self.conn.body_consumed()
                return {"type": "http.request", "body": data, "more_body": self.more_body}
            await self._wait()
        return DISCONNECT

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.disconnected:
            return
        if kind == "http.response.body":
            if not self.started or self.complete:
                raise ResponseError("http.response.body " + ("before start" if not self.started else "after the end"))
            self._write_body(message.get("body", b""), message.get("more_body", False))
            if self.conn.write_paused:
                await self.conn.drain()
        elif kind == "http.response.start":
            if self.started:
                raise ResponseError("http.response.start sent twice")
            self.pending_head = self._head(message["status"], message.get("headers", ()))
            self.started = True
        else:
            raise ResponseError(f"unexpected ASGI message {kind!r} in an HTTP exchange")

    # -- response framing ---------------------------------------------------------
    def _head(self, status: int, headers: Any) -> bytes:
        out = bytearray(status_line(status))
        has_server = has_date = False
        length: int | None = None
        extra = self.conn.config.extra_headers
        names: set[bytes] | None = set() if extra else None
        for name, value in headers:
            lname = name.lower()
            _check_name(lname)
            if b"\r" in value or b"\n" in value or b"\0" in value:
                raise ResponseError(f"invalid value for response header {name!r}")
            if names is not None:
                names.add(lname)
            if lname == b"content-length":
                if not value.isdigit():
                    raise ResponseError(f"invalid content-length {value!r}")
                length = int(value)
                continue  # written once below, normalised
            elif lname == b"transfer-encoding":
                continue  # the server decides the framing
            elif lname == b"connection":
                if value.lower() == b"close":
                    self.keep_alive = False
                continue
            elif lname == b"server":
                has_server = True
            elif lname == b"date":
                has_date = True
            out += name + b": " + value + b"\r\n"
        self.status = status
        if self.is_head or status in _NO_BODY_STATUS or status < 200:
            self.no_body = True
            self.expected = length
            if length is not None:
                out += b"content-length: %d\r\n" % length
        elif length is not None:
            self.expected = length
            out += b"content-length: %d\r\n" % length
        elif self.http_11:
            self.chunked = True
            out += b"transfer-encoding: chunked\r\n"
        else:
            self.keep_alive = False  # HTTP/1.0: the body ends when the connection does
        state = self.conn.state
        if not has_server:
            out += state.server_line
        if not has_date:
            out += state.date_line
        if names is not None:
            for ename, evalue in extra:
                if ename not in names:
                    out += ename + b": " + evalue + b"\r\n"
        if not self.keep_alive or self.conn.closing or self.conn.draining:
            self.keep_alive = False
            out += b"connection: close\r\n\r\n"
        elif not self.http_11:
            out += b"connection: keep-alive\r\n\r\n"
        else:
            out += b"\r\n"
        return bytes(out)

    def _write_body(self, body: bytes, more: bool) -> None:
        transport = self.conn.transport
        size = len(body)
        if self.no_body:
            data = b""
        elif self.chunked:
            data = b"%x\r\n%b\r\n" % (size, body) if size else b""
            if not more:
                data += b"0\r\n\r\n"
        elif self.expected is not None:
            remaining = self.expected - self.sent
            if size > remaining:
                body, size = body[:remaining], remaining
                self.keep_alive = False
                more = False
            data = body
        else:
            data = body
        self.sent += size
        head = self.pending_head
        if head:
            self.pending_head = b""
            if len(data) < _LARGE:
                transport.write(head + data)
            else:
                transport.writelines((head, data))
        elif data:
            transport.write(data)
        if not more:
            self.complete = True
            if self.expected is not None and self.sent != self.expected and not self.no_body:
                self.keep_alive = False
            self.conn.response_done(self)
