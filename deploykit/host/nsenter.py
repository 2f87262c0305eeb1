"""A systemd container (systemd-nspawn, or any process tree with its own
mount namespace) reached through its PID 1: files through ``/proc/PID/root``,
commands through ``nsenter`` with a clean environment. Used by the real-host
tests, and by users who try a deploy on a local container first
(``--host nsenter:PID``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from deploykit.errors import DeployKitError
from deploykit.host.base import CommandResult
from deploykit.host.rooted import RootedHost, run_process, run_process_lines, stream_process

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NsenterHost(RootedHost):
    def __init__(self, leader: int) -> None:
        root = Path(f"/proc/{leader}/root")
        if not root.is_dir():
            raise DeployKitError(f"no process {leader} to enter", hint="Give the container's PID 1 (its leader).")
        super().__init__(root)
        self.leader = leader

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.leader), "-a", "env", "-i", PATH, "LANG=C.UTF-8", *argv]

    def run(self, argv: Sequence[str], *, timeout: float = 120) -> CommandResult:
        return run_process(self.command(argv), timeout)

    def run_lines(self, argv: Sequence[str], *, on_line: Callable[[str], None], timeout: float = 120) -> CommandResult:
        return run_process_lines(self.command(argv), timeout, on_line)

    def stream(self, argv: Sequence[str]) -> AbstractContextManager[Iterator[str]]:
        # nsenter forks and does not pass signals on: without a parent-death signal the
        # program (`journalctl -f`, `tail -F`) would outlive the stopped stream in the container.
        return stream_process(self.command(["setpriv", "--pdeathsig", "TERM", "--", *argv]))
