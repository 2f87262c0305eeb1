"""A directory standing in for the host: write a bundle under it (``render --out``),
diff against it, and read it as a ``Host`` (``plan --root``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from deploykit.errors import DeployKitError, FileExistsRefused, UsageError
from deploykit.host.base import CommandResult
from deploykit.host.rooted import RootedHost
from deploykit.render.bundle import Bundle, RenderedFile
from deploykit.render.envfile import masked_diff


def write_tree(bundle: Bundle, root: Path, *, force: bool = False) -> list[Path]:
    """Each file at ROOT/<host path>, with its mode; atomically, never half-written."""
    targets = [(file, root / file.relative()) for file in bundle]
    clashes = [str(path) for file, path in targets if path.exists() and not force and read_text(path) != file.content]
    if clashes:
        raise FileExistsRefused(f"would overwrite {len(clashes)} changed file(s): {', '.join(clashes)}")
    written = []
    for file, path in targets:
        _write_atomic(path, file)
        written.append(path)
    return written


def _write_atomic(path: Path, file: RenderedFile) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(file.content)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, file.mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DeployKitError(f"cannot write {path}: {exc.strerror}") from exc


def diff_tree(bundle: Bundle, root: Path, secret_keys: Sequence[str] = ()) -> list[str]:
    """Unified diff from the files under ROOT to the bundle; empty when equal.
    Secret values are masked on both sides, so a diff never prints them.
    ROOT must be a folder: a missing one is a typo, not an empty tree."""
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise UsageError(
            f"--diff {root} {what}",
            hint="Give the root of a tree rendered before (`deploykit render --out DIR`), or / for this machine.",
        )
    lines: list[str] = []
    for file in bundle:
        lines += masked_diff(file.path, read_text(root / file.relative()), file.content, file.secret, secret_keys)
    return lines


def read_text(path: Path) -> str:
    """A file's text, or "" when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise DeployKitError(f"cannot read {path}: {exc.strerror}") from exc


class StagingHost(RootedHost):
    """A directory standing in for ``/`` (``--root DIR``). Files are written under
    it; commands are recorded, never run, and answer "unknown" (exit -1). Owners
    are neither set nor compared: the tree is written as whoever runs deploykit."""

    runs_commands = False

    def __init__(self, root: Path) -> None:
        super().__init__(root, accounts=Path("/"))
        self.commands: list[list[str]] = []
        self.tracks_owners = False

    def run(self, argv: Sequence[str], *, timeout: float = 120) -> CommandResult:
        self.commands.append(list(argv))
        return CommandResult(returncode=-1, stderr="not run: staging root")

    def run_lines(self, argv: Sequence[str], *, on_line: Callable[[str], None], timeout: float = 120) -> CommandResult:
        return self.run(argv, timeout=timeout)

    @contextlib.contextmanager
    def stream(self, argv: Sequence[str]) -> Iterator[Iterator[str]]:
        self.commands.append(list(argv))
        yield iter(())
