"""The one way a test waits for a side effect: poll a condition until it holds, with a deadline.

A fixed `time.sleep` that stands in for a condition ("the request has reached the app by now")
fails on a loaded machine, and polling for a file's existence and then reading it can read the
half-written file. So a test waits for exactly what it is about to use (the content, the complete
log line, the answer), and a helper process publishes a file with `write_atomic`, which makes it
appear whole or not at all. Sleeps that are the behaviour under test (an idle client that must
trigger a timeout) stay sleeps.

Imported by the test apps that run inside server processes too, so it needs nothing but the
standard library.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.02
# How long a test waits for a server it started to listen: a deadline for a server that never comes
# up, not a speed bound. Under `make test-stress` with other work on the machine (load ~9 on 2 cores)
# a cold interpreter took over 10 s to import and listen.
SERVER_START_TIMEOUT = 30.0


def wait_for(check: Callable[[], T], timeout: float, what: str | Callable[[], str]) -> T:
    """Call `check` until it returns something truthy, and return that; fail after `timeout` seconds.

    `what` names the condition in the failure message; a callable is called only then (to show a log).
    Exceptions from `check` propagate: catch the expected ones (a refused connection) in `check`.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {detail}")
        time.sleep(INTERVAL)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` so that a reader sees either no file or the whole text, never a part."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


def wait_for_text(path: Path, timeout: float, what: str) -> str:
    """The text of a file another process writes, once the file holds some: never the empty file
    a writer has just opened (its writer should still use `write_atomic`, so the text is whole)."""

    def text() -> str | None:
        try:
            return path.read_text(encoding="utf-8") or None
        except FileNotFoundError:
            return None

    return wait_for(text, timeout, what)
