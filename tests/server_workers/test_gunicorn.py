"""deploykit's Gunicorn worker classes under a real Gunicorn arbiter."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gunicorn.config import Config

from deploykit.render import Kind, render
from deploykit.server.workers import options_from
from tests.conftest import free_port, settings_for
from tests.polling import wait_for
from tests.server_workers.support import Load, alive, answers, children, get, kill_tree

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.server_workers.apps:app"


class Arbiter:
    def __init__(self, tmp: Path, *args: str) -> None:
        self.log_path = tmp / f"gunicorn-{time.monotonic_ns()}.log"
        env = {**os.environ, "HOME": str(tmp)}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *args], cwd=ROOT, stdout=log, stderr=log,
                                         env=env)  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text()

    def workers(self) -> set[int]:
        return {pid for pid in children(self.proc.pid) if alive(pid)}


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Callable[..., Arbiter]]:
    started: list[Arbiter] = []

    def start(*args: str) -> Arbiter:
        arbiter = Arbiter(tmp_path, "--no-control-socket", *args)
        started.append(arbiter)
        return arbiter

    yield start
    for arbiter in started:
        kill_tree(arbiter.proc)


def started(arbiter: Arbiter, port: int, count: int) -> set[int]:
    wait_for(lambda: len(arbiter.workers()) == count and arbiter.log().count("listening on") >= count, 15, "workers")
    wait_for(lambda: answers(port), 10, "an answer")
    return arbiter.workers()


@pytest.mark.parametrize("worker", ["Worker", "H11Worker"])
def test_gunicorn_runs_the_worker_class_and_hup_loses_nothing(gunicorn: Callable[..., Arbiter], worker: str) -> None:
    port = free_port()
    arbiter = gunicorn("-k", f"deploykit.server.workers.{worker}", "-w", "2", "-b", f"127.0.0.1:{port}", APP)
    old = started(arbiter, port, 2)
    assert {get(port)[1] for _ in range(30)} <= {str(p) for p in old}
    load = Load(port)
    wait_for(lambda: load.ok >= 50, 15, "the load to reach the old workers")
    arbiter.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: not (arbiter.workers() & old) and len(arbiter.workers()) == 2, 20, "new workers after HUP")
    served = load.ok
    wait_for(lambda: load.ok >= served + 50, 15, "the load to reach the new workers")
    load.finish()
    assert load.failures == []
    wait_for(lambda: arbiter.log().count("listening on") >= 4, 15, "the new workers to listen")  # see harness._workers
    arbiter.proc.send_signal(signal.SIGTERM)
    assert arbiter.proc.wait(20) == 0


def test_max_requests_recycles_without_failures(gunicorn: Callable[..., Arbiter]) -> None:
    port = free_port()
    arbiter = gunicorn("-k", "deploykit.server.workers.Worker", "-w", "2", "-b", f"127.0.0.1:{port}",
                       "--max-requests", "40", "--max-requests-jitter", "5", APP)  # fmt: skip
    first = started(arbiter, port, 2)
    load = Load(port, clients=4)
    # However unevenly the kernel spreads connections, both first workers reach their limit under the load.
    wait_for(lambda: load.ok > 300 and not (arbiter.workers() & first), 30, "300 requests and both workers recycled")
    load.finish()
    assert load.failures == []


def test_gunicorn_timeout_sees_a_blocked_event_loop(gunicorn: Callable[..., Arbiter]) -> None:
    port = free_port()
    arbiter = gunicorn(
        "-k", "deploykit.server.workers.Worker", "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "2", APP
    )
    (first,) = started(arbiter, port, 1)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as blocker:
        blocker.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "WORKER TIMEOUT" in arbiter.log(), 10, "gunicorn's WORKER TIMEOUT")
    wait_for(lambda: answers(port) and first not in arbiter.workers(), 15, "a replacement worker")


def test_settings_map_onto_server_options() -> None:
    cfg = Config()
    for name, value in {"keepalive": 7, "graceful_timeout": 12, "forwarded_allow_ips": "10.0.0.1, 10.0.0.2",
                        "limit_request_line": 0, "limit_request_fields": 50, "limit_request_field_size": 100,
                        "accesslog": "-", "loglevel": "warn"}.items():  # fmt: skip
        cfg.set(name, value)
    options = options_from(cfg, 100, "h11")
    assert (options.timeout_keep_alive, options.timeout_graceful_shutdown) == (7, 12)
    assert options.forwarded_allow_ips == ("10.0.0.1", "10.0.0.2", "unix:")
    assert options.max_request_line == 1_048_576  # gunicorn's 0 = unlimited
    assert options.max_header_size == 50 * 256  # under the 16 KiB cap: Gunicorn's tighter limit wins
    assert (options.access_log, options.log_level, options.limit_max_requests, options.http) == (
        True,
        "warning",
        100,
        "h11",
    )


def test_the_rendered_gunicorn_conf_serves_over_its_socket(tmp_path: Path) -> None:
    """The django profile's conf.py, as rendered, with deploykit's worker: a real request over the unix socket."""
    sock_path = tmp_path / "app.sock"
    settings = settings_for("django", f'paths.socket="{sock_path}"', f'app.module="{APP}"')
    conf = render(settings).by_kind(Kind.GUNICORN_CONF)
    assert conf is not None
    conf_path = tmp_path / "gunicorn.conf.py"
    conf_path.write_text(conf.content)
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(conf_path)], cwd=ROOT, stdout=log,
                            stderr=log, env={**os.environ, "HOME": "/nonexistent"})  # fmt: skip
    try:

        def unix_get() -> bytes:
            """The answer over the socket; b"" while it is missing, or bound but not yet listening."""
            try:
                with socket.socket(socket.AF_UNIX) as client:
                    client.settimeout(5)
                    client.connect(str(sock_path))
                    client.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := client.recv(65536):
                        data += chunk
                    return data
            except OSError:
                return b""

        wait_for(lambda: unix_get().startswith(b"HTTP/1.1 200"), 15, "a 200 over the unix socket")
        # Stop only once every worker is up: a TERM that reaches a worker Gunicorn is still
        # forking can be lost (Gunicorn's own race), and the arbiter then waits graceful_timeout.
        log_path = tmp_path / "gunicorn.log"
        wait_for(lambda: log_path.read_text().count("listening on") >= settings.gunicorn.workers, 15, "all workers")
        assert oct(sock_path.stat().st_mode & 0o777) == oct(0o770)  # umask 0o007 from the conf
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(settings.gunicorn.graceful_timeout + 15)
        log.close()
    assert code == 0, (tmp_path / "gunicorn.log").read_text()


def test_serve_flags_for_what_gunicorn_lacks() -> None:
    cfg = Config()
    cfg.set("keepalive", 7)
    options = options_from(cfg, sys.maxsize, "httptools", "--timeout-header-read 3 --no-server-header --header X-A:1")
    assert (options.timeout_header_read, options.server_header, options.headers) == (3, False, {"X-A": "1"})
    assert options.timeout_keep_alive == 7 and options.limit_max_requests is None
    assert options.limit_concurrency == 1000  # Gunicorn's worker_connections
