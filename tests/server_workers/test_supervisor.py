"""The multi-worker supervisor, with real processes and real signals."""

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

from tests.conftest import free_port
from tests.polling import wait_for
from tests.server_workers.support import Load, alive, answers, children, get, kill_tree

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.server_workers.apps:app"


class Supervised:
    def __init__(self, tmp: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = tmp / f"supervisor-{self.port}.log"
        argv = [sys.executable, "-m", "deploykit", "serve", APP, "--port", str(self.port), *flags]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=log, env={**os.environ, **(env or {})})

    def log(self) -> str:
        return self.log_path.read_text()

    def workers(self) -> set[int]:
        return children(self.proc.pid)

    def wait_workers(self, count: int, timeout: float = 15) -> set[int]:
        if self.proc.poll() is not None:
            pytest.fail(f"supervisor exited {self.proc.returncode}: {self.log()}")
        wait_for(
            lambda: len(self.workers()) == count and self.log().count(" ready") >= count, timeout, f"{count} workers"
        )
        wait_for(lambda: answers(self.port), timeout, "an answer")
        return self.workers()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    started: list[Supervised] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Supervised:
        server = Supervised(tmp_path, *flags, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        kill_tree(server.proc)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_workers_share_the_socket_and_stop_gracefully(supervised: Callable[..., Supervised], stop: int) -> None:
    server = supervised("--workers", "2")
    workers = server.wait_workers(2)
    answered = {get(server.port)[1] for _ in range(40)}
    assert answered <= {str(p) for p in workers}
    server.proc.send_signal(stop)
    assert server.proc.wait(15) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_dead_worker_is_replaced(supervised: Callable[..., Supervised]) -> None:
    server = supervised("--workers", "2")
    workers = server.wait_workers(2)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(server.workers() - {victim}) == 2, 10, "a replacement worker")
    assert get(server.port)[0] == 200
    wait_for(lambda: f"worker {victim} died" in server.log(), 5, lambda: f"the death logged: {server.log()}")


def test_hup_is_a_rolling_restart_that_loses_no_request(supervised: Callable[..., Supervised]) -> None:
    server = supervised("--workers", "2")
    old = server.wait_workers(2)
    load = Load(server.port)
    wait_for(lambda: load.ok >= 50, 15, "the load to reach the old workers")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: not (server.workers() & old) and len(server.workers()) == 2, 15, "new workers")
    served = load.ok
    wait_for(lambda: load.ok >= served + 50, 15, "the load to reach the new workers")
    load.finish()
    assert load.failures == []
    assert "rolling restart" in server.log()


def test_ttin_and_ttou_change_the_worker_count(supervised: Callable[..., Supervised]) -> None:
    server = supervised("--workers", "2")
    server.wait_workers(2)
    server.proc.send_signal(signal.SIGTTIN)
    server.wait_workers(3)
    server.proc.send_signal(signal.SIGTTOU)
    wait_for(lambda: len(server.workers()) == 2, 10, "two workers")
    server.proc.send_signal(signal.SIGTTOU)  # one at a time: identical pending signals merge
    wait_for(lambda: len(server.workers()) == 1, 10, "one worker")
    assert get(server.port)[0] == 200


def test_a_blocked_event_loop_is_detected_and_replaced(supervised: Callable[..., Supervised]) -> None:
    server = supervised("--workers", "2", "--timeout-worker-healthcheck", "2")
    workers = server.wait_workers(2)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as blocker:
        blocker.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "unresponsive" in server.log(), 8, "the health check")
    took = time.monotonic() - started
    assert took < 2 + 1.5, f"blocked worker noticed after {took:.1f}s"
    wait_for(lambda: len(server.workers() - workers) >= 1 and len(server.workers()) == 2, 10, "a replacement")
    assert get(server.port)[0] == 200


def test_max_requests_recycles_workers_without_failures(supervised: Callable[..., Supervised]) -> None:
    server = supervised("--workers", "2", "--limit-max-requests", "50", "--limit-max-requests-jitter", "10")
    first = server.wait_workers(2)
    load = Load(server.port, clients=4)
    # However unevenly the kernel spreads connections, both first workers reach their limit under the load.
    wait_for(lambda: load.ok > 400 and not (server.workers() & first), 30, "400 requests and both workers recycled")
    load.finish()
    assert load.failures == []
    assert "exited after serving its request limit" in server.log()


def test_workers_start_side_by_side(tmp_path: Path) -> None:
    # Each worker's startup waits for all four to have begun theirs: started one after another,
    # the first never finishes, and the supervisor stops with "workers keep failing at start-up".
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "BARRIER_DIR": str(barrier), "BARRIER_COUNT": "4"}
    argv = [sys.executable, "-m", "deploykit", "serve", "tests.server_workers.apps:barrier", "--workers", "4"]
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([*argv, "--port", str(port)], cwd=ROOT, env=env, stderr=err)
    try:
        wait_for(lambda: proc.poll() is not None or answers(port), 60, "the four workers to start")
        assert proc.poll() is None, log.read_text()
        assert len(list(barrier.iterdir())) == 4
    finally:
        kill_tree(proc)


def test_failing_startup_stops_the_supervisor(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "deploykit", "serve", "tests.server.apps:lifespan_fail", "--workers", "2"]
    proc = subprocess.run([*argv, "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert "db down" in proc.stderr


def test_sd_notify_ready_reloading_stopping(supervised: Callable[..., Supervised], tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(10)
    server = supervised("--workers", "2", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})

    def until(field: str) -> list[str]:
        seen = []
        while True:
            message = listener.recv(4096).decode().split("\n")
            seen += message
            if field in message:
                return seen

    ready = until("READY=1")
    assert any(f.startswith("STATUS=2 workers") for f in ready)
    assert f"MAINPID={server.proc.pid}" in ready
    assert "WATCHDOG=1" in until("WATCHDOG=1")  # WatchdogSec=1 asks for one every 0.5 s
    server.proc.send_signal(signal.SIGHUP)
    assert "RELOADING=1" in until("RELOADING=1")
    until("READY=1")
    server.proc.send_signal(signal.SIGTERM)
    assert "STOPPING=1" in until("STOPPING=1")
    assert server.proc.wait(15) == 0
    listener.close()


def test_socket_activation(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    # systemd's layout: the socket is fd 3 and LISTEN_PID is the server's own pid. A tiny
    # launcher sets that up in the child (never dup2 onto fd 3 here: pytest may own it).
    launcher = (
        f"import os, sys; os.dup2({fd}, 3); os.close({fd}); os.environ['LISTEN_PID'] = str(os.getpid()); "
        f"os.environ['LISTEN_FDS'] = '1'; os.execv(sys.executable, [sys.executable, '-m', 'deploykit', 'serve', "
        f"'{APP}', '--workers', '2'])"
    )
    with (tmp_path / "activated.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", launcher], cwd=ROOT, pass_fds=(fd,), stderr=log, stdout=log)
    listener.close()
    try:
        wait_for(lambda: answers(port), 15, "the socket-activated server")
        assert get(port)[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0, (tmp_path / "activated.log").read_text()


def test_workers_do_not_outlive_a_killed_supervisor(supervised: Callable[..., Supervised]) -> None:
    server = supervised("--workers", "2")
    workers = server.wait_workers(2)
    server.proc.kill()
    server.proc.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), 10, "orphaned workers to exit")
