"""Process-wide server state: open connections, counters, and one coarse
clock. A single ticker (every TICK seconds) refreshes the Date header and
enforces every connection deadline, instead of a timer handle per request."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from deploykit.errors import DeployKitError
from deploykit.server.config import SERVER_NAME, ServerConfig
from deploykit.server.fdlimit import FdGuard, Sheddable
from deploykit.server.protocols import ws_engines

if TYPE_CHECKING:
    from deploykit.server.protocols.ws_engines import EngineFactory

TICK = 0.5  # deadlines fire up to this late; the Date header is at most this stale
GOING_AWAY = 1001
SERVICE_RESTART = 1012


_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")


def http_date(now: float) -> bytes:
    """NOW as an HTTP date (RFC 9110 IMF-fixdate), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``.
    Written here rather than taken from email.utils, whose import costs the server ~1 MiB of RSS."""
    t = time.gmtime(now)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday],
        t.tm_mday,
        _MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


class Connection(Sheddable, Protocol):
    """What the ticker, the drain and the descriptor guard need of an HTTP or WebSocket connection."""

    deadline: float
    task: asyncio.Task[None] | None

    @property
    def transport(self) -> asyncio.Transport: ...

    def shutdown(self) -> None: ...

    def expire(self) -> None: ...


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.connections: set[Connection] = set()
        self.active_requests = 0
        self.total_requests = 0
        self.lifespan_state: dict[str, Any] = {}
        self.should_exit = False
        settings = config.settings
        self.server_line = b"server: " + SERVER_NAME + b"\r\n" if settings.server_header else b""
        self.date_line = b""
        self.request_limit = 0
        self.limit_reached: Callable[[], None] | None = None
        self.ws_name = ws_engines.resolve(settings.ws)
        if self.ws_name is not None and importlib.util.find_spec(self.ws_name) is None:
            raise DeployKitError(f"--ws {self.ws_name}: the {self.ws_name} package is not installed")
        self.ws_enabled = self.ws_name is not None
        self._ws_engine: EngineFactory | None = None
        # A stopping server closes open WebSockets with this code: 1012 (service restart) on
        # SIGTERM, which is how systemd, the supervisor's rolling restart and Gunicorn stop a
        # worker; 1001 (going away) on SIGINT, an operator's Ctrl-C.
        self.ws_close_code = SERVICE_RESTART
        self.fd_guard: FdGuard | None = None
        self.shed_at = sys.maxsize  # with this many connections, ask the guard (fdlimit.py)
        self.refresh()

    def guard_fds(self, limit: int) -> None:
        """Keep descriptors free for accept() under LIMIT open files (see fdlimit.py)."""
        self.fd_guard = FdGuard(limit)
        self.shed_at = self.fd_guard.check_at

    def shed(self, *, exhausted: bool = False) -> None:
        """Close the connections the guard picks: the open files are near the limit (or,
        EXHAUSTED, accept() already failed for want of one)."""
        guard = self.fd_guard
        if guard is None:
            return
        for conn in guard.check(self.connections, exhausted=exhausted):
            self.connections.discard(conn)
            conn.transport.close()
        self.shed_at = guard.check_at

    def ws_engine(self) -> EngineFactory:
        """The --ws engine, imported on the first upgrade request (not at start-up)."""
        if self._ws_engine is None:
            assert self.ws_name is not None
            self._ws_engine = ws_engines.engine_factory(self.ws_name)
        return self._ws_engine

    def on_request_limit(self, limit: int, callback: Callable[[], None]) -> None:
        """Call CALLBACK once TOTAL_REQUESTS reaches LIMIT (--limit-max-requests)."""
        self.request_limit, self.limit_reached = limit, callback

    def count_request(self) -> None:
        self.total_requests += 1
        if self.total_requests == self.request_limit and self.limit_reached is not None:
            self.limit_reached()

    def refresh(self) -> None:
        if self.config.settings.date_header:
            self.date_line = b"date: " + http_date(time.time()) + b"\r\n"

    async def tick_forever(self, heartbeat: Callable[[int], None] | None = None) -> None:
        """Refresh the Date header, enforce deadlines and, under a supervisor,
        prove the loop is alive: the heartbeat is written from the loop itself."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK)
            self.refresh()
            guard = self.fd_guard
            if guard is not None and len(self.connections) > guard.limit // 4:  # the app may open files too
                guard.calibrate(len(self.connections))
                self.shed_at = guard.check_at
            if heartbeat is not None:
                heartbeat(self.total_requests)
            now = loop.time()  # deadlines are set with loop.time() too
            for conn in list(self.connections):
                if conn.deadline and now >= conn.deadline:
                    conn.expire()
