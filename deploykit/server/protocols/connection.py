"""What both parsers share: one HTTP/1.1 connection's life.

A parser subclass turns bytes into ``start_request`` / body / end calls; this
class owns everything else — request ordering for pipelined requests, the
header-read and keep-alive deadlines (enforced by the state's ticker), flow
control in both directions, concurrency limits, error responses the server
makes itself, and closing. Rules of thumb it enforces:

* a rejected request (400/414/431) is answered, then the connection closes and
  no byte after it is parsed;
* a response that finishes before its request body was fully received closes
  the connection, so an unread body is never parsed as a new request.

The connection's life is one ``ConnPhase`` (cycle.py; as the WebSocket's is one ``Phase``);
flow control in each direction is a mixin of ``flow.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import Any, Protocol
from urllib.parse import unquote

from deploykit.server import logs
from deploykit.server.config import ServerConfig
from deploykit.server.protocols.cycle import ACTIVE, CLOSED, DRAINING, IDLE, RequestCycle, spawner
from deploykit.server.protocols.flow import ReadFlow, WriteFlow
from deploykit.server.protocols.proxy import resolve_trusted
from deploykit.server.protocols.rules import RequestRejected, absolute_target, inspect_head
from deploykit.server.protocols.wire import HTTP_ASGI, RequestHead, status_line
from deploykit.server.state import ServerState

logger = logging.getLogger("deploykit.error")

HIGH_WATER = 65536
SHUTDOWN_GRACE = 0.5  # idle connections close this long after a stop (plus up to one tick)


def _address(info: object) -> tuple[str, int] | None:
    """A socket address as ASGI's ``client``/``server``: (host, port) for IP sockets."""
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


class Upgrade(Protocol):
    """A protocol prepared for an upgrade request (``websocket.prepare``): once the parser is
    done it takes the transport over (``set_protocol``) with the bytes after the request."""

    def start(self, transport: asyncio.Transport, rest: bytes) -> None: ...


