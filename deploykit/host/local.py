"""This machine itself: reads and writes ``/`` and runs commands for real."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from deploykit.host.base import CommandResult
from deploykit.host.rooted import RootedHost, run_process, run_process_lines, stream_process


class LocalHost(RootedHost):
    def __init__(self) -> None:
        super().__init__(Path("/"))

    def run(self, argv: Sequence[str], *, timeout: float = 120) -> CommandResult:
        return run_process(argv, timeout)

    def run_lines(self, argv: Sequence[str], *, on_line: Callable[[str], None], timeout: float = 120) -> CommandResult:
        return run_process_lines(argv, timeout, on_line)

    def stream(self, argv: Sequence[str]) -> AbstractContextManager[Iterator[str]]:
        return stream_process(argv)
