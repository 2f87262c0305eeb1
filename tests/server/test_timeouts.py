"""The header-read deadline (total, not reset by each byte) and the keep-alive idle timeout."""

from __future__ import annotations

import time

import pytest

from tests.server.harness import Pool, Serve, Spec, request

HEADER_DEADLINE = ("--timeout-header-read", "1", "--timeout-keep-alive", "5")
KEEP_ALIVE = ("--timeout-keep-alive", "1")


@pytest.fixture(scope="module", autouse=True)
def _warm(pool: Pool) -> None:
    pool.warm([Spec(HEADER_DEADLINE), Spec(KEEP_ALIVE)])


def test_header_read_deadline_is_total_not_reset_by_each_trickled_byte(serve: Serve) -> None:
    server = serve(*HEADER_DEADLINE)
    with server.connect() as conn:
        started = time.monotonic()
        conn.send(b"GET /hello HTTP/1.1\r\nHost: a\r\nX-Trickle: ")
        closed = False
        while time.monotonic() - started < 1 + 1.5:
            if not conn.try_send(b"a"):
                closed = True
                break
            if conn.closed_within(0.3):
                closed = True
                break
        elapsed = time.monotonic() - started
    assert closed, f"a client trickling one header byte every 0.3s was still connected after {elapsed:.1f}s"
    assert elapsed > 0.7, f"closed after {elapsed:.2f}s, before the 1s deadline"
    assert b"HTTP/1.1 200" not in conn.buf


def test_keep_alive_idle_connection_closed_after_timeout(serve: Serve) -> None:
    server = serve(*KEEP_ALIVE)
    with server.connect() as conn:
        conn.send(request("/hello"))
        assert conn.read_response().status == 200
        took = conn.wait_closed(timeout=1 + 1.5)
    assert took > 0.6, f"idle connection closed after {took:.2f}s, before the 1s keep-alive timeout"


def test_keep_alive_timer_restarts_after_each_response(serve: Serve) -> None:
    server = serve(*KEEP_ALIVE)
    with server.connect() as conn:
        for _ in range(2):
            conn.send(request("/hello"))
            assert conn.read_response().status == 200
            assert not conn.closed_within(0.6), "closed while well inside the keep-alive timeout"
