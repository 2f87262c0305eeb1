"""Start `deploykit serve` as a real subprocess and talk to it with exact bytes.

Nothing here uses an HTTP client library: requests are literal bytes, responses
are parsed by hand so a test sees duplicate headers, stray bytes after a body,
and whether the server closed the connection (recv() returning b"").

Set SERVE_TEST_TARGET=uvicorn to run the same suite against uvicorn (flags it
lacks are dropped); that validates the harness, and many strictness tests are
expected to fail there. SERVE_TEST_TARGET=gunicorn runs it under Gunicorn with
deploykit's worker classes (2 workers; the flags go in $DEPLOYKIT_SERVE_ARGS).
SERVE_TEST_TARGET=deploykit-workers runs deploykit
with ``--workers 4`` (the supervisor and forked workers) — except where the
flags include ``--limit-concurrency``, a per-process limit, which runs one worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

from tests.conftest import free_port
from tests.polling import SERVER_START_TIMEOUT, wait_for

ROOT = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("SERVE_TEST_TARGET", "deploykit")
START_TIMEOUT = SERVER_START_TIMEOUT
STOP_TIMEOUT = 10.0

# deploykit flags uvicorn does not have: dropped when SERVE_TEST_TARGET=uvicorn (value-taking ones with their value).
_UVICORN_MISSING = {
    "--max-header-size": 1,
    "--max-request-line": 1,
    "--timeout-header-read": 1,
    "--access-log-format": 1,
}


def _translate_for_uvicorn(flags: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = 0
    for flag in flags:
        if skip:
            skip -= 1
            continue
        if flag in _UVICORN_MISSING:
            skip = _UVICORN_MISSING[flag]
            continue
        out.append(flag)
    return out


def server_argv(app: str, http: str, flags: Sequence[str], port: int | None, uds: str | None) -> list[str]:
    bind = ["--uds", uds] if uds is not None else ["--host", "127.0.0.1", "--port", str(port)]
    if TARGET == "uvicorn":
        return [sys.executable, "-m", "uvicorn", f"tests.server.apps:{app}", *bind, "--http", http] + (
            _translate_for_uvicorn(flags)
        )
    argv = [sys.executable, "-m", "deploykit", "serve", f"tests.server.apps:{app}", *bind, "--http", http, *flags]
    if TARGET == "gunicorn":
        worker = "H11Worker" if http == "h11" else "Worker"
        where = f"unix:{uds}" if uds is not None else f"127.0.0.1:{port}"
        workers = "1" if "--limit-concurrency" in flags else "2"  # the limit is per process
        # --limit-request-line 8190: Gunicorn's own default is 4094; use deploykit's so the same limits apply.
        return [sys.executable, "-m", "gunicorn", "-k", f"deploykit.server.workers.{worker}", "-w", workers, "-b",
                where, "--no-control-socket", "--access-logfile", "-", "--limit-request-line", "8190",
                f"tests.server.apps:{app}"]  # fmt: skip
    if TARGET == "deploykit-workers" and "--limit-concurrency" not in flags:
        argv += ["--workers", "4"]
    return argv


# --------------------------------------------------------------------------- responses


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]  # names lower-cased, in wire order, duplicates kept
    body: bytes
    head: bytes  # the raw status line + header section, including the final CRLFCRLF

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    def header(self, name: str) -> str | None:
        """The single value of `name` (None when absent); fails on duplicates."""
        found = self.values(name)
        assert len(found) <= 1, f"header {name!r} appears {len(found)} times: {self.head!r}"
        return found[0] if found else None


_STATUS_LINE = re.compile(rb"^HTTP/(1\.[01]) (\d{3})(?: (.*))?$")


def _decode_chunked(data: bytes, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at `start`; None when incomplete, AssertionError when malformed."""
    body = bytearray()
    pos = start
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = data[pos:line_end].split(b";", 1)[0].strip()
        assert re.fullmatch(rb"[0-9a-fA-F]+", size_text), f"bad chunk size line {data[pos:line_end]!r}"
        size = int(size_text, 16)
        pos = line_end + 2
        if size == 0:
            # Trailers (none expected) end with an empty line.
            trailer_end = data.find(b"\r\n", pos)
            while trailer_end >= 0 and trailer_end != pos:
                pos = trailer_end + 2
                trailer_end = data.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 2
        if len(data) < pos + size + 2:
            return None
        body += data[pos : pos + size]
        assert data[pos + size : pos + size + 2] == b"\r\n", f"chunk not followed by CRLF: {data[pos:]!r}"
        pos += size + 2


