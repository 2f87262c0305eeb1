"""File descriptors: never let idle half-open connections lock real clients out.

Rules:

* At start the soft ``RLIMIT_NOFILE`` is raised to the hard limit, as Go's
  runtime does: the soft default (1024) is a relic of ``select()``, and
  neither event loop uses ``select()``.
* The event loops own ``accept()`` and neither reports running out of
  descriptors in a way a server can act on: libuv (uvloop) accepts and at once
  closes the waiting connections with a reserve descriptor, so a real client
  gets a reset; asyncio's selector loop stops accepting for a second and
  retries (it accepts a whole backlog in one go, before any protocol sees a
  connection, so it can still fail there: the server's loop exception handler
  then asks the guard to shed at once). So the guard acts *before* ``accept()``
  can fail: when the open
  descriptors come within ``margin`` of the limit, it closes the connections
  that have no request in flight — first the oldest that never completed a
  request head, then the oldest idle keep-alive ones — until a second margin is
  free. A real client, which sends its head at once, is never among them.
* The check costs one comparison per new connection; descriptors are counted
  (``/proc/self/fd``) only near the limit, and after a shed not again until
  ``margin`` more connections have arrived, so a flood cannot make it spin.
* The shedding is logged at most once a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Callable, Collection
from typing import Protocol

logger = logging.getLogger("deploykit.error")
LOG_EVERY = 1.0  # seconds between two "shedding" log lines
MIN_MARGIN = 16


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # e.g. a hard limit above fs.nr_open
            logger.debug("could not raise the open-files limit from %d to %d: %s", soft, hard, exc)
            return soft
        logger.debug("raised the open-files limit (RLIMIT_NOFILE) from %d to %d", soft, hard)
        return hard
    return soft


def open_fds() -> int | None:
    """How many descriptors this process has open, or None where /proc is missing."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir itself held
    except OSError:
        return None


class Sheddable(Protocol):
    @property
    def transport(self) -> asyncio.Transport: ...

    def shed_rank(self) -> tuple[int, float] | None:
        """None while a request (or a WebSocket) is in flight; else the order to close it in: lower first."""
        ...


class FdGuard:
    """Keeps ``margin`` descriptors free for accept() by closing connections that have no request in flight."""

    def __init__(self, limit: int, count: Callable[[], int | None] = open_fds) -> None:
        self.limit = limit
        self.margin = max(MIN_MARGIN, limit // 64)
        self.count = count
        self.last_log = 0.0
        self.shed_total = 0
        self.check_at = 0  # the connection count at which to count descriptors again
        self.calibrate(0)

    def calibrate(self, connections: int) -> None:
        """Count the descriptors that are not connections (listeners, stdio, the app's files)
        and set the connection count at which the limit comes within the margin."""
        used = self.count()
        others = (used - connections) if used is not None else MIN_MARGIN
        self.check_at = max(1, self.limit - self.margin - max(others, 0))

    def check(self, connections: Collection[Sheddable], *, exhausted: bool = False) -> list[Sheddable]:
        """Called when the connection count reached ``check_at``, or when accept() failed for want
        of descriptors (EXHAUSTED): the connections to close now."""
        used = self.limit if exhausted else self.count()
        if used is None:
            used = len(connections) + MIN_MARGIN
        if used < self.limit - self.margin:  # the app closed files since the last count
            self.calibrate(len(connections))
            return []
        ranked = sorted(((rank, conn) for conn in connections if (rank := conn.shed_rank()) is not None), key=_first)
        victims = [conn for _, conn in ranked[: used - (self.limit - 2 * self.margin)]]
        # Closed descriptors are freed on the loop's next turn: count again only after MARGIN more connections.
        self.check_at = len(connections) - len(victims) + self.margin
        self.shed_total += len(victims)
        now = time.monotonic()
        if now - self.last_log >= LOG_EVERY:
            self.last_log = now
            logger.warning(
                "open files near the limit (%d of %d): closing %d connection(s) without a request in flight "
                "(%d since start)",
                used,
                self.limit,
                len(victims),
                self.shed_total,
            )
        return victims


def _first(item: tuple[tuple[int, float], Sheddable]) -> tuple[int, float]:
    return item[0]
