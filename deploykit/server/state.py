"""Process-wide server state: open connections, counters, and one coarse
clock. A single ticker (every TICK seconds) refreshes the Date header and
enforces every connection deadline, instead of a timer handle per request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from deploykit.server.config import SERVER_NAME, ServerConfig

if TYPE_CHECKING:
    from deploykit.server.protocols.connection import HTTPConnection

TICK = 0.5  # deadlines fire up to this late; the Date header is at most this stale


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.connections: set[HTTPConnection] = set()
        self.active_requests = 0
        self.total_requests = 0
        self.lifespan_state: dict[str, Any] = {}
        self.should_exit = False
        settings = config.settings
        self.server_line = b"server: " + SERVER_NAME + b"\r\n" if settings.server_header else b""
        self.date_line = b""
        self.request_limit = 0
        self.limit_reached: Callable[[], None] | None = None
        self.refresh()

    def on_request_limit(self, limit: int, callback: Callable[[], None]) -> None:
        """Call CALLBACK once TOTAL_REQUESTS reaches LIMIT (--limit-max-requests)."""
        self.request_limit, self.limit_reached = limit, callback

    def count_request(self) -> None:
        self.total_requests += 1
        if self.total_requests == self.request_limit and self.limit_reached is not None:
            self.limit_reached()

    def refresh(self) -> None:
        if self.config.settings.date_header:
            self.date_line = b"date: " + formatdate(usegmt=True).encode("ascii") + b"\r\n"

    async def tick_forever(self, heartbeat: Callable[[int], None] | None = None) -> None:
        """Refresh the Date header, enforce deadlines and, under a supervisor,
        prove the loop is alive: the heartbeat is written from the loop itself."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK)
            self.refresh()
            if heartbeat is not None:
                heartbeat(self.total_requests)
            now = loop.time()  # deadlines are set with loop.time() too
            for conn in list(self.connections):
                if conn.deadline and now >= conn.deadline:
                    conn.expire()
