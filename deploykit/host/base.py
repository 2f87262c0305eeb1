"""The host seam: everything deploykit reads from or does to a machine goes
through this small protocol, so planning is pure and a fake host serves the
unit tests.

Implementations:

- ``local.LocalHost``: this machine (``/``), commands run for real;
- ``staging.StagingHost``: a directory standing in for ``/`` (``--root DIR``);
  files are written under it, commands are recorded and never run;
- ``nsenter.NsenterHost``: a systemd container reached through its PID 1
  (files through ``/proc/PID/root``, commands through ``nsenter``);
- ``fake.FakeHost``: memory, for unit tests.

Commands are always an argv list, never a shell string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class FileFacts:
    content: bytes
    mode: int
    owner: str
    group: str


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def output(self) -> str:
        """stdout and stderr together, stripped: what a failure message quotes."""
        return "\n".join(part.strip() for part in (self.stdout, self.stderr) if part.strip())


class Host(Protocol):
    #: whether owner/group are meaningful here (a staging tree written as a plain user is not)
    tracks_owners: bool
    #: whether commands really run (False on a staging root: they are only recorded)
    runs_commands: bool

    def read(self, path: str) -> FileFacts | None:
        """The file at PATH (host path), or None when it does not exist."""
        ...

    def link_target(self, path: str) -> str | None:
        """Where the symlink at PATH points, or None when it is not a symlink."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """The names in directory PATH, sorted; [] when it does not exist."""
        ...

    def write(self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root") -> None:
        """Replace PATH atomically: temp file, fsync, mode and owner set, then rename."""
        ...

    def symlink(self, link: str, target: str) -> None:
        """Point LINK at TARGET, replacing what is there atomically."""
        ...

    def remove(self, path: str) -> None:
        """Remove the file or symlink at PATH (nothing when it is absent)."""
        ...

    def make_dir(self, path: str, *, mode: int, owner: str = "root", group: str = "root") -> bool:
        """Create PATH (and parents) when missing; True when it was created."""
        ...

    def set_mode(self, path: str, mode: int) -> None:
        """Change the mode of the existing file or directory PATH."""
        ...

    def remove_tree(self, path: str) -> None:
        """Remove directory PATH and everything under it (nothing when absent)."""
        ...

    def lock(self, path: str) -> AbstractContextManager[None]:
        """Hold an exclusive lock on PATH; raises ``Locked`` when another holder has it."""
        ...

    def run(self, argv: Sequence[str], *, timeout: float = 120) -> CommandResult:
        """Run ARGV on the host (never through a shell)."""
        ...

    def run_lines(self, argv: Sequence[str], *, on_line: Callable[[str], None], timeout: float = 120) -> CommandResult:
        """Run ARGV like ``run``, handing each output line (stdout and stderr merged, in the result's
        stdout) to ON_LINE as it comes: what a long step shows its progress from."""
        ...

    def stream(self, argv: Sequence[str]) -> AbstractContextManager[Iterator[str]]:
        """Run ARGV and yield its output lines as they come (``logs -f``); stopped on exit."""
        ...
