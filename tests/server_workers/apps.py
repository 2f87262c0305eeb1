"""An app that tells which worker answered, and can block its event loop."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/block":
        time.sleep(60)  # a handler that blocks the event loop
    body = str(os.getpid()).encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def barrier(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Finishes lifespan startup only once $BARRIER_COUNT workers have started it (each leaves its pid
    in $BARRIER_DIR), and fails startup after 20 s: proof that workers start side by side."""
    if scope["type"] != "lifespan":
        return await app(scope, receive, send)
    await receive()
    folder, count = os.environ["BARRIER_DIR"], int(os.environ["BARRIER_COUNT"])
    with open(os.path.join(folder, str(os.getpid())), "w"):
        pass
    deadline = time.monotonic() + 20
    while len(os.listdir(folder)) < count:
        if time.monotonic() > deadline:
            await send({"type": "lifespan.startup.failed", "message": "the other workers never started"})
            return
        await asyncio.sleep(0.05)
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await send({"type": "lifespan.shutdown.complete"})
