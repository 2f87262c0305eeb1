"""--limit-concurrency N admits N requests in flight; the next concurrent one gets an immediate 503."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from tests.polling import wait_for
from tests.server.harness import Serve, assert_one_server_and_date, request


def test_limit_concurrency_admits_n_in_flight_and_503s_the_next(serve: Serve, tmp_path: Path) -> None:
    server = serve("--limit-concurrency", "2")
    inside = [tmp_path / "first", tmp_path / "second"]
    with server.connect() as first, server.connect() as second:
        first.send(request(f"/slow?t=2.5&entered={quote(str(inside[0]))}"))
        second.send(request(f"/slow?t=2.5&entered={quote(str(inside[1]))}"))
        wait_for(lambda: all(path.exists() for path in inside), 5.0, "both slow requests to be inside the app")
        with server.connect() as third:
            started = time.monotonic()
            third.send(request("/hello"))
            rejected = third.read_response(timeout=1.0)
            elapsed = time.monotonic() - started
        assert rejected.status == 503, rejected.head
        assert elapsed < 0.8, f"the 503 took {elapsed:.2f}s: it must not wait for a slot"
        assert_one_server_and_date(rejected)
        for conn in (first, second):
            response = conn.read_response(timeout=5.0)
            assert response.status == 200, f"a request within the limit was refused: {response.head!r}"
            assert response.body == b"slow done"
    # Slots are released once the slow requests finish.
    assert server.exchange(request("/hello")).status == 200
