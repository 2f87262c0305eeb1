"""One HTTP request/response exchange: the ASGI ``receive`` and ``send``.

The response is written by the server, never by a parser library, so both
parsers frame responses identically: Content-Length is enforced (extra bytes
are never sent; a short or long body closes the connection), HEAD and
204/304 carry no body, HTTP/1.0 never sees chunked encoding, and header names
and values from the app are validated before anything reaches the wire.
The head is held back and written together with the first body chunk: one
``transport.write`` for the usual small response.

The cycle knows its connection only as a ``CycleOwner``: the few members it
uses. It imports nothing from the connection module.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from deploykit.server.protocols.flow import wake
from deploykit.server.protocols.wire import (
    STATUS_LINES,
    ResponseError,
    check_name,
    check_value,
    extra_lines,
    status_line,
)

if TYPE_CHECKING:
    from deploykit.server.state import ServerState

Message = dict[str, Any]
ASGIApp = Callable[..., Any]

_NO_BODY_STATUS = frozenset({204, 304})
_LARGE = 65536
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
DISCONNECT: Message = {"type": "http.disconnect"}
# Validated "name: value\r\n" lines of ordinary response headers, keyed by the (name, value) pair the app
# sent: an app that sends the same headers again (most do) skips the checks. Bounded; cleared when full.
_LINES: dict[tuple[bytes, bytes], bytes] = {}
_LENGTHS: dict[tuple[bytes, bytes], int] = {}  # the same for Content-Length pairs: the length, checked
_MAX_LINES = 4096


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


class ConnPhase(enum.IntEnum):
    """Where an HTTP connection is in its life (``CycleOwner.phase``). Ordered: ``phase >= DRAINING``
    means the current response is the last; IDLE and ACTIVE alternate, DRAINING and CLOSED do not go back."""

    IDLE = 0  # between requests: the keep-alive deadline runs
    ACTIVE = 1  # receiving a request head (its total deadline runs), or serving requests
    DRAINING = 2  # the server is stopping: close after the current response, or after a short grace
    CLOSED = 3  # closed by the server, or the transport is gone


IDLE, ACTIVE, DRAINING, CLOSED = ConnPhase  # module globals: one lookup on the hot path


class CycleOwner(Protocol):
    """What a request cycle needs of the connection it belongs to (``HTTPConnection``):
    the transport to write to, the write-side flow, whether the connection may stay
    open, the server's header lines, and where to report the end of the exchange."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    state: ServerState  # server_line and date_line
    extra_headers: tuple[tuple[bytes, bytes], ...]  # --header, added unless the app sent the name
    write_paused: bool
    phase: ConnPhase  # DRAINING or later: this response is the connection's last

    async def drain(self) -> None: ...

    def body_consumed(self) -> None: ...

    def response_done(self, cycle: RequestCycle) -> None: ...

    def app_failed(self, cycle: RequestCycle, exc: BaseException | None) -> None: ...


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

    def __init__(
        self,
        conn: CycleOwner,
        app: ASGIApp,
        scope: dict[str, Any],
        keep_alive: bool,
        expect_continue: bool,
        http_11: bool,
        is_head: bool,
        has_body: bool,
    ) -> None:
        self.conn = conn
        self.app = app
        self.scope = scope
        self.body: list[bytes] = []
        self.body_size = 0
        self.more_body = has_body
        self.delivered = False
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.started = False
        self.complete = False
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.http_11 = http_11
        self.is_head = is_head
        self.chunked = False
        self.expected: int | None = None
        self.sent = 0
        self.pending_head = b""
        self.no_body = False
        self.status = 0
        self.start_time = 0.0  # set by the connection when it logs access
        self.rejected = False

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
            wake(waiter)

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
            body = self.body
            if body or (not self.more_body and not self.delivered):
                data = b"".join(body) if len(body) != 1 else body[0]
                body.clear()
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
            conn = self.conn
            if conn.write_paused:
                await conn.drain()
        elif kind == "http.response.start":
            if self.started:
                raise ResponseError("http.response.start sent twice")
            self.pending_head = self._head(message["status"], message.get("headers", ()))
            self.started = True
        else:
            raise ResponseError(f"unexpected ASGI message {kind!r} in an HTTP exchange")

    # -- response framing ---------------------------------------------------------
    def _head(self, status: int, headers: Any) -> bytes:
        out = bytearray(STATUS_LINES.get(status) or status_line(status))
        has_server = has_date = False
        length: int | None = None
        conn = self.conn
        extra = conn.extra_headers
        names: set[bytes] | None = set() if extra else None
        lines = _LINES
        for pair in headers:
            if names is None:
                try:
                    line = lines.get(pair)
                    known = _LENGTHS.get(pair) if line is None else None
                except TypeError:  # a list, not a tuple: not a key
                    line = known = None
                if line is not None:
                    out += line
                    continue
                if known is not None:
                    length = known
                    continue
            name, value = pair
            lname = name.lower()
            check_name(lname)
            check_value(name, value)
            if names is not None:
                names.add(lname)
            if lname == b"content-length":
                if not value.isdigit():
                    raise ResponseError(f"invalid content-length {value!r}")
                length = int(value)
                if lname == name and type(value) is bytes:  # a lower-case name: the usual spelling
                    if len(_LENGTHS) >= _MAX_LINES:
                        _LENGTHS.clear()
                    _LENGTHS[(name, value)] = length
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
            elif type(name) is bytes and type(value) is bytes:
                line = name + b": " + value + b"\r\n"
                if len(lines) >= _MAX_LINES:
                    lines.clear()
                lines[(name, value)] = line
                out += line
                continue
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
        state = conn.state
        if not has_server:
            out += state.server_line
        if not has_date:
            out += state.date_line
        if names is not None:
            out += extra_lines(extra, names)
        if not self.keep_alive or conn.phase >= DRAINING:
            self.keep_alive = False
            out += b"connection: close\r\n\r\n"
        elif not self.http_11:
            out += b"connection: keep-alive\r\n\r\n"
        else:
            out += b"\r\n"
        return bytes(out)

    def _write_body(self, body: bytes, more: bool) -> None:
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
                self.conn.transport.write(head + data)
            else:
                self.conn.transport.writelines((head, data))
        elif data:
            self.conn.transport.write(data)
        if not more:
            self.complete = True
            if self.expected is not None and self.sent != self.expected and not self.no_body:
                self.keep_alive = False
            self.conn.response_done(self)
