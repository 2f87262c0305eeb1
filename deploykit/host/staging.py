"""Write a bundle under a directory (``render --out``) and diff it against one."""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from deploykit.errors import DeployKitError, FileExistsRefused
from deploykit.render.bundle import Bundle, RenderedFile
from deploykit.render.envfile import mask_secrets


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
        on_disk = read_text(root / file.relative())
        current, new = on_disk, file.content
        if file.secret:
            current, new = mask_secrets(current, secret_keys), mask_secrets(new, secret_keys)
        if current == new and on_disk != file.content:
            new += "# (a secret value differs)\n"
        lines += difflib.unified_diff(
            current.splitlines(keepends=True), new.splitlines(keepends=True), f"a{file.path}", f"b{file.path}"
        )
    return lines


def read_text(path: Path) -> str:
    """A file's text, or "" when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise DeployKitError(f"cannot read {path}: {exc.strerror}") from exc
