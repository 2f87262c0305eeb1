"""WSGI apps (PEP 3333) under the ASGI server: ``--interface wsgi``.

Each request runs the app in a thread of a bounded pool (``--wsgi-threads``);
the event loop keeps the socket. The two sides meet in an ``_Exchange``:

- request body: a loop-side listener reads the ASGI ``receive`` channel into a
  bounded queue of chunks (``QUEUED_CHUNKS``); ``wsgi.input`` reads from it on
  demand, so a large upload is never held whole in memory, and while the app
  does not read, the queue fills, the listener stops receiving and the server stops
  reading the socket (its own flow control);
- response: every block the app yields is handed to the loop and the thread
  waits until the server has taken it (``send`` waits while the transport's
  buffer is over its high-water mark), so a large iterable is streamed at the
  client's pace, never queued whole;
- the iterable's ``close()`` is always called: at the end, after an exception,
  and when the client went away (the thread stops iterating at the next block);
- the client's departure is learnt however much of the body the app has read:
  from ``receive()`` (``http.disconnect``) while a receive can be pending, i.e.
  while the body queue has room or the body is all queued; when the app leaves
  a large body unread, the queue is full and the listener may not receive (it would
  take bytes the app may still read), so each streamed block also asks the
  server: an ``OSError`` from ``send()`` (ASGI 2.4) or, from deploykit's own
  request cycle, its ``disconnected`` flag;
- ``wsgi.file_wrapper`` (PEP 3333's optional extension, which Flask's
  ``send_file`` and Django's ``FileResponse`` use) reads the file in the thread in
  ``FILE_BLOCK`` pieces, each sent as a block above, and never sends more than a
  ``Content-Length`` the app set (nor any body to a HEAD request).

If the request is cancelled (server shutdown past its grace period), the
thread is told at its next crossing (a read or a block) and unwinds, running
``close()``; a thread stuck in the app's own code cannot be stopped from
outside, as with every threaded WSGI server.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import functools
import queue
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

from deploykit.errors import DeployKitError
from deploykit.server.protocols.flow import wake

Message = dict[str, Any]
#: Body chunks the listener may queue ahead of the app's reads (each one receive() message: what
#: the server had buffered, at most its 64 KiB high-water mark and one socket read, 250 KB seen).
QUEUED_CHUNKS = 4
#: How often a thread waiting on the loop checks whether its request was abandoned.
_POLL = 0.5
#: The most a wsgi.file_wrapper response reads from its file at once (one crossing to the loop
#: per block; the app's block_size, 4-8 KiB in Django and Werkzeug, would cost 32-64 times as many).
FILE_BLOCK = 256 * 1024
_HTTP_11 = {"1.0": "HTTP/1.0", "1.1": "HTTP/1.1"}


class Abandoned(Exception):
    """The request was cancelled or its client left: the thread stops and unwinds."""


class WSGIApp:
    """A WSGI app as an ASGI3 callable (HTTP only: a WebSocket is refused with 403 by
    the server, lifespan events are acknowledged)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, threads: int, multiprocess: bool = False) -> None:
        if threads < 1:
            raise DeployKitError(f"--wsgi-threads {threads}: must be at least 1")
        self.app = app
        self.threads = threads
        self.multiprocess = multiprocess
        self._executor: ThreadPool | None = None

    @property
    def executor(self) -> ThreadPool:
        # Made on first use, in the process that serves (workers are forked after the app is loaded).
        if self._executor is None:
            self._executor = ThreadPool(self.threads)
        return self._executor

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        else:  # a WebSocket: WSGI has none; closing before accept makes the server answer 403
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Message, receive: Any, send: Any) -> None:
        loop = asyncio.get_running_loop()
        first = await receive()
        exchange = _Exchange(loop, send, receive)
        exchange.body.initial(first)
        if not exchange.body.ended:
            exchange.listener = loop.create_task(exchange.listen())
        environ = build_environ(scope, exchange.body, multiprocess=self.multiprocess)
        try:
            # In a copy of this request's context (a fresh one with --reset-contextvars): what the app
            # sets in a contextvar stays with the request, never with the pool's thread.
            context = contextvars.copy_context()
            await loop.run_in_executor(self.executor, context.run, exchange.serve, self.app, environ)
            try:
                for message in exchange.final:  # the last messages: sent here, the thread did not wait for them
                    await send(message)
            except OSError:  # ASGI 2.4: the client has gone; nothing is left to tell the app
                pass
        finally:
            exchange.abandoned = True  # no-op when the thread is done; else it unwinds at its next crossing
            if exchange.listener is not None:
                exchange.listener.cancel()


