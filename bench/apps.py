"""The ASGI 3 apps `make bench` serves: plain callables, no framework, so the server is what gets measured.

Both servers load them as `bench.apps:hello` / `bench.apps:echo` / `bench.apps:ws_echo` with the repository root as cwd.
Both handle the lifespan protocol (startup and shutdown are accepted at once).
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HELLO_BODY = b"Hello, world!"
_HELLO_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(HELLO_BODY))]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """GET anything: 200 with the 13-byte body "Hello, world!"."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        raise RuntimeError(f"bench.apps:hello serves http only, not {scope['type']!r}")
    await send({"type": "http.response.start", "status": 200, "headers": _HELLO_HEADERS})
    await send({"type": "http.response.body", "body": HELLO_BODY})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Any method: 200 with the request body sent back whole (the benchmark POSTs 64 KiB)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        raise RuntimeError(f"bench.apps:echo serves http only, not {scope['type']!r}")
    chunks: list[bytes] = []
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        more_body = message.get("more_body", False)
    body = b"".join(chunks)
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def ws_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """WebSocket: accept, then send every message back as it came (text or bytes). HTTP: hello."""
    if scope["type"] != "websocket":
        await hello(scope, receive, send)
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def wsgi_hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """WSGI (PEP 3333): GET anything, 200 with the 13-byte body "Hello, world!" (bench/wsgi.py)."""
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "13")])
    return [HELLO_BODY]
