"""Fixtures for the `deploykit serve` suite: every test runs once per parser (httptools, h11)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.server.harness import OwnServer, Pool, Serve, Server, Spec, fresh_server

PARSERS = ["httptools", "h11"]


@pytest.fixture(scope="module", params=PARSERS)
def http(request: pytest.FixtureRequest) -> str:
    """The `--http` parser; module-scoped so each module's shared servers are reused across its tests."""
    value: str = request.param
    return value


@pytest.fixture(scope="session")
def sock_dir() -> Iterator[Path]:
    """A short directory for unix sockets (sun_path holds 107 bytes; pytest's tmp paths can be longer)."""
    with tempfile.TemporaryDirectory(prefix="dk-serve-") as name:
        yield Path(name)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-logs")


@pytest.fixture(scope="module")
def pool(http: str, log_dir: Path, sock_dir: Path) -> Iterator[Pool]:
    servers = Pool(http, log_dir, sock_dir)
    yield servers
    servers.close()


@pytest.fixture
def serve(pool: Pool) -> Serve:
    """`serve(*flags, app="router", uds=False)`: a running server shared with this module's tests."""

    def get(*flags: str, app: str = "router", uds: bool = False) -> Server:
        return pool.get(Spec(tuple(flags), app, uds))

    return get


@pytest.fixture
def server(serve: Serve) -> Server:
    """The router with default flags."""
    return serve()


@pytest.fixture
def own_server(http: str, log_dir: Path) -> OwnServer:
    """`with own_server(*flags, app=...) as s`: a server only this test uses (to signal or kill)."""

    def make(*flags: str, app: str = "router", uds: str | None = None) -> AbstractContextManager[Server]:
        return fresh_server(app, http, flags, log_dir, uds)

    return make
