"""ASGI apps for the WebSocket suite, dispatched by path (one server process serves them all).

/echo       accept (with the first offered subprotocol and an extra header), echo every message
/scope      accept, send the scope (JSON), close
/close      accept, close with the code and reason given in the query (code=4001&reason=bye)
/deny       close before accepting (-> 403)
/respond    a websocket.http.response denial: 418 with a body
/raise      raise before accepting (-> 500)
/noread     accept, never read again (backpressure)
/flood      accept, send 256 KiB messages as fast as the transport allows, forever
/stubborn   accept, ignore the disconnect and keep running (shutdown must still finish)
/record     accept, read until the disconnect, remember its code and reason
HTTP GET /last-close  the code and reason /record saw last; any other HTTP path: 200 "http <path>"
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LAST_CLOSE: dict[str, Any] = {}


async def router(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    else:
        handler = _HANDLERS.get(scope["path"], _echo)
        await handler(scope, receive, send)


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["from_lifespan"] = "yes"
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    body = json.dumps(LAST_CLOSE).encode() if scope["path"] == "/last-close" else f"http {scope['path']}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _connect(receive: Receive) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect", message


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-app", b"echo")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        key = "text" if message.get("text") is not None else "bytes"
        await send({"type": "websocket.send", key: message[key]})


async def _scope(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.accept"})
    shown = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "asgi")}
    shown["query_string"] = scope["query_string"].decode()
    shown["raw_path"] = scope["raw_path"].decode("latin-1")
    shown["host"] = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
    shown["spec_version"] = scope["asgi"].get("spec_version")
    await send({"type": "websocket.send", "text": json.dumps(shown)})
    await send({"type": "websocket.close", "code": 1000})


async def _close(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.accept"})
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
    await send({"type": "websocket.close", "code": int(query.get("code", "1000")), "reason": query.get("reason", "")})
    message = await receive()
    assert message["type"] == "websocket.disconnect", message


async def _deny(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.close"})


async def _respond(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.http.response.start", "status": 418, "headers": [(b"x-denied", b"yes")]})
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"websockets here"})


async def _raise(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    raise RuntimeError("boom before accept")


async def _noread(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.accept"})
    await asyncio.sleep(3600)


async def _flood(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.accept"})
    chunk = b"x" * 262144
    while True:
        await send({"type": "websocket.send", "bytes": chunk})


async def _stubborn(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.accept"})
    while True:
        await receive()  # the disconnect, again and again: this app does not care
        await asyncio.sleep(0.05)


async def _record(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            LAST_CLOSE.clear()
            LAST_CLOSE.update(code=message["code"], reason=message.get("reason", ""))
            return


_HANDLERS = {
    "/scope": _scope,
    "/close": _close,
    "/deny": _deny,
    "/respond": _respond,
    "/raise": _raise,
    "/noread": _noread,
    "/flood": _flood,
    "/stubborn": _stubborn,
    "/record": _record,
}
