"""An in-memory host for unit tests: files, symlinks and unit states as data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deploykit.host.base import CommandResult, FileFacts


@dataclass
class FakeHost:
    files: dict[str, FileFacts] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    enabled: dict[str, bool] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)
    tracks_owners: bool = True
    commands: list[list[str]] = field(default_factory=list)

    def read(self, path: str) -> FileFacts | None:
        return self.files.get(path)

    def link_target(self, path: str) -> str | None:
        return self.links.get(path)

    def run(self, argv: Sequence[str]) -> CommandResult:
        self.commands.append(list(argv))
        if list(argv[:2]) == ["systemctl", "is-enabled"]:
            on = self.enabled.get(argv[2], False)
            return CommandResult(0 if on else 1, "enabled\n" if on else "disabled\n")
        if list(argv[:2]) == ["systemctl", "is-active"]:
            on = self.active.get(argv[2], False)
            return CommandResult(0 if on else 3, "active\n" if on else "inactive\n")
        return CommandResult(0)
