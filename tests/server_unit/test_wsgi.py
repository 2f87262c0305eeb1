"""The WSGI adapter's parts, without a socket: the PEP 3333 environ (table-driven),
the bounded wsgi.input, start_response's exc_info rules, close(), a client that leaves
and wsgi.file_wrapper."""

from __future__ import annotations

import asyncio
import io
import sys
from typing import Any

import pytest

from deploykit.server.wsgi import FILE_BLOCK, QUEUED_CHUNKS, FileWrapper, WSGIApp, build_environ

BASE: dict[str, Any] = {
    "type": "http",
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [],
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
}

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("method and protocol", {"method": "PATCH", "http_version": "1.0"},
     {"REQUEST_METHOD": "PATCH", "SERVER_PROTOCOL": "HTTP/1.0"}),
    ("root_path is SCRIPT_NAME", {"root_path": "/app", "path": "/x"}, {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"}),
    # PEP 3333: native strings hold the bytes as latin-1; the app re-encodes them to get UTF-8 back.
    ("non-ASCII path, latin-1", {"path": "/café"}, {"PATH_INFO": "/caf\u00c3\u00a9"}),
    ("non-ASCII root_path", {"root_path": "/ü"}, {"SCRIPT_NAME": "/\u00c3\u00bc"}),
    ("query string verbatim", {"query_string": b"a=%20b&c=\xe9"}, {"QUERY_STRING": "a=%20b&c=\u00e9"}),
    ("content headers without HTTP_", {"headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]},
     {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3"}),
    ("headers become HTTP_*", {"headers": [(b"x-request-id", b"r1"), (b"accept", b"*/*")]},
     {"HTTP_X_REQUEST_ID": "r1", "HTTP_ACCEPT": "*/*"}),
    ("repeats are comma-joined", {"headers": [(b"x-a", b"1"), (b"x-a", b"2"), (b"x-a", b"3")]},
     {"HTTP_X_A": "1,2,3"}),
    ("cookies are joined with '; '", {"headers": [(b"cookie", b"a=1"), (b"cookie", b"b=2")]},
     {"HTTP_COOKIE": "a=1; b=2"}),
    ("resolved client is REMOTE_ADDR", {"client": ("203.0.113.9", 4711)},
     {"REMOTE_ADDR": "203.0.113.9", "REMOTE_PORT": "4711"}),
    ("https scheme", {"scheme": "https"}, {"wsgi.url_scheme": "https"}),
    ("bound address is SERVER_NAME/PORT", {"server": ("::1", 9000)}, {"SERVER_NAME": "::1", "SERVER_PORT": "9000"}),
    ("unix socket: from Host", {"server": ("/run/a.sock", None), "headers": [(b"host", b"example.com:8080")]},
     {"SERVER_NAME": "example.com", "SERVER_PORT": "8080"}),
    ("unix socket: Host without port", {"server": ("/run/a.sock", None), "headers": [(b"host", b"example.com")]},
     {"SERVER_NAME": "example.com", "SERVER_PORT": "80"}),
    ("unix socket, https, IPv6 Host", {"server": None, "scheme": "https", "headers": [(b"host", b"[::1]")]},
     {"SERVER_NAME": "[::1]", "SERVER_PORT": "443"}),
    ("no Host, no server", {"server": None}, {"SERVER_NAME": "localhost", "SERVER_PORT": "80"}),
    ("WSGI constants", {},
     {"wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
      "wsgi.errors": sys.stderr, "wsgi.input_terminated": True}),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_environ(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    environ = build_environ({**BASE, **changes}, body="BODY")
    assert {key: environ.get(key) for key in expected} == expected
    assert environ["wsgi.input"] == "BODY"
    assert all(isinstance(v, str) for k, v in environ.items() if k.isupper())  # PEP 3333: native strings only


def test_headers_with_underscores_are_dropped() -> None:
    # X_Forwarded_For and X-Forwarded-For would both be HTTP_X_FORWARDED_FOR: the client must not pose as nginx.
    environ = build_environ(
        {**BASE, "headers": [(b"x-forwarded-for", b"10.0.0.1"), (b"x_forwarded_for", b"6.6.6.6")]}, ""
    )
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"


def test_no_client_no_remote_addr() -> None:
    assert "REMOTE_ADDR" not in build_environ({**BASE, "client": None}, "")


# -- the adapter, driven as the server drives an ASGI app ------------------------------------
class Exchange:
    """Feeds body messages through receive() and records what the app sends."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.received = 0
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.received < len(self.chunks):
            self.received += 1
            return {"type": "http.request", "body": self.chunks[self.received - 1],
                    "more_body": self.received < len(self.chunks)}  # fmt: skip
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def serve(app: Any, exchange: Exchange, **scope: Any) -> None:
    async def main() -> None:
        await WSGIApp(app, threads=2)({**BASE, **scope}, exchange.receive, exchange.send)

    asyncio.run(main())


def test_wsgi_input_is_bounded_while_the_app_does_not_read() -> None:
    exchange = Exchange([b"x" * 1000] * 100)
    seen = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        import time

        time.sleep(0.3)  # the loop keeps running: the pump fills the queue, then must wait
        seen.append(exchange.received)
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"%d" % len(data)]

    serve(app, exchange, method="POST")
    assert seen[0] <= QUEUED_CHUNKS + 2  # the first message, the queued ones, the one waiting for room
    assert exchange.body() == b"100000"


@pytest.mark.parametrize("size", [0, 1, 7, 999, 1000, 1001, -1])
def test_wsgi_input_read_sizes_and_lines(size: int) -> None:
    lines = [b"line %d\n" % i for i in range(300)]
    payload = b"".join(lines)
    exchange = Exchange([payload[i : i + 777] for i in range(0, len(payload), 777)])
    got: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        got["first"] = stream.read(size)
        got["line"] = stream.readline()
        got["rest"] = list(stream)
        start_response("204 No Content", [])
        return []

    serve(app, exchange, method="POST")
    first = payload[:size] if size >= 0 else payload
    rest = payload[len(first) :]
    assert got["first"] == first
    assert got["line"] + b"".join(got["rest"]) == rest
    assert all(line.endswith(b"\n") for line in got["rest"])


def test_start_response_exc_info_before_and_after_the_head() -> None:
    def replaced(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-A", "1")])
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Oops", [("X-B", "2")], sys.exc_info())  # nothing sent yet: replaces
        return [b"err"]

    exchange = Exchange([b""])
    serve(replaced, exchange)
    assert exchange.sent[0]["status"] == 500 and (b"x-b", b"2") in exchange.sent[0]["headers"]

    def too_late(environ: dict[str, Any], start_response: Any) -> Any:
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise KeyError("after the head")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())  # the head is out: re-raises
        return []

    with pytest.raises(KeyError, match="after the head"):
        serve(too_late, Exchange([b""]))


def test_second_start_response_without_exc_info_fails() -> None:
    def twice(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return []

    with pytest.raises(AssertionError, match="second time"):
        serve(twice, Exchange([b""]))


class Closing:
    def __init__(self, fail: bool) -> None:
        self.fail, self.closed = fail, False

    def __iter__(self) -> Any:
        yield b"a"
        if self.fail:
            raise RuntimeError("mid-body")
        yield b"b"

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("fail", [False, True])
def test_close_always_runs(fail: bool) -> None:
    body = Closing(fail)

    def app(environ: dict[str, Any], start_response: Any) -> Closing:
        start_response("200 OK", [])
        return body

    if fail:
        with pytest.raises(RuntimeError):
            serve(app, Exchange([b""]))
    else:
        serve(app, Exchange([b""]))
    assert body.closed


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [("200", [], ValueError), ("OK 200", [], ValueError), ("200 OK", [("X", 1)], TypeError),
     ("200 OK", [(b"X", "1")], TypeError)],
)  # fmt: skip
def test_bad_status_or_headers_fail_the_request(status: Any, headers: Any, error: type[Exception]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, headers)
        return [b""]

    with pytest.raises(error):
        serve(app, Exchange([b""]))


def test_websocket_scope_is_refused_and_lifespan_acknowledged() -> None:
    sent: list[Any] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> Any:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    app = WSGIApp(lambda e, s: [], threads=1)
    asyncio.run(app({"type": "lifespan"}, receive, send))
    asyncio.run(app({"type": "websocket"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete", "websocket.close"]


def test_contextvars_set_by_the_app_do_not_outlive_the_request() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(var.get("unset"))
        var.set("set by a request")
        start_response("200 OK", [])
        return [b""]

    wsgi = WSGIApp(app, threads=1)  # one thread: both requests run in it

    async def main() -> None:
        for _ in range(2):
            exchange = Exchange([b""])
            await wsgi(dict(BASE), exchange.receive, exchange.send)

    asyncio.run(main())
    assert seen == ["unset", "unset"]


# -- the client leaves while the app streams -------------------------------------------------------
class Endless:
    def __init__(self) -> None:
        self.produced = 0
        self.closed = False

    def __iter__(self) -> Any:
        while self.produced < 10_000:  # bounded: an adapter that does not stop fails the test, not hangs it
            self.produced += 1
            yield b"x" * 100
        raise AssertionError("10,000 blocks and the adapter is still asking for more")

    def close(self) -> None:
        self.closed = True


class Closes(Exchange):
    """The client leaves after GONE_AFTER body blocks were sent: send() raises OSError (ASGI 2.4),
    or (FLAG) the server's request cycle says so, as deploykit's does."""

    def __init__(self, chunks: list[bytes], gone_after: int, *, flag: bool) -> None:
        super().__init__(chunks)
        self.gone_after, self.flag = gone_after, flag
        self.disconnected = False

    async def send(self, message: dict[str, Any]) -> None:
        if self.disconnected and not self.flag:
            raise ConnectionResetError("the client has gone")
        await super().send(message)
        if sum(m["type"] == "http.response.body" for m in self.sent) >= self.gone_after:
            self.disconnected = True


@pytest.mark.parametrize("flag", [False, True], ids=["send raises OSError", "the server's flag"])
def test_a_client_that_leaves_stops_an_app_that_never_read_its_body(flag: bool) -> None:
    # 100 chunks, never read: the queue is full, the listener cannot receive() the disconnect.
    exchange = Closes([b"x" * 1000] * 100, gone_after=5, flag=flag)
    body = Endless()

    def app(environ: dict[str, Any], start_response: Any) -> Endless:
        start_response("200 OK", [])
        return body

    serve(app, exchange, method="POST")  # returns: the thread stopped, without an error
    assert body.closed and body.produced <= 6
    assert exchange.received <= QUEUED_CHUNKS + 2  # the body was not drained into memory meanwhile


# -- wsgi.file_wrapper ------------------------------------------------------------------------------
class Recorded(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []
        self.was_closed = False

    def read1(self, size: int | None = -1) -> bytes:
        data = super().read1(size)
        self.reads.append(len(data))
        return data

    def close(self) -> None:
        self.was_closed = True
        super().close()


DATA = bytes(range(256)) * 4000  # 1,024,000 bytes: four whole FILE_BLOCKs and a part


@pytest.mark.parametrize(
    ("method", "length", "sent"),
    [("GET", None, DATA), ("GET", len(DATA), DATA), ("GET", 300_000, DATA[:300_000]), ("HEAD", len(DATA), b""),
     ("GET", 0, b"")],
    ids=["no Content-Length", "exact Content-Length", "shorter Content-Length", "HEAD", "zero length"],
)  # fmt: skip
def test_file_wrapper_reads_in_blocks_up_to_the_declared_length(method: str, length: int | None, sent: bytes) -> None:
    exchange = Exchange([b""])
    recorded = Recorded(DATA)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        headers = [] if length is None else [("Content-Length", str(length))]
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](recorded, 4096)

    serve(app, exchange, method=method)
    assert exchange.body() == sent  # the server drops a HEAD response's body; here nothing was even read
    assert sum(recorded.reads) == len(sent) and all(n <= FILE_BLOCK for n in recorded.reads)
    assert len(sent) < FILE_BLOCK or max(recorded.reads) == FILE_BLOCK  # the adapter's blocks, not 4096
    assert recorded.was_closed
    assert exchange.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_file_wrapper_under_a_middleware_is_a_plain_iterable() -> None:
    recorded = Recorded(DATA)
    wrapper = FileWrapper(recorded, 100_000)
    blocks = list(wrapper)  # what a middleware that rewrites the body sees
    wrapper.close()
    assert b"".join(blocks) == DATA and [len(b) for b in blocks[:-1]] == [100_000] * 10
    assert recorded.was_closed
    with pytest.raises(TypeError, match="no read"):
        FileWrapper("not a file")


def test_a_body_longer_than_its_content_length_is_cut_there() -> None:
    exchange = Exchange([b""])
    body = Endless()

    def app(environ: dict[str, Any], start_response: Any) -> Endless:
        start_response("200 OK", [("Content-Length", "250")])
        return body

    serve(app, exchange)
    assert exchange.body() == b"x" * 250
    assert body.produced == 3 and body.closed  # iteration stops once the declared length is sent
