"""ASGI lifespan: startup before the first connection, shutdown after the last.

``--lifespan auto`` tolerates apps that do not implement it (an exception
before they answer startup); ``on`` makes that an error. A
``lifespan.startup.failed`` message always stops the server with its message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from deploykit.server.config import ServerConfig

logger = logging.getLogger("deploykit.error")


class Lifespan:
    def __init__(self, config: ServerConfig, state: dict[str, Any]) -> None:
        self.config = config
        self.mode = config.settings.lifespan
        self.state = state
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.failed: str | None = None
        self.unsupported = False
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> bool:
        """Run the app's startup; False (with ``failed`` set) means do not serve."""
        if self.mode == "off":
            return True
        self.task = asyncio.get_running_loop().create_task(self._main())
        await self.inbox.put({"type": "lifespan.startup"})
        await self.started.wait()
        return self.failed is None

    async def shutdown(self, timeout: float) -> None:
        if self.task is None or self.unsupported or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self.stopped.wait(), timeout)
        except TimeoutError:
            logger.warning("lifespan shutdown did not finish within %ss", timeout)
            self.task.cancel()
        if self.failed is not None:
            logger.error("lifespan shutdown failed: %s", self.failed)

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.config.app(scope, self.receive, self.send)
        except BaseException as exc:  # noqa: BLE001 - reported according to the lifespan mode
            if not self.started.is_set() and self.mode == "auto":
                self.unsupported = True
                logger.info("ASGI lifespan unsupported by the app (%s); continuing without it", type(exc).__name__)
            else:
                self.failed = f"lifespan raised {type(exc).__name__}: {exc}"
                logger.error("Exception in ASGI lifespan", exc_info=exc)
        finally:
            self.started.set()
            self.stopped.set()

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self.started.set()
        elif kind == "lifespan.startup.failed":
            self.failed = message.get("message") or "lifespan.startup.failed"
            self.started.set()
        elif kind == "lifespan.shutdown.complete":
            self.stopped.set()
        elif kind == "lifespan.shutdown.failed":
            self.failed = message.get("message") or "lifespan.shutdown.failed"
            self.stopped.set()
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
