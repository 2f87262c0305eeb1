"""Lifespan: startup state reaches every request scope; a failed startup stops the process; --lifespan off."""

from __future__ import annotations

import subprocess

from tests.server.harness import OwnServer, Serve, request


def test_lifespan_startup_state_is_passed_to_each_request(serve: Serve) -> None:
    server = serve(app="lifespan_state")
    for _ in range(2):
        response = server.exchange(request("/"))
        assert response.status == 200
        assert response.body == b"set-in-startup"


def test_router_lifespan_state_reaches_requests(serve: Serve) -> None:
    assert serve().exchange(request("/state")).body == b"set-in-startup"


def test_lifespan_startup_failure_exits_nonzero_with_the_message(own_server: OwnServer) -> None:
    with own_server(app="lifespan_fail") as server:
        try:
            code = server.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 10s after a failed startup:\n{server.stderr()}") from None
        assert code != 0
        assert "db down" in server.stderr()


def test_lifespan_off_skips_startup(serve: Serve) -> None:
    response = serve("--lifespan", "off", app="lifespan_fail").exchange(request("/"))
    assert response.status == 200
    assert response.body == b"up"
