"""The host seam: everything deploykit reads from or does to a machine goes
through this small protocol, so planning is pure and a fake host serves the
unit tests. Implementations: ``staging.StagingHost`` (a directory standing
in for ``/``; commands are recorded, not run) and ``fake.FakeHost`` (memory)."""

from __future__ import annotations

from collections.abc import Sequence
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


class Host(Protocol):
    #: whether owner/group are meaningful here (a staging tree written as a plain user is not)
    tracks_owners: bool

    def read(self, path: str) -> FileFacts | None:
        """The file at PATH (host path), or None when it does not exist."""
        ...

    def link_target(self, path: str) -> str | None:
        """Where the symlink at PATH points, or None when it is not a symlink."""
        ...

    def run(self, argv: Sequence[str]) -> CommandResult:
        """Run ARGV on the host (never through a shell)."""
        ...