class ThreadPool(concurrent.futures.Executor):
    """At most SIZE daemon threads, started as work arrives. Not ThreadPoolExecutor: the
    interpreter joins its threads at exit, so an app stuck in a request (a sleep, a slow
    query) would hold the process past --timeout-graceful-shutdown; the server's promise
    is a bounded exit, and an abandoned request's thread dies with the process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.work: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]]
        self.work = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.started = 0
        self.idle = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.work.put((future, fn, args))
        with self.lock:
            if self.idle:
                self.idle -= 1  # a waiting thread takes it
            elif self.started < self.size:  # a new thread takes it (work queues only when all SIZE are busy)
                self.started += 1
                threading.Thread(target=self._run, name=f"wsgi_{self.started - 1}", daemon=True).start()
        return future

    def _run(self) -> None:
        while True:
            future, fn, args = self.work.get()
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request, as an executor does
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args  # no reference to the last request while waiting for the next
            with self.lock:
                self.idle += 1


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Exchange:
    """One request between the event loop and the app's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Any, receive: Any) -> None:
        self.loop = loop
        self.send = send
        self.receive = receive
        # deploykit's request cycle (send is its bound method) says whether the client has left.
        self.cycle = getattr(send, "__self__", None)
        self.body = Input(self)
        self.listener: asyncio.Task[None] | None = None
        self.disconnected = False
        self.abandoned = False
        self.status = ""
        self.headers: list[tuple[bytes, bytes]] = []
        self.declared: int | None = None  # the Content-Length the app set: never more is sent
        self.written = 0
        self.head_sent = False
        self.final: list[Message] = []

    # -- loop side ------------------------------------------------------------------
    async def listen(self) -> None:
        """The client's side while the app runs: the request body into the bounded queue (waiting
        for room while the app does not read), and once it is all queued, receive() again: it
        returns only when the client leaves (or the response is complete)."""
        body = self.body
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                body.end()
                return
            if not body.ended:
                await body.put(message.get("body", b""), more=message.get("more_body", False))

    async def _send_all(self, messages: list[Message]) -> None:
        if self.listener is None:  # a streamed response, the body all read: learn when the client leaves
            self.listener = self.loop.create_task(self.listen())
        try:
            for message in messages:
                await self.send(message)
        except OSError:  # ASGI 2.4: send() on a closed connection
            self.disconnected = True
        # While the app leaves a large body unread, the listener waits for room in the queue and
        # cannot receive() the disconnect (it would take body bytes the app may still read); the
        # server learns of it when a write fails and, if it is deploykit's, says so here.
        if getattr(self.cycle, "disconnected", False) is True:
            self.disconnected = True

    # -- thread side --------------------------------------------------------------
    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run CORO on the loop and wait for it, giving up when the request is abandoned."""
        if self.abandoned:
            coro.close()
            raise Abandoned
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed: the server has gone
            coro.close()
            raise Abandoned from None
        while True:
            try:
                return future.result(_POLL)
            except TimeoutError:
                if self.abandoned:
                    future.cancel()
                    raise Abandoned from None
            except concurrent.futures.CancelledError:
                raise Abandoned from None

    def serve(self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> None:
        result: Any = None
        try:
            result = app(environ, self.start_response)
            if type(result) is FileWrapper:  # our own wrapper, not one a middleware wrapped: read it here
                blocks: Iterable[bytes] = self._file_blocks(result, environ)
            elif isinstance(result, list | tuple) and len(result) == 1 and not self.head_sent:
                self._respond_whole(bytes(result[0]))  # one block: one crossing, with a Content-Length
                return
            else:
                blocks = result
            for block in blocks:
                if block:
                    self.write(block)  # raises Abandoned when the client has left
                if self.disconnected:
                    return  # the client left: stop producing (close() below)
                if self.declared is not None and self.written >= self.declared:
                    break  # all the app declared is sent: the rest would not be
            if not self.disconnected:
                self._finish()
        except Abandoned:
            return
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:  # too late to change the response: PEP 3333 says re-raise
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status:
            raise AssertionError("start_response called a second time without exc_info")
        self.status, self.headers = _status(status), _headers(headers)
        self.declared = None
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():  # a bad one fails the head in the server
                self.declared = int(value)
        return self.write

    def write(self, data: bytes) -> None:
        """A block of the body (also the legacy write() callable start_response returns)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"a WSGI app must produce bytes, not {type(data).__name__}")
        if self.disconnected:
            raise Abandoned  # the client left (the app's own write() calls learn it here)
        if self.declared is not None:
            data = data[: max(0, self.declared - self.written)]
            if not data and self.head_sent:
                return
        self.written += len(data)
        messages = self._head() if not self.head_sent else []
        messages.append({"type": "http.response.body", "body": bytes(data), "more_body": True})
        self.call(self._send_all(messages))

    def _file_blocks(self, wrapper: FileWrapper, environ: dict[str, Any]) -> Iterator[bytes]:
        """What a wsgi.file_wrapper response sends: nothing to a HEAD request or with a status
        that has no body (the file is not read), else at most the declared Content-Length."""
        if environ["REQUEST_METHOD"] == "HEAD" or self.status[:3] in ("204", "304"):
            return iter(())
        return wrapper.blocks(FILE_BLOCK, self.declared)

    def _head(self) -> list[Message]:
        if not self.status:
            raise AssertionError("the WSGI app sent a body before calling start_response")
        self.head_sent = True
        return [{"type": "http.response.start", "status": int(self.status[:3]), "headers": self.headers}]

    def _finish(self) -> None:
        # The end of the response goes back with the thread (no crossing to wait for).
        self.final = self._head() if not self.head_sent else []
        self.final.append({"type": "http.response.body", "body": b"", "more_body": False})

    def _respond_whole(self, data: bytes) -> None:
        if self.declared is not None:
            data = data[: self.declared]
        self.final = self._head()
        if not any(name == b"content-length" for name, _ in self.headers):
            self.final[0]["headers"] = [*self.headers, (b"content-length", b"%d" % len(data))]
        self.final.append({"type": "http.response.body", "body": data, "more_body": False})


