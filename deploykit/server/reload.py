"""`--reload` for development: serve from a child process, restart it when a
watched file changes.

The parent never imports the app, so each child starts from fresh code; a
child that fails to import (a syntax error mid-edit) is logged and the
parent waits for the next change instead of dying. Changes come from
watchfiles (the Rust `notify` backend); without it, a plain mtime poll.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from deploykit.server.config import ServerConfig
from deploykit.server.options import ServerOptions

logger = logging.getLogger("deploykit.error")


def matches(path: str, includes: tuple[str, ...], excludes: tuple[str, ...]) -> bool:
    """--reload-include / --reload-exclude globs, tried against the file name and the path."""
    name = os.path.basename(path)
    if any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, pattern) for pattern in excludes):
        return False
    return any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, pattern) for pattern in includes)


class Reloader:
    def __init__(self, settings: ServerOptions, build: Callable[[], ServerConfig], sock: socket.socket) -> None:
        self.settings = settings
        self.build = build
        self.sock = sock
        self.dirs = [Path(d) for d in settings.reload_dirs] or [Path.cwd()]
        self.stop = threading.Event()
        self.child: int | None = None

    def run(self) -> int:
        # A .pyc records its source's mtime in whole seconds and its size: an edit
        # within the same second that keeps the size would load the stale .pyc.
        sys.dont_write_bytecode = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        logger.info("deploykit serve: reloading on changes under %s", ", ".join(map(str, self.dirs)))
        changes = self._changes()
        if next(changes, None) is None:  # stopped (SIGTERM) before the watcher began: nothing to stop
            return 0
        # The watcher runs before the app does: no edit falls in between.
        self._start()
        for changed in changes:
            logger.info("%s changed; restarting", ", ".join(sorted(changed))[:200])
            self._stop_child()
            self._start()
        self._stop_child()
        return 0

    def _start(self) -> None:
        stops = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # a TERM for the child must not meet our handler
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, measured by the process tests
            code = 1
            try:
                for sig in stops:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
                from deploykit.server.server import Server

                code = Server(self.build()).run(self.sock)
            except BaseException:  # noqa: BLE001 - the parent keeps running and waits for a fix
                logger.exception("the app failed to start; waiting for the next change")
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        self.child = pid

    def _stop_child(self) -> None:
        if self.child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.child, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.timeout_graceful_shutdown
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.child, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGKILL)
            os.waitpid(self.child, 0)
        self.child = None

    def _changes(self) -> Iterator[set[str]]:
        """An empty set once watching has begun, then each batch of changed paths."""
        s = self.settings
        try:
            import watchfiles
        except ImportError:  # pragma: no cover - watchfiles is a dependency; this is the fallback
            yield from self._poll()
            return
        debounce = max(int(s.reload_delay * 1000), 50)
        started = False
        for changes in watchfiles.watch(
            *self.dirs,
            watch_filter=lambda _change, path: matches(path, s.reload_includes, s.reload_excludes),
            debounce=debounce,
            stop_event=self.stop,
            raise_interrupt=False,
            yield_on_timeout=True,  # an empty set every rust_timeout: the first one says "watching"
            rust_timeout=100,
        ):
            if not started:
                started = True
                yield set()
            if changes:
                yield {path for _change, path in changes}

    def _poll(self) -> Iterator[set[str]]:
        s = self.settings
        seen = self._mtimes()
        yield set()  # watching
        while not self.stop.wait(max(s.reload_delay, 0.1)):
            now = self._mtimes()
            changed = {p for p in now.keys() | seen.keys() if now.get(p) != seen.get(p)}
            seen = now
            if changed:
                yield changed

    def _mtimes(self) -> dict[str, float]:
        s = self.settings
        found = {}
        for folder in self.dirs:
            for path in folder.rglob("*"):
                if path.is_file() and matches(str(path), s.reload_includes, s.reload_excludes):
                    with contextlib.suppress(OSError):
                        found[str(path)] = path.stat().st_mtime
        return found
