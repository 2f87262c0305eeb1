"""Apps for the option tests (importable by a server subprocess)."""

from __future__ import annotations

import contextvars
import json
import os
from typing import Any


async def info(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    client = scope["client"][0] if scope.get("client") else None
    env = os.environ.get("DK_OPTION_TEST", "")
    body = json.dumps({"scheme": scope["scheme"], "env": env, "path": scope["path"], "client": client})
    data = body.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def make_app() -> Any:
    return info


#: Set while the module is imported, i.e. in the context the server then runs in:
#: every request sees it, unless --reset-contextvars gives each one a fresh context.
probe: contextvars.ContextVar[str] = contextvars.ContextVar("probe", default="fresh")
probe.set("inherited")


async def context_probe(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the probe's value as seen by this request (HTTP) or session (WebSocket),
    then sets it, so a later request on the same connection would see a leak."""
    seen = probe.get()
    probe.set("set by an earlier request")
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": seen})
        await send({"type": "websocket.close"})
    elif scope["type"] == "http":
        data = json.dumps({"seen": seen}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})
