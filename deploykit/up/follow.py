"""Follow several log files at once, like `tail -F` merged: each call returns
the complete lines written since the last one, labelled by their source."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Followed:
    label: str
    path: Path
    offset: int = 0
    partial: bytes = b""


@dataclass
class Follower:
    """Reads what was appended to each file; a file that does not exist yet reads as empty."""

    sources: list[_Followed] = field(default_factory=list)

    @classmethod
    def of(cls, logs: list[tuple[str, Path]]) -> Follower:
        return cls([_Followed(label, path) for label, path in logs])

    def new_lines(self, *, final: bool = False) -> list[tuple[str, str]]:
        """Complete lines appended since the last call; with FINAL, a last unterminated line too."""
        found: list[tuple[str, str]] = []
        for source in self.sources:
            data = self._read(source)
            *lines, source.partial = (source.partial + data).split(b"\n")
            if final and source.partial:
                lines.append(source.partial)
                source.partial = b""
            found += [(source.label, line.decode("utf-8", "replace").rstrip("\r")) for line in lines]
        return found

    @staticmethod
    def _read(source: _Followed) -> bytes:
        try:
            with source.path.open("rb") as fh:
                fh.seek(source.offset)
                data = fh.read()
        except FileNotFoundError:
            return b""
        source.offset += len(data)
        return data


def last_lines(path: Path, count: int = 15) -> list[str]:
    """The last COUNT lines of a file (none when it is missing), for error reports."""
    try:
        with path.open("rb") as fh:
            tail = deque(fh, maxlen=count)
    except FileNotFoundError:
        return []
    return [line.decode("utf-8", "replace").rstrip() for line in tail]
