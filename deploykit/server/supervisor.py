"""Several worker processes on one listening socket, supervised.

The supervisor binds once (or takes systemd's socket), forks workers that
import the app themselves, and never imports the app itself — so a HUP
brings up workers running new code. It stays a plain select() loop with no
event loop, so nothing in it can be blocked by the app.

Signals: TERM/INT close the listening socket (new connections are refused at
once) and stop every worker gracefully (a second one kills them);
HUP is a rolling restart — a new worker is up and accepting before each old
one drains, and the socket stays open throughout, so no request fails;
TTIN/TTOU add/remove a worker. A worker that exits is replaced (with backoff
when it keeps crashing at start-up).

Liveness: each worker's event loop writes a heartbeat (its request count) to
a pipe from the loop's own ticker. A loop blocked by the app (``time.sleep``
in a handler) stops writing, and the worker is killed and replaced after
``--timeout-worker-healthcheck`` — a check answered from a thread could not
see that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from deploykit.errors import DeployKitError
from deploykit.server.config import ServerConfig
from deploykit.server.notify import Notifier
from deploykit.server.options import ServerOptions

logger = logging.getLogger("deploykit.error")

EXIT_STARTUP_FAILED = 3
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)
_MAX_EARLY_DEATHS = 5


@dataclass
class Worker:
    pid: int
    fd: int
    generation: int
    started: float
    last_beat: float
    ready: bool = False
    requests: int = 0
    retiring: bool = False
    buffer: bytes = b""


class Supervisor:
    def __init__(self, settings: ServerOptions, build: Callable[[], ServerConfig], sock: socket.socket) -> None:
        self.settings = settings
        self.build = build
        self.sock = sock
        self.target = settings.workers
        self.workers: dict[int, Worker] = {}
        self.generation = 0
        self.stopping = False
        self.stop_deadline = 0.0
        self.signals: list[int] = []
        self.notifier = Notifier()
        self.announced = False
        self.backoff = 0.0
        self.next_spawn = 0.0
        self.early_deaths = 0
        self.exit_code = 0
        self.served_by_gone = 0
        self._last_status = 0.0

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        for sig in _HANDLED:
            signal.signal(sig, self._on_signal)
        self.wake_fds = (wake_r, wake_w)
        logger.info("deploykit serve: supervisor %d starting %d workers", os.getpid(), self.target)
        try:
            while self.workers or not self.stopping:
                self._step(wake_r)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig in _HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            os.close(wake_r)
            os.close(wake_w)
        logger.info("deploykit serve: supervisor stopped")
        return self.exit_code

    def _step(self, wake_r: int) -> None:
        fds = [wake_r, *(w.fd for w in self.workers.values())]
        readable, _, _ = select.select(fds, [], [], 0.1)
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
        for sig in self.signals:
            self._handle_signal(sig)
        self.signals.clear()
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.fd in readable:
                self._read_beat(worker, now)
        self._reap(now)
        if self.stopping:
            if now >= self.stop_deadline:
                self._kill_all()
            return
        self._check_health(now)
        self._maintain(now)
        self._report(now)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def _handle_signal(self, sig: int) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            if self.stopping:
                logger.info("second stop signal: killing workers now")
                self._kill_all()
                return
            self.notifier.stopping()
            logger.info("stopping: draining %d workers", len(self.workers))
            self._stop(time.monotonic())
        elif sig == signal.SIGHUP and not self.stopping:
            self.generation += 1
            self.notifier.reloading()
            logger.info("HUP: rolling restart to generation %d", self.generation)
        elif sig == signal.SIGTTIN and not self.stopping:
            self.target += 1
            logger.info("TTIN: %d workers", self.target)
        elif sig == signal.SIGTTOU and not self.stopping and self.target > 1:
            self.target -= 1
            logger.info("TTOU: %d workers", self.target)

    # -- workers --------------------------------------------------------------------------
    def _spawn(self, now: float) -> None:
        read_fd, write_fd = os.pipe()
        # Signals stay blocked across fork: a TERM aimed at the new worker must not
        # reach the supervisor's handler it inherits, but its own default action.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, measured by the process tests
            os.close(read_fd)
            self._become_worker(write_fd)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.workers[pid] = Worker(pid, read_fd, self.generation, now, now)
        logger.info("worker %d started (generation %d)", pid, self.generation)

    def _become_worker(self, beat_fd: int) -> None:  # pragma: no cover - child process
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in _HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
            for fd in (*self.wake_fds, *(w.fd for w in self.workers.values())):
                with contextlib.suppress(OSError):
                    os.close(fd)
            from deploykit.server.server import Server

            limit = self.settings.limit_max_requests
            jitter = self.settings.limit_max_requests_jitter
            config = self.build()
            if limit is not None and jitter:
                config = config.with_request_limit(limit + random.randint(0, jitter))
            os.set_blocking(beat_fd, False)
            code = Server(config, heartbeat=lambda count: _beat(beat_fd, count)).run(self.sock)
        except DeployKitError as exc:  # e.g. the app does not import: every worker would fail alike
            logger.error("worker failed to start: %s", exc)
            logger.debug("traceback of the failed start", exc_info=exc)
            code = EXIT_STARTUP_FAILED
        except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's loop
            logger.exception("worker failed")
        finally:
            os._exit(code)

    def _read_beat(self, worker: Worker, now: float) -> None:
        try:
            data = os.read(worker.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            return
        worker.buffer += data
        *lines, worker.buffer = worker.buffer.split(b"\n")
        if lines:
            worker.last_beat = now
            worker.requests = int(lines[-1] or 0)
            if not worker.ready:
                worker.ready = True
                self._on_ready(worker)

    def _on_ready(self, worker: Worker) -> None:
        logger.info("worker %d ready", worker.pid)
        old = self._old()
        if worker.generation == self.generation and old:
            self._retire(old[0])  # rolling restart: one in, one out

    def _old(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.generation < self.generation and not w.retiring]

    def _retire(self, worker: Worker) -> None:
        worker.retiring = True
        self._signal(worker, signal.SIGTERM)

    def _reap(self, now: float) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            os.close(worker.fd)
            self.served_by_gone += worker.requests
            code = os.waitstatus_to_exitcode(status)
            self._on_exit(worker, code, now)

    def _on_exit(self, worker: Worker, code: int, now: float) -> None:
        if worker.retiring or self.stopping:
            logger.info("worker %d exited (%d)", worker.pid, code)
            return
        if code == 0:
            logger.info("worker %d exited after serving its request limit; replacing it", worker.pid)
            return
        logger.error("worker %d died (exit %d); replacing it", worker.pid, code)
        if not worker.ready:
            self.early_deaths += 1
            self.backoff = min(max(self.backoff * 2, 0.5), 10.0)
            self.next_spawn = now + self.backoff
            if code == EXIT_STARTUP_FAILED or self.early_deaths >= _MAX_EARLY_DEATHS:
                logger.error("workers keep failing at start-up; stopping")
                self.exit_code = EXIT_STARTUP_FAILED if code == EXIT_STARTUP_FAILED else 1
                self._stop(now)

    def _stop(self, now: float) -> None:
        """Drain every worker, and stop accepting at once: the workers close their copies of the
        listening socket, and ours must go too, or the kernel keeps completing handshakes on it
        that no worker will ever accept (reset when we exit). No worker is spawned from here on."""
        self.stopping = True
        self.stop_deadline = now + self.settings.timeout_graceful_shutdown + 5
        for worker in self.workers.values():
            self._signal(worker, signal.SIGTERM)
        self.sock.close()

    def _check_health(self, now: float) -> None:
        timeout = self.settings.timeout_worker_healthcheck
        for worker in self.workers.values():
            # Start-up (importing the app, lifespan) gets a longer allowance than a beat.
            allowed = timeout if worker.ready else max(timeout, 60.0)
            if now - worker.last_beat > allowed:
                logger.error("worker %d unresponsive for %.1fs (event loop blocked?); killing it", worker.pid, allowed)
                worker.last_beat = now  # kill once; reaping replaces it
                self._signal(worker, signal.SIGKILL)

    def _maintain(self, now: float) -> None:
        live = [w for w in self.workers.values() if not w.retiring]
        pending = [w for w in live if not w.ready]
        if self._old():
            if not pending:
                self._spawn(now)
            return
        missing = self.target - len(live)
        if missing > 0 and now >= self.next_spawn and not pending:
            # Healthy: fill every empty slot at once, so N workers start in the time of one (one by
            # one, a 2 s import made `--workers 16` take 32 s before READY=1). After a worker died
            # while starting, probe with one at a time, paced by the backoff.
            for _ in range(1 if self.early_deaths else missing):
                self._spawn(now)
        elif len(live) > self.target:
            self._retire(max(live, key=lambda w: w.started))
        if any(w.ready for w in live) and all(w.ready for w in live):
            if self.early_deaths:
                self.early_deaths = 0
                self.backoff = 0.0

    def _report(self, now: float) -> None:
        ready = [w for w in self.workers.values() if w.ready and not w.retiring]
        served = self.served_by_gone + sum(w.requests for w in self.workers.values())
        status = f"{len(ready)} workers, {served} requests served"
        if not self.announced and len(ready) >= self.target:
            self.announced = True
            self.notifier.ready(status)
            logger.info("deploykit serve: %d workers ready", len(ready))
        elif self.announced and not self._old() and now - self._last_status >= 2:
            self._last_status = now
            self.notifier.send("READY=1", f"STATUS={status}")
        if ready:
            self.notifier.watchdog(now)

    def _signal(self, worker: Worker, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, sig)

    def _kill_all(self) -> None:
        for worker in self.workers.values():
            self._signal(worker, signal.SIGKILL)


def _beat(fd: int, count: int) -> None:
    try:
        os.write(fd, b"%d\n" % count)
    except BlockingIOError:
        pass
    except BrokenPipeError:  # the supervisor is gone (killed): drain and exit, never linger as an orphan
        os.kill(os.getpid(), signal.SIGTERM)
