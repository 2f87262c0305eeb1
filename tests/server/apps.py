"""Plain ASGI 3 test applications for the `deploykit serve` behaviour suite.

One server process serves one application, so `router` dispatches by path
prefix to the small apps below; the suite starts `tests.server.apps:router`
unless a test needs an app's own lifespan behaviour (`lifespan_fail`).
Any request with `?entered=FILE` makes the router write FILE before it dispatches:
a test waits for that file to know its request is inside the app (tests/polling.py).

No frameworks: every message the server sees is written out here, so a test
failure always points at the server, never at a library in between.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from tests.polling import write_atomic

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Every HTTP request the router sees, by raw path (query string excluded).
# `/hits?p=/some/path` reports the count, so a test can prove that a smuggled
# request was never dispatched to the application.
HITS: Counter[str] = Counter()


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, length: bool = True
) -> None:
    all_headers = [(b"content-type", b"text/plain")] + (headers or [])
    if length:
        all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected while the app read the body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send, startup: Callable[[], str | None]) -> None:
    """Run the lifespan protocol; `startup` returns an error message to fail startup."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            error = startup()
            if error is None:
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.startup.failed", "message": error})
                return
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """200 with body b"Hello, world!" (13 bytes) and a Content-Length."""
    await _respond(send, 200, b"Hello, world!")


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body and send it back; x-body-length reports how many bytes arrived."""
    body = await _read_body(receive)
    await _respond(send, 200, body, [(b"x-body-length", str(len(body)).encode())])


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


async def scope_json(scope: Scope, receive: Receive, send: Send) -> None:
    """The request scope as JSON (bytes decoded as latin-1, tuples as lists)."""
    await _read_body(receive)
    fields = ("type", "client", "server", "scheme", "root_path", "path", "raw_path", "query_string")
    data = {name: _jsonable(scope.get(name)) for name in fields}
    data["http_version"] = scope.get("http_version")
    data["method"] = scope.get("method")
    data["headers"] = _jsonable(scope.get("headers", []))
    data["state"] = _jsonable(dict(scope.get("state") or {}))
    await _respond(send, 200, json.dumps(data).encode(), [(b"content-type", b"application/json")])


async def short_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Declares Content-Length: 10 but sends only 5 bytes."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"10")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"12345", "more_body": False})


async def long_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Declares Content-Length: 5 but sends 10 bytes."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"0123456789", "more_body": False})


async def raise_before_start(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("raise_before_start: deliberate failure before http.response.start")


async def raise_after_start(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts a 200 with Content-Length: 20, sends 7 bytes, then raises."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"20")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("raise_after_start: deliberate failure after http.response.start")


async def bad_header_name(scope: Scope, receive: Receive, send: Send) -> None:
    """A header name carrying CRLF and a space: must never reach the wire."""
    await _respond(send, 200, b"bad name", [(b"x-bad name\r\nset-cookie", b"evil=1")])


async def bad_header_value(scope: Scope, receive: Receive, send: Send) -> None:
    """A header value carrying CRLF (response splitting): must never reach the wire."""
    await _respond(send, 200, b"bad value", [(b"x-note", b"x\r\nSet-Cookie: evil=1")])


async def custom_server_header(scope: Scope, receive: Receive, send: Send) -> None:
    await _respond(send, 200, b"custom", [(b"server", b"my-app/1.0")])


async def slow(scope: Scope, receive: Receive, send: Send) -> None:
    """Sleep `t` seconds (query string, default 0.5), then 200 b"slow done"."""
    await asyncio.sleep(float(_query(scope).get("t", "0.5")))
    await _respond(send, 200, b"slow done")


async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
    """No Content-Length; two body chunks with more_body."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"chunk1-", "more_body": True})
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"chunk2", "more_body": False})


