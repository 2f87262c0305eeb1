"""Flow control shared by the HTTP and WebSocket connections, in both directions.

Reading: stop reading from the socket while the app is behind, start again when
it catches up (each pause or resume is one call into the transport). Writing:
the transport calls ``pause_writing``/``resume_writing`` around its high-water
mark; a sender awaits ``drain()`` while paused, until resumed or the connection
is gone.
"""

from __future__ import annotations

import asyncio


def wake(waiter: asyncio.Future[None] | None) -> None:
    """Release a task waiting on WAITER (if any, and not already released or cancelled)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class ReadFlow:
    __slots__ = ()  # the connections declare the slots (an idle WebSocket stays small)
    transport: asyncio.Transport
    read_paused: bool

    def _pause_reading(self) -> None:
        if not self.read_paused and not self.transport.is_closing():
            self.read_paused = True  # type: ignore[misc]  # a slot of the subclass
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and not self.transport.is_closing():
            self.read_paused = False  # type: ignore[misc]  # a slot of the subclass
            self.transport.resume_reading()


class WriteFlow:
    """``pause_writing``/``resume_writing`` of ``asyncio.Protocol``, and ``drain()``.
    The subclass says when waiting is pointless (``write_closed``) and calls
    ``_wake_drain()`` when its connection is lost."""

    __slots__ = ()  # the connections declare the slots
    loop: asyncio.AbstractEventLoop
    write_paused: bool
    drain_waiter: asyncio.Future[None] | None

    def write_closed(self) -> bool:
        raise NotImplementedError

    def pause_writing(self) -> None:
        self.write_paused = True  # type: ignore[misc]  # a slot of the subclass

    def resume_writing(self) -> None:
        self.write_paused = False  # type: ignore[misc]  # a slot of the subclass
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiter, self.drain_waiter = self.drain_waiter, None  # type: ignore[misc]  # a slot of the subclass
        wake(waiter)

    async def drain(self) -> None:
        """Wait while the transport's buffer is above its high-water mark."""
        if self.write_paused and not self.write_closed():
            waiter = self.drain_waiter = self.loop.create_future()  # type: ignore[misc]  # a slot of the subclass
            await waiter
