"""--limit-concurrency N admits N requests in flight; the next concurrent one gets an immediate 503."""

from __future__ import annotations

import time

from tests.server.harness import Serve, assert_one_server_and_date, request


def test_limit_concurrency_admits_n_in_flight_and_503s_the_next(serve: Serve) -> None:
    server = serve("--limit-concurrency", "2")
    with server.connect() as first, server.connect() as second:
        first.send(request("/slow?t=1.5"))
        second.send(request("/slow?t=1.5"))
        time.sleep(0.3)  # both are now inside the app
        with server.connect() as third:
            started = time.monotonic()
            third.send(request("/hello"))
            rejected = third.read_response(timeout=1.0)
            elapsed = time.monotonic() - started
        assert rejected.status == 503, rejected.head
        assert elapsed < 0.8, f"the 503 took {elapsed:.2f}s: it must not wait for a slot"
        assert_one_server_and_date(rejected)
        for conn in (first, second):
            response = conn.read_response(timeout=3.0)
            assert response.status == 200, f"a request within the limit was refused: {response.head!r}"
            assert response.body == b"slow done"
    # Slots are released once the slow requests finish.
    assert server.exchange(request("/hello")).status == 200
