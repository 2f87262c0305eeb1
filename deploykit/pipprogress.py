"""Where a running pip is, read from its output lines: what the progress of a wheel install
(apply) and of a wheelhouse build (``deploykit build``) shows.

pip prints no line per package while it installs, so an install counts the wheels pip has
read (``Processing …``, n of N) and then shows the install itself as one phase; a build counts
the packages pip has found and the wheels it has saved. Lines it does not know are ignored:
a pip that words them differently shows less progress, never a wrong result."""

from __future__ import annotations

import re
from typing import Protocol


class Update(Protocol):
    def __call__(self, phase: str, done: float | None = None, total: float | None = None) -> None: ...


_BUILDING = re.compile(r"Building wheel for (\S+)(?!.*: finished)")
_COLLECTED = "Installing collected packages:"


class PipInstall:
    """``pip install`` of TOTAL wheels, line by line."""

    def __init__(self, update: Update, total: int) -> None:
        self.update, self.total, self.read = update, total, 0

    def line(self, line: str) -> None:
        text = line.strip()
        if text.startswith("Processing "):
            self.read = min(self.read + 1, self.total)
            self.update("reading the wheels", self.read, self.total)
        elif text.startswith(_COLLECTED):
            count = len([n for n in text[len(_COLLECTED) :].split(",") if n.strip()])
            self.update(f"installing {count} package{'s' if count != 1 else ''}")


class PipWheel:
    """``pip wheel``, line by line: packages found, then wheels built and saved."""

    def __init__(self, update: Update) -> None:
        self.update, self.found, self.saved = update, 0, 0

    def line(self, line: str) -> None:
        text = line.strip()
        if text.startswith(("Collecting ", "Processing ")):
            self.found += 1
            self.update("resolving", self.found)
        elif building := _BUILDING.match(text):
            self.update(f"building the wheel of {building.group(1)}", self.saved, self.found)
        elif text.startswith(("Saved ", "Created wheel for ")):
            self.saved += 1
            self.update("saving wheels", self.saved, max(self.found, self.saved))


def ignore(phase: str, done: float | None = None, total: float | None = None) -> None:
    """An Update that shows nothing."""