def parse_response(data: bytes, *, head_request: bool = False, eof: bool = False) -> tuple[Response, int] | None:
    """Parse one response at the start of `data`: (response, bytes consumed), or None when more bytes are needed.

    A body with neither Content-Length nor chunked framing is close-delimited: complete only at `eof`.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[: end + 4]
    lines = data[:end].split(b"\r\n")
    match = _STATUS_LINE.match(lines[0])
    assert match, f"not an HTTP/1.x status line: {lines[0]!r} (full data {data[:300]!r})"
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        assert b":" in line, f"header line without a colon: {line!r}"
        name, value = line.split(b":", 1)
        assert name == name.strip() and name, f"malformed header name {name!r}"
        headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    status = int(match.group(2))
    response = Response(
        version=match.group(1).decode(),
        status=status,
        reason=(match.group(3) or b"").decode("latin-1"),
        headers=headers,
        body=b"",
        head=head,
    )
    start = end + 4
    if head_request or 100 <= status < 200 or status in (204, 304):
        return response, start
    codings = [value.strip().lower() for key, v in headers if key == "transfer-encoding" for value in v.split(",")]
    if codings and codings[-1] == "chunked":
        decoded = _decode_chunked(data, start)
        if decoded is None:
            return None
        response.body, consumed = decoded
        return response, consumed
    lengths = response.values("content-length")
    if lengths:
        length = int(lengths[0])
        if len(data) < start + length:
            return None
        response.body = data[start : start + length]
        return response, start + length
    if not eof:
        return None
    response.body = data[start:]
    return response, len(data)


IMF_FIXDATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")


def assert_one_server_and_date(response: Response) -> None:
    assert len(response.values("server")) == 1, f"expected exactly one server header: {response.head!r}"
    dates = response.values("date")
    assert len(dates) == 1, f"expected exactly one date header: {response.head!r}"
    assert IMF_FIXDATE.fullmatch(dates[0]), f"date is not an IMF-fixdate: {dates[0]!r}"
    assert abs(parsedate_to_datetime(dates[0]).timestamp() - time.time()) < 5


def status_lines(data: bytes) -> list[bytes]:
    """Every `HTTP/1.x NNN` status line anywhere in `data` (the test apps never put one in a body)."""
    return re.findall(rb"HTTP/1\.[01] \d{3}[^\r\n]*", data)


# --------------------------------------------------------------------------- connections


class RawConn:
    """A client socket with a receive buffer. EOF (recv() == b"") and RST both count as closed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def __enter__(self) -> RawConn:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        """Send, tolerating a server that already closed (EPIPE/RST): returns False then."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def _fill(self, deadline: float) -> bool:
        """One recv() bounded by `deadline`: False on timeout; True when data arrived or the peer closed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            self.eof = self.reset = True
            return True
        if not chunk:
            self.eof = True
        self.buf += chunk
        return True

    def read_response(self, timeout: float = 3.0, *, head_request: bool = False) -> Response:
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_response(bytes(self.buf), head_request=head_request, eof=self.eof)
            if parsed is not None:
                response, consumed = parsed
                del self.buf[:consumed]
                return response
            if self.eof:
                raise AssertionError(f"connection closed before a complete response; received {bytes(self.buf)!r}")
            if not self._fill(deadline):
                raise AssertionError(f"no complete response within {timeout}s; received {bytes(self.buf)!r}")

    def closed_within(self, timeout: float) -> bool:
        """Wait up to `timeout` for the server to close; bytes that arrive meanwhile are kept in `buf`."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline):
                return False
        return True

    def wait_closed(self, timeout: float = 3.0) -> float:
        """Assert the server closes within `timeout`; returns the seconds it took."""
        started = time.monotonic()
        assert self.closed_within(timeout), f"connection still open after {timeout}s; received {bytes(self.buf)!r}"
        return time.monotonic() - started

    def read_until_closed(self, timeout: float = 3.0) -> bytes:
        """All bytes (including already buffered ones) up to the server's close; fails if it stays open."""
        self.wait_closed(timeout)
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def read_quiet(self, quiet: float) -> bytes:
        """Whatever arrives within `quiet` seconds (stops early at EOF); leaves the connection as is."""
        self.closed_within(quiet)
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def read_responses_until_closed(self, timeout: float = 3.0, head_requests: Sequence[bool] = ()) -> list[Response]:
        """Every complete response before the close; leftover bytes fail the test."""
        data = self.read_until_closed(timeout)
        responses: list[Response] = []
        while data:
            head_request = len(responses) < len(head_requests) and head_requests[len(responses)]
            parsed = parse_response(data, head_request=head_request, eof=True)
            assert parsed is not None, f"incomplete response before close: {data!r}"
            response, consumed = parsed
            responses.append(response)
            data = data[consumed:]
        return responses


