"""Read-side flow control shared by the HTTP and WebSocket connections:
stop reading from the socket while the app is behind, start again when it
catches up (each pause or resume is one call into the transport)."""

from __future__ import annotations

import asyncio


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
