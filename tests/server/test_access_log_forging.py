"""Hostile request-targets cannot forge or break access-log lines, on any path a line is written from.

Every exchange — an HTTP response, a WebSocket accepted or refused, a request the parser
rejected, a request head that timed out — must give exactly one well-formed line in each
--access-log-format (text, json, a template): control characters, quotes, %0a/%0d/%1b,
invalid UTF-8 and a 200 KB target included. A plain request sent afterwards is the
sentinel: everything logged between the hostile request and the sentinel must be one line.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

import pytest

from tests.polling import wait_for
from tests.server.harness import Pool, RawConn, Server, Spec, request
from tests.server_ws.raw import frame, upgrade_request

TEMPLATE = '[{time}] {client} "{method} {path} HTTP/{http_version}" {status} {bytes} {duration_ms}'
FORMATS = {"text": "text", "json": "json", "template": TEMPLATE}
LIMITS = (
    "--max-request-line", "300000", "--max-header-size", "400000", "--h11-max-incomplete-event-size", "1048576",
)  # fmt: skip
#: The request-head deadline: generous, or a starved loop (make test-stress) closes a connection whose bytes it
#: has not read yet; the timeout test's own servers use a short one.
HEAD_DEADLINE = "30"
SHORT_HEAD_DEADLINE = "1"

# Request-targets (after a per-case prefix): the reproduced forgery, CR/LF/ESC/NUL/DEL and
# quotes percent-encoded, invalid UTF-8 percent-encoded, a raw quote and backslash, and 200 KB.
HOSTILE = {
    "forged-line": "%0a1.2.3.4%20-%20%22GET%20/admin%22%20200",
    "crlf": "%0d%0aFORGED%0d%0a",
    "escape": "%1b[31mred%1b[0m%07%00%7f",
    "quotes": '%22%27"\\x',
    "bad-utf8": "%ff%fe%c3%28%ed%a0%80",
    "unicode-breaks": "%e2%80%a8%e2%80%a9%c2%85",
    "200KB": "%0a%22%1bx" * 20_000,
}
# Raw bytes in the target: the parser rejects these, and the rejection is logged.
RAW_REJECTED = {
    "raw-escape": b"/r\x1b[31m",
    "raw-invalid-utf8": b"/r\xff\xfe\xc3\x28",
    "raw-nul": b"/r\x00x",
    "raw-del": b"/r\x7fx",
    "raw-c1-and-2028": "/r\x85\u2028".encode(),
}

_TEXT = re.compile(
    r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO (?P<client>\S+) - "(?P<request>[^"]*)" '
    r"(?P<status>\d{3}) (?P<bytes>\d+) (?P<ms>-|\d+\.\d\dms)"
)
_TEMPLATE = re.compile(
    r'\[(?P<time>\S+)\] (?P<client>\S+) "(?P<method>\S+) (?P<path>\S+) HTTP/(?P<version>\S+)" '
    r"(?P<status>\d{3}) (?P<bytes>\d+) (?P<ms>\S+)"
)


@pytest.fixture(scope="module", autouse=True)
def _warm(pool: Pool) -> None:
    pool.warm([spec(fmt, deadline) for fmt in FORMATS.values() for deadline in (HEAD_DEADLINE, SHORT_HEAD_DEADLINE)])


def started(serve: Callable[..., Server], fmt: str, head_deadline: str = HEAD_DEADLINE) -> Server:
    server: Server = serve(*spec(FORMATS[fmt], head_deadline).flags, app="access_log")
    server.wait_for_stderr("listening on")  # its line is written just after the socket accepts
    return server


def spec(fmt: str, head_deadline: str = HEAD_DEADLINE) -> Spec:
    return Spec(("--access-log-format", fmt, *LIMITS, "--timeout-header-read", head_deadline), app="access_log")


def check_line(fmt: str, line: bytes) -> int:
    """Assert LINE is one well-formed record of FMT; returns its status."""
    assert re.fullmatch(rb"[\x20-\x7e]+", line), f"non-printable or non-ASCII byte in a log line: {line[:300]!r}"
    text = line.decode("ascii")
    if fmt == "json":
        record = json.loads(text)
        assert {"client", "method", "path", "status", "bytes", "duration_ms"} <= record.keys(), record
        status: int = record["status"]
        return status
    match = (_TEXT if fmt == "text" else _TEMPLATE).fullmatch(text)
    assert match, f"malformed {fmt} access line: {text[:300]!r}"
    return int(match["status"])


#: The server's own start-up lines: under --workers a worker still starting can log between two requests.
_LIFECYCLE = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO (deploykit serve: |worker \d+ (ready|started))")


def one_line_for(server: Server, fmt: str, exchange: Callable[[], None]) -> tuple[bytes, int]:
    """Run EXCHANGE, then a sentinel request; exactly one well-formed line must be written for EXCHANGE.

    Under --workers or Gunicorn the two requests may be served by different processes, whose lines reach the
    log in either order: the exchange's line is waited for, not assumed to come first. A forged line would
    come in the same write as the record it hides in, so it is there as soon as that record is."""
    start = len(server.stderr_bytes())
    exchange()
    sentinel = f"/sentinel-{uuid.uuid4().hex}".encode()
    assert server.exchange(request(sentinel.decode())).status == 200

    def records() -> list[bytes]:
        new = server.stderr_bytes()[start:]
        complete = new[: new.rfind(b"\n") + 1]
        return [line for line in complete.split(b"\n") if line and not _LIFECYCLE.match(line)]

    wait_for(lambda: len(records()) >= 2, 10, lambda: f"the exchange's and the sentinel's lines: {records()}")
    new = server.stderr_bytes()[start:]
    assert b"\r" not in new, f"raw CR in the log: {new[:500]!r}"
    lines = records()
    (theirs,) = [line for line in lines if sentinel in line]
    check_line(fmt, theirs)
    ours = [line for line in lines if sentinel not in line]
    assert len(ours) == 1, f"expected one line for the request, got {len(ours)}: {[x[:200] for x in ours]}"
    return ours[0], check_line(fmt, ours[0])


def http_exchange(server: Server, target: bytes, expect: int | None = 200) -> Callable[[], None]:
    def run() -> None:
        with server.connect() as conn:
            conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: test\r\n\r\n")
            if expect is None:
                conn.read_until_closed()
            else:
                assert conn.read_response().status == expect

    return run


def ws_exchange(server: Server, path: str, expect: int) -> Callable[[], None]:
    def run() -> None:
        with server.connect() as conn:
            conn.send(upgrade_request(path))
            assert conn.read_response().status == expect
            if expect == 101:  # the app closes at once: answer its close frame
                conn.send(frame(0x8, b"\x03\xe8"))
            conn.read_until_closed()

    return run


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_targets_give_one_line_per_http_request(serve: Callable[..., Server], fmt: str) -> None:
    server = started(serve, fmt)
    for name, suffix in HOSTILE.items():
        line, status = one_line_for(server, fmt, http_exchange(server, f"/h/{name}/{suffix}".encode()))
        assert status == 200, (name, line[:300])
        assert f"/h/{name}/".encode() in line, (name, line[:300])


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_targets_give_one_line_per_websocket_accepted_or_denied(serve: Callable[..., Server], fmt: str) -> None:
    server = started(serve, fmt)
    for name, suffix in HOSTILE.items():
        for kind, status in (("accept", 101), ("deny", 403)):
            path = f"/{kind}/{name}/{suffix}"
            line, logged = one_line_for(server, fmt, ws_exchange(server, path, status))
            assert logged == status, (name, kind, line[:300])
            assert f"/{kind}/{name}/".encode() in line, (name, kind, line[:300])


@pytest.mark.parametrize("fmt", FORMATS)
def test_requests_the_parser_rejects_give_one_line(serve: Callable[..., Server], fmt: str) -> None:
    server = started(serve, fmt)
    for name, target in RAW_REJECTED.items():
        line, status = one_line_for(server, fmt, http_exchange(server, target, expect=None))
        assert 400 <= status < 500, (name, line[:300])
    # A WebSocket handshake refused by the server itself (426: unsupported version), hostile target.
    for name, suffix in HOSTILE.items():
        data = upgrade_request(f"/v/{name}/{suffix}", headers=("Sec-WebSocket-Version: 7",))

        def refused(data: bytes = data) -> None:
            with server.connect() as conn:
                conn.send(data)
                assert conn.read_response().status in (400, 426)

        line, status = one_line_for(server, fmt, refused)
        assert status in (400, 426), (name, line[:300])


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_request_head_that_times_out_gives_one_line(serve: Callable[..., Server], fmt: str) -> None:
    server = started(serve, fmt, SHORT_HEAD_DEADLINE)
    for name in ("forged-line", "200KB"):

        def partial(name: str = name) -> None:
            with server.connect() as conn:
                conn.send(f"GET /t/{HOSTILE[name]} HTTP/1.1\r\nHost: test\r\nX-Pending: a".encode())
                RawConn.wait_closed(conn, 15.0)

        line, status = one_line_for(server, fmt, partial)
        assert status == 408, (name, line[:300])