async def _service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    body = b"Service Unavailable"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HTTPConnection(ReadFlow, WriteFlow, asyncio.Protocol):
    def __init__(self, config: ServerConfig, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.state = state
        self.loop = loop
        self.settings = settings = config.settings
        self.app = config.app
        self.extra_headers = config.extra_headers
        self.access_log = settings.access_log
        self.root_path = settings.root_path
        self.keep_alive_timeout = settings.timeout_keep_alive
        self.header_timeout = settings.timeout_header_read
        self.server: tuple[str, int] | None = None
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.cycle: RequestCycle | None = None  # producing its response now
        self.reading: RequestCycle | None = None  # receiving its body now
        self.queue: deque[RequestCycle] = deque()
        self.task: asyncio.Task[None] | None = None
        self.pending_error: RequestRejected | None = None
        self.phase = IDLE
        self.write_paused = False
        self.read_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.deadline = 0.0
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.limit = self.settings.limit_concurrency
        self.trust_proxy = False
        self.upgraded: Upgrade | None = None  # takes the transport once the parser is done
        self.spawn = spawner(loop, self.settings.reset_contextvars)

    # -- asyncio.Protocol ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        sock = transport.get_extra_info("sockname")
        self.client = _address(transport.get_extra_info("peername"))
        server = _address(sock)
        if server is None and isinstance(sock, str) and sock:
            server = (sock, None)  # type: ignore[assignment]  # ASGI: (path, None) for unix sockets
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.server = server
        # The peer is fixed for the connection's life: decide trust once.
        self.trust_proxy = self.settings.proxy_headers and self.config.trusted.trusts(
            self.client[0] if self.client else None
        )
        state = self.state
        state.connections.add(self)
        self.phase = ACTIVE  # the header-read deadline runs from the connect
        self.deadline = self.loop.time() + self.settings.timeout_header_read
        if len(state.connections) >= state.shed_at:  # open files near the limit (server/fdlimit.py)
            state.shed()
        if self.state.should_exit:
            self.shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = CLOSED
        self.state.connections.discard(self)
        for cycle in (self.cycle, self.reading, *self.queue):
            if cycle is not None:
                cycle.disconnect()
        if self.cycle is None:
            self.queue.clear()
        self._wake_drain()

    def write_closed(self) -> bool:
        return self.phase is CLOSED

    # -- called by the parser subclass ----------------------------------------------
    def bytes_arrived(self) -> None:
        """The first byte of a new request ends the keep-alive wait and starts
        the header-read deadline (total, not reset by later bytes)."""
        self.phase = ACTIVE
        self.deadline = self.loop.time() + self.header_timeout

    def start_request(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], version: str) -> None:
        head = inspect_head(headers, version == "1.1")
        self.deadline = 0.0
        # Absolute-form: the target's authority replaces Host. (Both parsers refuse an empty target.)
        if target[0] != 47 and b"://" in target:  # 47: "/", origin-form
            target, headers = absolute_target(target, headers)
        raw_path, _, query = target.partition(b"?")
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            raise RequestRejected(400, "non-ASCII request target") from None
        if "%" in path:
            path = unquote(path)
        if head.websocket and self.state.ws_enabled:
            self._start_websocket(RequestHead(method, version, path, raw_path, query, headers, head.has_body))
            return
        state = self.state
        if self.trust_proxy and head.proxied:  # the head pass saw a proxy header: no second pass otherwise
            client, scheme = resolve_trusted(self.config.trusted, self.client, self.scheme, headers)
        else:
            client, scheme = self.client, self.scheme
        # One dict literal: no copy of a base scope, no item-by-item updates.
        scope = {
            "type": "http",
            "asgi": HTTP_ASGI,
            "server": self.server,
            "client": client,
            "scheme": scheme,
            "root_path": self.root_path,
            "http_version": version,
            "method": method,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "state": state.lifespan_state.copy(),
        }
        has_body = head.has_body
        cycle = RequestCycle(
            self,
            self.app,
            scope,
            head.keep_alive and not head.websocket,  # --ws none: plain HTTP, like uvicorn; no switch, so close after
            head.expect_continue,
            version == "1.1",
            method == "HEAD",
            has_body,
        )
        if self.access_log:
            cycle.start_time = perf_counter()
        if has_body:
            self.reading = cycle
        if self.limit is not None and state.active_requests >= self.limit:
            cycle.rejected = True
        if self.cycle is None:
            self._run(cycle)
        else:
            self.queue.append(cycle)
            self._pause_reading()

    def _start_websocket(self, head: RequestHead) -> None:
        """Check the handshake and prepare the WebSocket protocol; the parser
        hands the transport over (``hand_over``) once it has finished the request."""
        from deploykit.server.protocols import websocket  # only servers that see an upgrade pay for it

        if self.cycle is not None or self.queue:
            raise RequestRejected(400, "WebSocket upgrade pipelined behind other requests")
        if self.limit is not None and self.state.active_requests >= self.limit:
            raise RequestRejected(503, "Service Unavailable")
        self.upgraded = websocket.prepare(self, head)

    def hand_over(self, rest: bytes) -> None:
        """The upgrade request is fully parsed: the WebSocket protocol takes the
        transport and REST, the bytes that followed the request."""
        ws, self.upgraded = self.upgraded, None
        assert ws is not None
        self.state.connections.discard(self)
        self.deadline = 0.0
        ws.start(self.transport, rest)

    def body_received(self, data: bytes) -> None:
        cycle = self.reading
        if cycle is not None and not cycle.complete:
            cycle.feed_body(data)
            if cycle.body_size > HIGH_WATER:
                self._pause_reading()

    def message_complete(self) -> None:
        cycle, self.reading = self.reading, None
        if cycle is not None:
            cycle.end_body()

    def body_consumed(self) -> None:
        if self.read_paused and not self.queue:
            self._resume_reading()

    def reject(self, error: RequestRejected) -> None:
        """Answer a bad request once everything before it is answered, then close.
        A broken request *body* aborts its own exchange: the app sees
        http.disconnect and the client gets the 400 (if nothing was sent yet)."""
        self._pause_reading()
        broken, self.reading = self.reading, None
        if broken is not None and broken is self.cycle:
            broken.disconnect()
            if broken.started:
                self.close()
                return
        elif broken is not None and broken in self.queue:
            self.queue.remove(broken)
        self.pending_error = error
        if self.cycle is None or self.cycle is broken:
            self._flush_error()

    # -- cycles -----------------------------------------------------------------------
    def _run(self, cycle: RequestCycle) -> None:
        self.cycle = cycle
        if cycle.rejected:
            cycle.app = _service_unavailable
        else:
            self.state.active_requests += 1
        self.task = self.spawn(cycle.run())

    def response_done(self, cycle: RequestCycle) -> None:
        state = self.state
        if not cycle.rejected:
            state.active_requests -= 1
            state.count_request()
        if self.access_log:
            scope = cycle.scope
            request = (scope["method"], logs.target(scope), scope["http_version"])
            logs.access(
                self.settings.access_log_format, scope["client"], request, cycle.status, cycle.sent, cycle.start_time
            )
        self.cycle = None
        if not cycle.keep_alive or cycle.more_body or self.phase >= DRAINING:
            self.queue.clear()
            self.close()
            return
        if self.queue:
            self._run(self.queue.popleft())
            if not self.queue:
                self._resume_reading()
        elif self.pending_error is not None:
            self._flush_error()
        else:
            idle = self.reading is None
            if idle:
                self.phase = IDLE
            self.deadline = self.loop.time() + (self.keep_alive_timeout if idle else self.header_timeout)
            if self.read_paused:
                self._resume_reading()

    def app_failed(self, cycle: RequestCycle, exc: BaseException | None) -> None:
        if cycle.disconnected and not isinstance(exc, Exception):
            pass  # the client went away, or its request was rejected mid-body
        elif exc is None:
            logger.error("ASGI app returned without completing the response to %s", logs.escape(cycle.scope["path"]))
        elif not (isinstance(exc, asyncio.CancelledError) and self.phase is CLOSED):
            logger.error("Exception in ASGI app", exc_info=exc)
        if cycle.complete:
            return
        cycle.complete = True
        cycle.keep_alive = False
        if not cycle.started and self.phase is not CLOSED:
            cycle.status = 500
            self.transport.write(self._error_bytes(500, "Internal Server Error"))
        self.response_done(cycle)

    # -- closing ------------------------------------------------------------------------
    def shed_rank(self) -> tuple[int, float] | None:
        """Closed first when the open files near the limit: no request in flight, and
        still reading a head (0) before idle keep-alive (1); the earlier deadline first."""
        if self.cycle is not None or self.reading is not None or self.queue or self.upgraded or self.phase is CLOSED:
            return None
        return (1 if self.phase is IDLE else 0, self.deadline)

    def shutdown(self) -> None:
        """Server is stopping. A busy connection closes after its current response
        (sent with ``connection: close``). An idle one closes after a short grace,
        so a request already on its way is answered (with close) instead of
        meeting a reset — this is what makes rolling restarts lose nothing.
        That request's head must arrive within the grace: the phase no longer
        goes back to ACTIVE, so its bytes do not start a new header-read deadline."""
        if self.phase is CLOSED:
            return
        self.phase = DRAINING
        if self.cycle is not None:
            self.cycle.keep_alive = False
        else:
            self.deadline = self.loop.time() + SHUTDOWN_GRACE

    def expire(self) -> None:
        """A deadline passed: header-read or keep-alive timeout."""
        if self.settings.access_log and self.phase is ACTIVE and self.cycle is None:
            logs.access(
                self.settings.access_log_format, self.client, None, 408, 0, None, "timed out reading the request head"
            )
        self.close()

    def close(self) -> None:
        self.phase = CLOSED
        self.deadline = 0.0
        if not self.transport.is_closing():
            self.transport.close()

    def _flush_error(self) -> None:
        error, self.pending_error = self.pending_error, None
        if error is not None and not self.transport.is_closing():
            self.transport.write(self._error_bytes(error.status, error.reason, error.headers))
            if self.settings.access_log:
                logs.access(
                    self.settings.access_log_format,
                    self.client,
                    None,
                    error.status,
                    len(error.reason) + 1,
                    None,
                    f"rejected: {error.reason}",
                )
        self.close()

    def _error_bytes(self, status: int, reason: str, headers: bytes = b"") -> bytes:
        body = (reason + "\n").encode("ascii", "replace")
        state = self.state
        return (
            status_line(status)
            + headers
            + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body)
            + state.server_line
            + state.date_line
            + b"connection: close\r\n\r\n"
            + body
        )
