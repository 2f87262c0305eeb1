"""Fixtures for the WebSocket suite: real `deploykit serve` processes, once per engine."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.server.harness import ROOT, Server, free_port

ENGINES = ["websockets", "wsproto"]


def start(
    log_dir: Path, *flags: str, app: str = "tests.server_ws.apps:router", argv: list[str] | None = None
) -> Server:
    port = free_port()
    if argv is None:
        argv = [sys.executable, "-m", "deploykit", "serve", app, "--host", "127.0.0.1", "--port", str(port), *flags]
    else:
        argv = [part.replace("PORT", str(port)) for part in argv]
    stem = f"ws-{port}-{time.monotonic_ns()}"
    stderr_path, stdout_path = log_dir / f"{stem}.stderr", log_dir / f"{stem}.stdout"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEPLOYKIT_")}
    env["PYTHONUNBUFFERED"] = "1"
    with stderr_path.open("wb") as err, stdout_path.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    return Server(argv=argv, proc=proc, stderr_path=stderr_path, stdout_path=stdout_path, port=port).wait_ready()


class OwnFactory(Protocol):
    def __call__(self, *flags: str) -> Server: ...


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws-logs")


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def shared(engine: str, log_dir: Path) -> Iterator[Server]:
    """One server per module and engine: default flags, plus --root-path /mnt."""
    server = start(log_dir, "--ws", engine, "--root-path", "/mnt", "--forwarded-allow-ips", "127.0.0.1")
    yield server
    server.stop()


@pytest.fixture
def own(engine: str, log_dir: Path) -> Iterator[OwnFactory]:
    servers: list[Server] = []

    def make(*flags: str) -> Server:
        server = start(log_dir, "--ws", engine, *flags)
        servers.append(server)
        return server

    yield make
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()
