"""A directory standing in for the host: write a bundle under it (``render --out``),
diff against it, and read it as a ``Host`` (``plan --root``)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deploykit.errors import DeployKitError, FileExistsRefused
from deploykit.host.base import CommandResult, FileFacts
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
    Secret values are masked on both sides, so a diff never prints them."""
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


class StagingHost:
    """A directory standing in for ``/`` (``--root DIR``). Commands are recorded,
    never run, and answer "unknown"; owners are only compared when running as root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.commands: list[list[str]] = []
        self.tracks_owners = os.geteuid() == 0 and root == Path("/")

    def _path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> FileFacts | None:
        target = self._path(path)
        try:
            info = target.stat()
            content = target.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeployKitError(f"cannot read {target}: {exc.strerror}") from exc
        return FileFacts(
            content, stat.S_IMODE(info.st_mode), _name(pwd.getpwuid, info.st_uid), _name(grp.getgrgid, info.st_gid)
        )

    def link_target(self, path: str) -> str | None:
        target = self._path(path)
        return os.readlink(target) if target.is_symlink() else None

    def run(self, argv: Sequence[str]) -> CommandResult:
        self.commands.append(list(argv))
        return CommandResult(returncode=-1, stderr="not run: staging root")


class LocalHost(StagingHost):
    """This machine itself: reads ``/`` and runs commands for real."""

    def __init__(self) -> None:
        super().__init__(Path("/"))

    def run(self, argv: Sequence[str]) -> CommandResult:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
        except FileNotFoundError:
            return CommandResult(127, stderr=f"{argv[0]}: not found")
        return CommandResult(done.returncode, done.stdout, done.stderr)


def _name(lookup: Callable[[int], Any], ident: int) -> str:
    try:
        return str(lookup(ident)[0])
    except KeyError:
        return str(ident)
