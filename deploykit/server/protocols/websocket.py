"""One WebSocket connection, after the HTTP connection handed its transport over.

The HTTP side validated the handshake (``ws_handshake.py``) and built the
scope; this protocol runs the app with ASGI's ``websocket`` messages and an
engine (``ws_engines.py``) that speaks the frames. The phases form a small
state machine (``Phase``, ``_ALLOWED``): an app message that its phase does
not allow raises ``WebSocketStateError``.

Limits and timers, all enforced here for both engines:

* backpressure: at most ``--ws-max-queue`` received messages wait for the app;
  then the socket is not read until the app catches up. Sending waits while
  the transport's buffer is above its high-water mark;
* keepalive: a ping every ``--ws-ping-interval`` s; no pong within
  ``--ws-ping-timeout`` s closes the connection (1011). The state's ticker
  drives these deadlines, no timer handle per connection;
* closing: after the server's close frame the peer has ``CLOSE_TIMEOUT`` s to
  answer; a stopping server closes every open WebSocket with 1012 (SIGTERM,
  the signal of every restart path) or 1001 (SIGINT).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Protocol

from deploykit.server import logs
from deploykit.server.protocols.cycle import spawner
from deploykit.server.protocols.flow import ReadFlow, WriteFlow, wake
from deploykit.server.protocols.proxy import resolve_trusted
from deploykit.server.protocols.rules import RequestRejected
from deploykit.server.protocols.wire import WEBSOCKET_ASGI, RequestHead, ResponseError, extra_lines
from deploykit.server.protocols.ws_engines import Closed, Engine, Pong
from deploykit.server.protocols.ws_handshake import Handshake, accept_response, check_handshake, denial_response

if TYPE_CHECKING:
    from deploykit.server.config import ServerConfig
    from deploykit.server.options import ServerOptions
    from deploykit.server.state import ServerState

logger = logging.getLogger("deploykit.error")

CLOSE_TIMEOUT: Final = 5.0  # seconds the peer has to answer the server's close frame
EARLY_DATA_LIMIT: Final = 65536  # bytes a client may send before the handshake is answered
CONNECT: Final = {"type": "websocket.connect"}
_VALID_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))


class UpgradeSource(Protocol):
    """What ``prepare`` reads of the HTTP connection the handshake arrived on."""

    config: ServerConfig
    settings: ServerOptions
    state: ServerState
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None
    server: tuple[str, int] | None
    scheme: str
    trust_proxy: bool


def prepare(conn: UpgradeSource, head: RequestHead) -> WebSocketConnection:
    """The protocol for a valid handshake (HEAD) on CONN; RequestRejected (400/426) otherwise."""
    headers = head.headers
    handshake = check_handshake(head.method, head.version, headers, head.has_body)
    settings, state = conn.settings, conn.state
    engine = state.ws_engine()(settings.ws_max_size, settings.ws_per_message_deflate)
    try:
        extensions = engine.negotiate(handshake.extensions)
    except ValueError as exc:
        raise RequestRejected(400, f"invalid Sec-WebSocket-Extensions: {exc}") from None
    scheme = "wss" if conn.scheme == "https" else "ws"
    client = conn.client
    if conn.trust_proxy:
        client, scheme = resolve_trusted(conn.config.trusted, client, scheme, headers)
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": WEBSOCKET_ASGI,
        "http_version": head.version,
        "scheme": scheme,
        "server": conn.server,
        "client": client,
        "root_path": settings.root_path,
        "path": head.path,
        "raw_path": head.raw_path,
        "query_string": head.query,
        "headers": headers,
        "subprotocols": handshake.subprotocols,
        "state": state.lifespan_state.copy(),
        "extensions": {"websocket.http.response": {}},
    }
    return WebSocketConnection(conn.config, state, conn.loop, scope, handshake, engine, extensions)


class Phase(enum.Enum):
    CONNECTING = "connecting"  # the app decides: accept, close (403) or an HTTP response
    RESPONDING = "responding"  # the app is sending a websocket.http.response
    OPEN = "open"
    CLOSING = "closing"  # the server's close frame is sent; waiting for the peer's
    CLOSED = "closed"  # closing handshake done, or the connection is gone


_ALLOWED: Final = {
    Phase.CONNECTING: frozenset({"websocket.accept", "websocket.close", "websocket.http.response.start"}),
    Phase.RESPONDING: frozenset({"websocket.http.response.body"}),
    Phase.OPEN: frozenset({"websocket.send", "websocket.close"}),
    Phase.CLOSING: frozenset(),
    Phase.CLOSED: frozenset(),
}


class ClientDisconnected(OSError):
    """send() on a WebSocket that is closing or closed (ASGI spec 2.4)."""


class WebSocketStateError(RuntimeError):
    """The app sent a message its WebSocket's phase does not allow."""


