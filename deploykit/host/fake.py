"""An in-memory host for unit tests: files, symlinks and unit states as data.
``fail`` makes chosen commands fail, to drive apply's rollback paths."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from deploykit.errors import DeployKitError, Locked
from deploykit.host.base import CommandResult, FileFacts


@dataclass
class FakeHost:
    files: dict[str, FileFacts] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    #: the mode each directory was made with or set to
    dir_modes: dict[str, int] = field(default_factory=dict)
    enabled: dict[str, bool] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)
    tracks_owners: bool = True
    runs_commands: bool = True
    commands: list[list[str]] = field(default_factory=list)
    #: answers for commands, matched by argv prefix; the first match wins
    answers: list[tuple[tuple[str, ...], CommandResult]] = field(default_factory=list)
    #: called before each command, e.g. to fail the second `systemctl restart`
    hook: Callable[[list[str]], CommandResult | None] | None = None
    locked: set[str] = field(default_factory=set)

    def read(self, path: str) -> FileFacts | None:
        return self.files.get(path)

    def link_target(self, path: str) -> str | None:
        return self.links.get(path)

    def list_dir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/")[0] for p in [*self.files, *self.dirs] if p.startswith(prefix)}
        return sorted(names)

    def write(self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root") -> None:
        self.files[path] = FileFacts(content, mode, owner, group)

    def symlink(self, link: str, target: str) -> None:
        self.links[link] = target

    def remove(self, path: str) -> None:
        self.files.pop(path, None)
        self.links.pop(path, None)

    def make_dir(self, path: str, *, mode: int, owner: str = "root", group: str = "root") -> bool:
        created = path not in self.dirs
        self.dirs.add(path)
        if created:
            self.dir_modes[path] = mode
        return created

    def set_mode(self, path: str, mode: int) -> None:
        if path in self.dirs:
            self.dir_modes[path] = mode
        elif (facts := self.files.get(path)) is not None:
            self.files[path] = FileFacts(facts.content, mode, facts.owner, facts.group)
        else:
            raise DeployKitError(f"cannot change the mode of {path}: No such file or directory")

    def remove_tree(self, path: str) -> None:
        prefix = path.rstrip("/") + "/"
        self.files = {p: f for p, f in self.files.items() if not p.startswith(prefix)}
        self.dirs = {d for d in self.dirs if d != path and not d.startswith(prefix)}

    @contextlib.contextmanager
    def lock(self, path: str) -> Iterator[None]:
        if path in self.locked:
            raise Locked(f"another deploykit apply holds {path}")
        self.locked.add(path)
        try:
            yield
        finally:
            self.locked.discard(path)

    def run(self, argv: Sequence[str], *, timeout: float = 120) -> CommandResult:
        command = list(argv)
        self.commands.append(command)
        if self.hook is not None and (result := self.hook(command)) is not None:
            return result
        for prefix, answer in self.answers:
            if tuple(command[: len(prefix)]) == prefix:
                return answer
        return self._systemctl(command)

    def run_lines(self, argv: Sequence[str], *, on_line: Callable[[str], None], timeout: float = 120) -> CommandResult:
        result = self.run(argv, timeout=timeout)
        for line in result.stdout.splitlines():
            on_line(line)
        return result

    def _systemctl(self, argv: list[str]) -> CommandResult:
        verb, unit = (argv[1], argv[-1]) if argv[:1] == ["systemctl"] and len(argv) > 2 else ("", "")
        if verb == "is-enabled":
            on = self.enabled.get(unit, False)
            return CommandResult(0 if on else 1, "enabled\n" if on else "disabled\n")
        if verb == "is-active":
            on = self.active.get(unit, False)
            return CommandResult(0 if on else 3, "active\n" if on else "inactive\n")
        if verb in ("start", "restart", "reload"):
            self.active[unit] = True
        elif verb == "stop":
            self.active[unit] = False
        elif verb == "enable":
            self.enabled[unit] = True
            self.active[unit] = self.active.get(unit, False) or "--now" in argv
        elif verb == "disable":
            self.enabled[unit] = False
            self.active[unit] = self.active.get(unit, False) and "--now" not in argv
        return CommandResult(0)

    @contextlib.contextmanager
    def stream(self, argv: Sequence[str]) -> Iterator[Iterator[str]]:
        result = self.run(argv)
        yield iter(result.stdout.splitlines(keepends=True))