async def expect_reader(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body (which is what triggers 100 Continue), echoes it."""
    body = await _read_body(receive)
    await _respond(send, 200, b"read:" + body)


async def expect_ignorer(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers without ever calling receive()."""
    await _respond(send, 200, b"ignored")


async def state(scope: Scope, receive: Receive, send: Send) -> None:
    """Returns scope["state"]["x"], which the router's lifespan startup set."""
    value = (scope.get("state") or {}).get("x", "<missing>")
    await _respond(send, 200, str(value).encode())


async def disconnect_watcher(scope: Scope, receive: Receive, send: Send) -> None:
    """Waits for http.disconnect and writes its type to the file named by `?file=` (or $DISCONNECT_FILE)."""
    target = _query(scope).get("file") or os.environ["DISCONNECT_FILE"]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            write_atomic(target, message["type"])  # a test polling for the file never reads it half-written
            return


async def hits(scope: Scope, receive: Receive, send: Send) -> None:
    """How many requests the router dispatched for raw path `?p=`."""
    await _respond(send, 200, str(HITS[_query(scope).get("p", "")]).encode())


ROUTES: list[tuple[str, App]] = [
    ("/hello", hello),
    ("/echo", echo),
    ("/scope", scope_json),
    ("/short", short_body),
    ("/long", long_body),
    ("/raise-before", raise_before_start),
    ("/raise-after", raise_after_start),
    ("/bad-header-name", bad_header_name),
    ("/bad-header-value", bad_header_value),
    ("/custom-server", custom_server_header),
    ("/slow", slow),
    ("/streaming", streaming),
    ("/expect-read", expect_reader),
    ("/expect-ignore", expect_ignorer),
    ("/state", state),
    ("/disconnect", disconnect_watcher),
    ("/hits", hits),
]


def _startup_state(scope: Scope) -> Callable[[], str | None]:
    def startup() -> None:
        lifespan_state = scope.get("state")
        if lifespan_state is not None:
            lifespan_state["x"] = "set-in-startup"

    return startup


async def router(scope: Scope, receive: Receive, send: Send) -> None:
    """Dispatch by path prefix; its lifespan startup sets state["x"] (the `lifespan_state` behaviour)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, _startup_state(scope))
        return
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope type {scope['type']!r}")
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    raw_path = scope.get("raw_path") or path.encode()
    HITS[raw_path.decode("latin-1")] += 1
    entered = _query(scope).get("entered")
    if entered:  # `?entered=FILE`: FILE appears once the request reached the app (tests wait for it, not sleep)
        write_atomic(entered, path)
    for prefix, app in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            await app(scope, receive, send)
            return
    await _respond(send, 404, b"no route")


async def lifespan_state(scope: Scope, receive: Receive, send: Send) -> None:
    """Startup sets state["x"]; every HTTP request answers with it."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, _startup_state(scope))
        return
    await state(scope, receive, send)


async def lifespan_fail(scope: Scope, receive: Receive, send: Send) -> None:
    """Startup fails with the message "db down"; HTTP (when lifespan is off) answers 200 b"up"."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, lambda: "db down")
        return
    await _respond(send, 200, b"up")


async def access_log(scope: Scope, receive: Receive, send: Send) -> None:
    """For the access-log suite: HTTP answers 200 b"ok"; a WebSocket whose path contains "deny"
    is refused (close before accept, a 403), any other is accepted, then closed."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, lambda: None)
        return
    if scope["type"] == "http":
        await _respond(send, 200, b"ok")
        return
    assert (await receive())["type"] == "websocket.connect"
    if "deny" in scope["path"]:
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


def __getattr__(name: str) -> Any:
    """The WSGI apps of tests/server/wsgi_apps.py and the FastAPI app of fastapi_app.py, imported only
    by the servers that run them."""
    if name in ("flask_app", "django_app", "ambiguous"):
        from tests.server import wsgi_apps

        return getattr(wsgi_apps, name)
    if name == "fastapi_app":
        from tests.server import fastapi_app

        return fastapi_app.fastapi_app
    raise AttributeError(name)
