"""Many requests on one keep-alive connection: all answered, and no per-request memory growth."""

from __future__ import annotations

from pathlib import Path

from tests.server.harness import RawConn, Server, request

BATCH = 50


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def run_batches(conn: RawConn, count: int) -> None:
    one = request("/echo?n=1", "POST", body=b"ping")
    for _ in range(count // BATCH):
        conn.send(one * BATCH)
        for _ in range(BATCH):
            response = conn.read_response(timeout=5.0)
            assert response.status == 200, response.head
            assert response.body == b"ping"


def test_2000_keep_alive_requests_on_one_connection_without_memory_growth(server: Server) -> None:
    with server.connect() as conn:
        run_batches(conn, 200)
        before = rss_kib(server.pid)
        run_batches(conn, 1800)
        after = rss_kib(server.pid)
        assert not conn.closed_within(0.05), "connection closed after 2000 requests"
    assert after - before < 2048, f"RSS grew {after - before} KiB over 1800 requests ({before} -> {after} KiB)"
