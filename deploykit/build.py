"""`deploykit build`: the app's wheelhouse, made from its project folder with ``pip wheel``.

A wheelhouse holds the app's own wheel and a wheel for every dependency, so a
host installs it with ``pip install --no-index`` and needs no network. When the
project has a lock file (``LOCK_FILES``, first found), the dependencies are the
locked ones (``pip wheel -r LOCK``; hashes in it are enforced by pip) and the
app's wheel is built with ``--no-deps``; otherwise pip resolves the project's
declared dependencies. Builds are reproducible where the build backend honours
``SOURCE_DATE_EPOCH`` (setuptools and hatchling do), so the same source gives the
same code version and apply sees no change.

The code version of a wheelhouse (``code_version``) hashes the wheels' names and
contents; apply compares it with the release in place."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploykit.errors import DeployKitError
from deploykit.host.rooted import run_process_lines
from deploykit.pipprogress import PipWheel, Update, ignore

#: lock files honoured, in order: the first one present is used
LOCK_FILES = ("requirements.lock", "requirements.txt")
#: 1980-01-01, the earliest time a zip file can hold
SOURCE_DATE_EPOCH = "315532800"
#: seconds one pip line may take
TIMEOUT = 1800


class BuildFailed(DeployKitError):
    """pip could not build the wheelhouse (its output travels in the message)."""


@dataclass(frozen=True)
class Built:
    folder: Path
    wheels: tuple[str, ...]
    lock: str | None
    version: str


def lock_file(project: Path) -> Path | None:
    return next((project / name for name in LOCK_FILES if (project / name).is_file()), None)


def commands(project: Path, out: Path, python: str = sys.executable) -> list[list[str]]:
    """The pip lines that build PROJECT's wheelhouse into OUT (pure)."""
    pip = [python, "-m", "pip", "wheel", "--disable-pip-version-check", "--wheel-dir", str(out)]
    lock = lock_file(project)
    if lock is None:
        return [[*pip, str(project)]]
    return [[*pip, "--requirement", str(lock)], [*pip, "--no-deps", str(project)]]


def build(project: Path, out: Path, *, python: str = sys.executable, update: Update = ignore) -> Built:
    """Build PROJECT's wheelhouse into OUT (its old wheels are removed first); UPDATE hears where
    pip is (packages found, wheels saved)."""
    if not (project / "pyproject.toml").is_file() and not (project / "setup.py").is_file():
        raise BuildFailed(
            f"{project}: no pyproject.toml or setup.py, so pip cannot build the app",
            hint="Give the project a pyproject.toml (its [project] dependencies include deploykit).",
        )
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)}
    progress = PipWheel(update)
    for argv in commands(project, out, python):
        done = run_process_lines(argv, TIMEOUT, progress.line, env=env)
        if done.returncode in (124, 126, 127) and done.stderr:
            raise BuildFailed(f"pip wheel could not run: {done.stderr}")
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise BuildFailed(f"pip wheel failed (exit {done.returncode}):\n{tail}")
    wheels = sorted(p.name for p in out.glob("*.whl"))
    lock = lock_file(project)
    version = code_version((name, (out / name).read_bytes()) for name in wheels)
    return Built(out, tuple(wheels), lock.name if lock else None, version)


def code_version(wheels: Iterable[tuple[str, bytes]]) -> str:
    """A short, stable name for a set of wheels: the sha256 of their sorted names and contents."""
    digest = hashlib.sha256()
    for name, content in sorted(wheels):
        digest.update(f"{name}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()[:12]


def wheel_names(names: Sequence[str]) -> list[str]:
    return sorted(n for n in names if n.endswith(".whl"))