def request(
    target: str,
    method: str = "GET",
    headers: Sequence[str] = ("Host: test",),
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """Literal request bytes; Content-Length is added for a body unless a framing header is given."""
    lines = [f"{method} {target} {version}", *headers]
    framed = any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in headers)
    if body and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    argv: list[str]
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    stdout_path: Path
    port: int | None = None
    uds: str | None = None
    _ready: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.stderr_path.read_bytes().decode("utf-8", "replace")

    def stderr_bytes(self) -> bytes:
        return self.stderr_path.read_bytes()

    def _raw_socket(self, timeout: float) -> socket.socket:
        if self.uds is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(self.uds)
            except OSError:
                sock.close()
                raise
            return sock
        assert self.port is not None
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Server:
        if self._ready:
            return self

        def accepting() -> bool:
            code = self.proc.poll()
            if code is not None:
                raise AssertionError(
                    f"server exited with {code} before accepting connections: {self.argv}\n{self.stderr()}"
                )
            try:
                self._raw_socket(0.5).close()
            except OSError:
                return False
            return self.stderr().count("deploykit serve: listening on") >= self._workers()

        try:
            wait_for(accepting, timeout, lambda: f"the server to accept connections: {self.argv}\n{self.stderr()}")
        except AssertionError:
            self.stop()
            raise
        self._ready = True
        return self

    def _workers(self) -> int:
        """Workers to wait for, each logging its own "listening on" line. The socket accepts as soon as
        the supervisor (or Gunicorn's arbiter) binds, before any worker has imported the app: a first
        request then waits in the backlog and, under load, past its read deadline (make test-stress
        saw 3 s go by). And a TERM that reaches a worker Gunicorn is still forking can be lost
        (Gunicorn's race), so tests signal only a settled arbiter."""
        for flag in ("-w", "--workers"):  # a test may start `deploykit serve` itself, with neither
            if flag in self.argv:
                return int(self.argv[self.argv.index(flag) + 1])
        return 0

    def connect(self, timeout: float = 3.0) -> RawConn:
        self.wait_ready()
        return RawConn(self._raw_socket(timeout))

    def exchange(self, data: bytes, timeout: float = 3.0, *, head_request: bool = False) -> Response:
        """One request on a fresh connection; returns the first response."""
        with self.connect() as conn:
            conn.send(data)
            return conn.read_response(timeout, head_request=head_request)

    def wait_for_stderr(self, needle: str, timeout: float = 5.0) -> str:
        """Poll stderr until a complete line (one that ends in a line break) holds `needle`;
        returns the stderr text up to the last complete line, so no caller sees a half-written one."""

        def complete() -> str | None:
            text = self.stderr()
            text = text[: text.rfind("\n") + 1]
            return text if needle in text else None

        return wait_for(complete, timeout, lambda: f"a line with {needle!r} in the server's stderr:\n{self.stderr()}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def launch(app: str, http: str, flags: Sequence[str], log_dir: Path, uds: str | None = None) -> Server:
    """Start a server process without waiting for it (call `wait_ready()` or `connect()`)."""
    port = None if uds is not None else free_port()
    argv = server_argv(app, http, flags, port, uds)
    stem = f"{app}-{http}-{port or 'uds'}-{time.monotonic_ns()}"
    stderr_path, stdout_path = log_dir / f"{stem}.stderr", log_dir / f"{stem}.stdout"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEPLOYKIT_")}
    env["PYTHONUNBUFFERED"] = "1"
    if TARGET == "gunicorn":  # every deploykit flag reaches the worker class through the environment
        env["DEPLOYKIT_SERVE_ARGS"] = shlex.join(flags)
    with stderr_path.open("wb") as err, stdout_path.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    return Server(argv=argv, proc=proc, stderr_path=stderr_path, stdout_path=stdout_path, port=port, uds=uds)


@dataclass(frozen=True)
class Spec:
    flags: tuple[str, ...] = ()
    app: str = "router"
    uds: bool = False


class Pool:
    """Servers shared by the tests of one module and one parser, keyed by (app, flags, uds)."""

    def __init__(self, http: str, log_dir: Path, sock_dir: Path) -> None:
        self.http = http
        self.log_dir = log_dir
        self.sock_dir = sock_dir
        self.servers: dict[Spec, Server] = {}

    def _start(self, spec: Spec) -> Server:
        if spec not in self.servers:
            uds = None
            if spec.uds:
                uds = str(self.sock_dir / f"s{len(self.servers)}-{self.http}.sock")
            self.servers[spec] = launch(spec.app, self.http, spec.flags, self.log_dir, uds)
        return self.servers[spec]

    def warm(self, specs: Sequence[Spec]) -> None:
        """Start several servers in parallel; the first `get` of each waits for it."""
        for spec in specs:
            self._start(spec)

    def get(self, spec: Spec) -> Server:
        server = self._start(spec)
        if server.proc.poll() is not None:
            # A test killed it (or it crashed): start a fresh one rather than fail every later test.
            del self.servers[spec]
            server = self._start(spec)
        return server.wait_ready()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


class Serve(Protocol):
    """The `serve` fixture: a running server shared by the module's tests for this parser."""

    def __call__(self, *flags: str, app: str = "router", uds: bool = False) -> Server: ...


class OwnServer(Protocol):
    """The `own_server` fixture: a context manager for a server only one test uses."""

    def __call__(
        self, *flags: str, app: str = "router", uds: str | None = None
    ) -> contextlib.AbstractContextManager[Server]: ...


@contextlib.contextmanager
def fresh_server(app: str, http: str, flags: Sequence[str], log_dir: Path, uds: str | None = None) -> Iterator[Server]:
    """A server owned by one test (for tests that signal or kill it)."""
    server = launch(app, http, flags, log_dir, uds)
    try:
        yield server
    finally:
        server.stop()