def _status(status: str) -> str:
    if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
        raise ValueError(f"WSGI status {status!r}: expected a string like '200 OK'")
    return status


def _headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    out = []
    for pair in headers:
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"WSGI response header {pair!r}: name and value must be str")
        out.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return out


class Input:
    """``wsgi.input``: the request body as it arrives, read in the app's thread.

    Loop side: ``put`` (waits while QUEUED_CHUNKS are unread) and ``end``.
    Thread side: ``read``, ``readline``, ``readlines`` and iteration, from a small
    buffer refilled one chunk at a time from the queue."""

    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange
        self.chunks: collections.deque[bytes] = collections.deque()
        self.ended = False  # loop side: no more chunks will be queued
        self.getter: asyncio.Future[None] | None = None
        self.putter: asyncio.Future[None] | None = None
        self.buffer = b""
        self.eof = False  # thread side: the queue is empty and ended

    # -- loop side --------------------------------------------------------------------
    def initial(self, message: Message) -> None:
        if message["type"] == "http.disconnect":
            self.exchange.disconnected = True
            self.ended = True
            return
        if message.get("body"):
            self.chunks.append(message["body"])
        self.ended = not message.get("more_body", False)

    async def put(self, data: bytes, *, more: bool) -> None:
        while len(self.chunks) >= QUEUED_CHUNKS:
            self.putter = self.exchange.loop.create_future()
            await self.putter
        if data:
            self.chunks.append(data)
        if not more:
            self.ended = True
        wake(self.getter)

    def end(self) -> None:
        self.ended = True
        wake(self.getter)

    async def _get(self) -> bytes | None:
        while not self.chunks:
            if self.ended:
                return None
            self.getter = self.exchange.loop.create_future()
            await self.getter
        chunk = self.chunks.popleft()
        wake(self.putter)
        return chunk

    # -- thread side ------------------------------------------------------------------
    def _fill(self) -> bool:
        """One more chunk into the buffer; False at the end of the body."""
        if self.eof:
            return False
        chunk = self.chunks.popleft() if self.ended and self.chunks else self.exchange.call(self._get())
        if chunk is None:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            data, self.buffer = self.buffer, b""
            return data
        while len(self.buffer) < size and self._fill():
            pass
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else sys.maxsize
        while True:
            end = self.buffer.find(b"\n", 0, limit)
            if end >= 0:
                end += 1
                break
            if len(self.buffer) >= limit or not self._fill():
                end = min(len(self.buffer), limit)
                break
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Input:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333): a file-like's content as an iterable of blocks.
    Returned by the app as it is, the adapter reads it in FILE_BLOCK pieces and at most the
    response's Content-Length (``_Exchange.serve``); a middleware that wraps it sees an ordinary
    iterable of BLOCK_SIZE reads. ``close()`` closes the file-like (when it has a close)."""

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        if not callable(getattr(filelike, "read", None)):
            raise TypeError(f"wsgi.file_wrapper: {type(filelike).__name__} has no read()")
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        return self.blocks(self.block_size, None)

    def blocks(self, size: int, limit: int | None) -> Iterator[bytes]:
        """Reads of at most SIZE bytes until the end of the file or LIMIT bytes in all. read1 where the
        file has it: a pipe's or a socket's data is sent as it comes, not once SIZE bytes are there."""
        read = getattr(self.filelike, "read1", None) or self.filelike.read
        left = limit
        while left is None or left > 0:
            data = read(size if left is None else min(size, left))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def build_environ(scope: Message, body: Any, *, multiprocess: bool = False) -> dict[str, Any]:
    """The PEP 3333 environ for an ASGI HTTP SCOPE (as deploykit's server builds it:
    ``path`` is below ``root_path``, ``client`` and ``scheme`` are already resolved
    through the trusted proxy headers)."""
    root_path = scope.get("root_path", "")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        # PEP 3333 "native strings": the bytes, decoded as latin-1 (the app re-encodes them).
        "SCRIPT_NAME": root_path.encode("utf-8").decode("latin-1"),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": _HTTP_11.get(scope.get("http_version", "1.1"), "HTTP/1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        # The body ends where wsgi.input says (a chunked request has no CONTENT_LENGTH):
        # the mod_wsgi/Gunicorn extension that Werkzeug and Django read.
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }
    host = None
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = value
        elif "_" in name:
            # X_Forwarded_For would land in the same HTTP_X_FORWARDED_FOR as X-Forwarded-For;
            # dropped, as nginx and Gunicorn drop them, so a client cannot pose as the proxy.
            continue
        else:
            if name == "host":
                host = value
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                environ[key] = value
    environ["SERVER_NAME"], environ["SERVER_PORT"] = _server(scope, host)
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    return environ


def _server(scope: Message, host: str | None) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT: the bound address, or (a unix socket) the Host header."""
    default_port = "443" if scope.get("scheme") == "https" else "80"
    server = scope.get("server")
    if server and server[1] is not None:
        return str(server[0]), str(server[1])
    if host:
        name, sep, port = host.rpartition(":")
        if sep and port.isdigit() and not name.endswith(":"):  # host:port, [v6]:port; not a bare v6
            return name, port
        return host, default_port
    return "localhost", default_port