class WebSocketConnection(ReadFlow, WriteFlow, asyncio.Protocol):
    __slots__ = (
        "config",
        "state",
        "loop",
        "transport",
        "scope",
        "handshake",
        "engine",
        "extensions",
        "phase",
        "queue",
        "waiter",
        "task",
        "deadline",
        "awaiting_pong",
        "write_paused",
        "read_paused",
        "drain_waiter",
        "connected",
        "disconnect",
        "early",
        "denial",
        "draining",
        "start_time",
    )

    def __init__(
        self,
        config: ServerConfig,
        state: ServerState,
        loop: asyncio.AbstractEventLoop,
        scope: dict[str, Any],
        handshake: Handshake,
        engine: Engine,
        extensions: str | None,
    ) -> None:
        self.config = config
        self.state = state
        self.loop = loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in start()
        self.scope = scope
        self.handshake = handshake
        self.engine = engine
        self.extensions = extensions
        self.phase = Phase.CONNECTING
        self.queue: deque[dict[str, Any]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.deadline = 0.0
        self.awaiting_pong = False
        self.write_paused = False
        self.read_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.connected = False
        self.disconnect: dict[str, Any] | None = None
        self.early = b""
        self.denial: tuple[int, Any, list[bytes]] | None = None
        self.draining = False
        self.start_time = perf_counter()

    # -- taking over the transport ----------------------------------------------------
    def start(self, transport: asyncio.Transport, early: bytes) -> None:
        """Take TRANSPORT over and run the app; EARLY are bytes that came after the handshake request."""
        transport.set_protocol(self)
        self.transport = transport
        self.state.connections.add(self)
        self.state.active_requests += 1
        self.state.count_request()
        self.task = spawner(self.loop, self.config.settings.reset_contextvars)(self.run())
        if early:
            self.data_received(early)
        if self.state.should_exit:
            self.shutdown()

    # -- asyncio.Protocol -------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase is Phase.OPEN or phase is Phase.CLOSING:
            self._feed(data)
        elif phase is not Phase.CLOSED:  # before the app answers the handshake: hold (bounded)
            self.early += data
            if len(self.early) > EARLY_DATA_LIMIT:
                self._pause_reading()

    def eof_received(self) -> bool | None:
        return None  # close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSED
        self.deadline = 0.0
        self.state.connections.discard(self)
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        self._wake()
        self._wake_drain()

    def write_closed(self) -> bool:
        return self.phase is Phase.CLOSED

    # -- frames in ----------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        engine = self.engine
        queue = self.queue
        for event in engine.feed(data):
            if isinstance(event, str):
                queue.append({"type": "websocket.receive", "text": event})
            elif isinstance(event, bytes):
                queue.append({"type": "websocket.receive", "bytes": event})
            elif isinstance(event, Pong):
                self._pong()
            elif isinstance(event, Closed):
                self._peer_closed(event)
        out, eof = engine.outgoing()
        if out:
            self.transport.write(out)
        if eof:
            self._close_transport()
        if queue:
            self._wake()
            if len(queue) >= self.config.settings.ws_max_queue:
                self._pause_reading()

    def _peer_closed(self, event: Closed) -> None:
        if event.error:
            logger.debug("WebSocket %s failed: %d %s", self._path(), event.code, logs.escape(event.reason))
        self.phase = Phase.CLOSED
        self.deadline = 0.0
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": event.code, "reason": event.reason}
        self._wake()

    def _pong(self) -> None:
        self.awaiting_pong = False
        interval = self.config.settings.ws_ping_interval
        if interval is not None and self.phase is Phase.OPEN:
            self.deadline = self.loop.time() + interval

    # -- ASGI -------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self.config.app(self.scope, self.receive, self.send)
        except BaseException as exc:  # noqa: BLE001 - every app failure is handled the same way
            self._app_failed(exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        else:
            self._app_returned()
        finally:
            self.state.active_requests -= 1

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return CONNECT
        queue = self.queue
        while True:
            if queue:
                message = queue.popleft()
                if self.read_paused and len(queue) < self.config.settings.ws_max_queue:
                    self._resume_reading()
                return message
            if self.disconnect is not None:
                return self.disconnect
            self.waiter = self.loop.create_future()
            await self.waiter

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        phase = self.phase
        if kind == "websocket.send" and phase is Phase.OPEN:  # the hot path
            text, data = message.get("text"), message.get("bytes")
            if text is not None and data is None:
                self.transport.write(self.engine.text(text))
            elif data is not None and text is None:
                self.transport.write(self.engine.binary(data))
            else:
                raise ResponseError("websocket.send needs exactly one of 'text' and 'bytes'")
            if self.write_paused:
                await self.drain()
            return
        if kind not in _ALLOWED[phase]:
            if phase is Phase.CLOSING or phase is Phase.CLOSED:
                raise ClientDisconnected(f"{kind}: the WebSocket is {phase.value}")
            raise WebSocketStateError(f"{kind} is not allowed while the WebSocket is {phase.value}")
        if kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self._app_close(message)
        elif kind == "websocket.http.response.start":
            self.phase = Phase.RESPONDING
            self.denial = (message["status"], message.get("headers", ()), [])
        else:
            self._denial_body(message)

    def _accept(self, message: dict[str, Any]) -> None:
        state = self.state
        common = state.server_line + state.date_line + self._extra_headers(message.get("headers") or ())
        head = accept_response(
            self.handshake.key, message.get("subprotocol"), self.extensions, message.get("headers"), common
        )
        self.transport.write(head)
        self.phase = Phase.OPEN
        self._log(101, 0)
        interval = self.config.settings.ws_ping_interval
        if interval is not None:
            self.deadline = self.loop.time() + interval
        if self.draining:
            self.shutdown()
            return
        early, self.early = self.early, b""
        if early:
            self._resume_reading()
            self._feed(early)

    def _app_close(self, message: dict[str, Any]) -> None:
        if self.phase is Phase.CONNECTING:  # before accepting: refuse the handshake
            self._deny(403, [(b"content-type", b"text/plain; charset=utf-8")], b"")
            return
        code = message.get("code") or 1000
        if code not in _VALID_CODES:
            raise ResponseError(f"websocket.close: invalid close code {code!r}")
        self._close(code, message.get("reason") or "")

    def _denial_body(self, message: dict[str, Any]) -> None:
        assert self.denial is not None
        status, headers, body = self.denial
        body.append(message.get("body", b""))
        if not message.get("more_body", False):
            self._deny(status, headers, b"".join(body))

    def _deny(self, status: int, headers: Any, body: bytes) -> None:
        state = self.state
        common = state.server_line + state.date_line + self._extra_headers(headers)
        self.transport.write(denial_response(status, headers, body, common))
        self._log(status, len(body))
        self.phase = Phase.CLOSED
        self.disconnect = {"type": "websocket.disconnect", "code": 1000, "reason": ""}
        self._close_transport()

    def _extra_headers(self, given: Any) -> bytes:
        extra = self.config.extra_headers
        return extra_lines(extra, {name.lower() for name, _ in given}) if extra else b""

    # -- app end --------------------------------------------------------------------------
    def _app_failed(self, exc: BaseException) -> None:
        phase = self.phase
        if isinstance(exc, ClientDisconnected) or (isinstance(exc, asyncio.CancelledError) and phase is Phase.CLOSED):
            logger.debug("WebSocket %s: the app stopped after the disconnect (%r)", self._path(), exc)
        else:
            logger.error("Exception in ASGI app (WebSocket %s)", self._path(), exc_info=exc)
        if phase is Phase.CONNECTING:
            self._deny(500, [(b"content-type", b"text/plain; charset=utf-8")], b"Internal Server Error\n")
        elif phase is Phase.OPEN:
            self._close(1011, "")
        elif phase is Phase.RESPONDING:
            self._abort()

    def _app_returned(self) -> None:
        phase = self.phase
        if phase is Phase.CONNECTING:
            logger.error("ASGI app returned without accepting or refusing WebSocket %s", self._path())
            self._deny(500, [(b"content-type", b"text/plain; charset=utf-8")], b"Internal Server Error\n")
        elif phase is Phase.OPEN:
            self._close(1000, "")
        elif phase is Phase.RESPONDING:
            self._abort()

    # -- closing --------------------------------------------------------------------------
    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake: send our close frame, give the peer CLOSE_TIMEOUT to answer."""
        self.transport.write(self.engine.close(code, reason))
        self.phase = Phase.CLOSING
        self.deadline = self.loop.time() + CLOSE_TIMEOUT
        self._resume_reading()  # the peer's close frame must get through

    def shed_rank(self) -> None:
        """A WebSocket is never closed to free a descriptor (fdlimit.py): it is a request in flight."""
        return None

    def shutdown(self) -> None:
        """The server is stopping: close an open WebSocket with the state's code (1012/1001);
        one still in its handshake is closed the same way right after the app accepts."""
        self.draining = True
        if self.phase is Phase.OPEN:
            code = self.state.ws_close_code
            self._close(code, "service restart" if code == 1012 else "going away")

    def expire(self) -> None:
        """A deadline passed: send the keepalive ping, or give up on a pong or a close answer."""
        if self.phase is Phase.OPEN:
            settings = self.config.settings
            if self.awaiting_pong:
                logger.info("WebSocket %s: no pong within %ss; closing", self._path(), settings.ws_ping_timeout)
                self.transport.write(self.engine.close(1011, "keepalive ping timeout"))
                self._abort()
                return
            self.awaiting_pong = True
            self.transport.write(self.engine.ping(b"deploykit"))
            wait = settings.ws_ping_timeout or settings.ws_ping_interval or CLOSE_TIMEOUT
            self.deadline = self.loop.time() + wait
        else:
            self._abort()

    def _close_transport(self) -> None:
        self.deadline = 0.0
        if not self.transport.is_closing():
            self.transport.close()

    def _abort(self) -> None:
        self.phase = Phase.CLOSED
        self.deadline = 0.0
        self.transport.close()

    # -- helpers --------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        wake(waiter)

    def _path(self) -> str:
        """The request-target for the error log: escaped, like every request value in a log line."""
        return logs.escape(logs.target(self.scope))

    def _log(self, status: int, sent: int) -> None:
        settings = self.config.settings
        if settings.access_log:
            scope = self.scope
            request = ("GET", logs.target(scope), scope["http_version"])
            logs.access(settings.access_log_format, scope["client"], request, status, sent, self.start_time)
