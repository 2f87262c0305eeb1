"""The access log on stderr: one line per request with client, request line, status, bytes and
latency; control characters from the request never written raw; a JSON format; --no-access-log."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from tests.server.harness import Pool, Serve, Server, Spec, request

JSON_FORMAT = ("--access-log-format", "json")
NO_LOG = ("--no-access-log",)


@pytest.fixture(scope="module", autouse=True)
def _warm(pool: Pool) -> None:
    pool.warm([Spec(), Spec(JSON_FORMAT), Spec(NO_LOG)])


def marker() -> str:
    return f"m{uuid.uuid4().hex}"


def log_lines(server: Server, needle: str, timeout: float = 5.0) -> list[str]:
    text = server.wait_for_stderr(needle, timeout)
    return [line for line in text.splitlines() if needle in line]


def test_access_log_has_one_line_per_request_with_client_request_status_bytes_and_ms(server: Server) -> None:
    markers = [marker() for _ in range(3)]
    with server.connect() as conn:
        for mark in markers:
            conn.send(request(f"/hello/{mark}"))
            assert conn.read_response().status == 200
    for mark in markers:
        lines = log_lines(server, mark)
        assert len(lines) == 1, f"expected one access-log line for {mark}: {lines}"
        line = lines[0]
        assert "127.0.0.1" in line, line
        assert f"GET /hello/{mark} HTTP/1.1" in line, line
        assert re.search(r"(?<!\d)200(?!\d)", line), line
        assert re.search(r"(?<!\d)13(?!\d)", line), f"no body byte count (13) in {line!r}"
        assert re.search(r"\d+(?:\.\d+)?\s?ms\b", line), f"no latency in ms in {line!r}"


def test_access_log_never_writes_control_characters_raw(server: Server) -> None:
    mark = marker()
    # ESC (a terminal colour sequence), BEL, and CR LF (which would forge a second log line).
    response = server.exchange(request(f"/hello/{mark}%1b[31mred%07%0d%0aFORGED{mark}"))
    assert response.status == 200
    server.wait_for_stderr(mark)
    logged = [line for line in server.stderr_bytes().split(b"\n") if mark.encode() in line]
    assert len(logged) == 1, f"the request's log line was split by a raw CR/LF: {logged}"
    assert logged[0].count(mark.encode()) == 2, logged
    for byte in (b"\x1b", b"\x07", b"\r"):
        assert byte not in logged[0], f"raw control byte {byte!r} in access log: {logged[0]!r}"


def test_json_access_log_is_one_object_per_line(serve: Serve) -> None:
    server = serve(*JSON_FORMAT)
    mark = marker()
    assert server.exchange(request(f"/hello/{mark}")).status == 200
    lines = log_lines(server, mark)
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert isinstance(entry, dict), lines[0]
    assert {"client", "method", "path", "status", "bytes", "duration_ms"} <= entry.keys(), entry
    assert "127.0.0.1" in str(entry["client"])
    assert entry["method"] == "GET"
    assert entry["path"].startswith(f"/hello/{mark}")
    assert entry["status"] == 200
    assert entry["bytes"] == 13
    assert isinstance(entry["duration_ms"], int | float) and entry["duration_ms"] >= 0


def test_no_access_log_flag_disables_the_access_log(serve: Serve) -> None:
    server = serve(*NO_LOG)
    mark = marker()
    assert server.exchange(request(f"/hello/{mark}")).status == 200
    time.sleep(0.3)
    assert mark not in server.stderr()
