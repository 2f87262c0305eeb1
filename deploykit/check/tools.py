"""Running the real validators as subprocesses (argv only, never a shell)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

INSTALL_HINTS = {
    "nginx": "install it: sudo apt-get install nginx-light (Debian/Ubuntu)",
    "systemd-analyze": "install it: sudo apt-get install systemd (Debian/Ubuntu)",
    "openssl": "install it: sudo apt-get install openssl (Debian/Ubuntu)",
}
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


@dataclass(frozen=True)
class Output:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return (self.stdout + self.stderr).strip()


def which(tool: str) -> str | None:
    return shutil.which(tool, path=SEARCH_PATH)


def run(argv: Sequence[str], *, timeout: float = 60, env: dict[str, str] | None = None) -> Output:
    """Run a tool; a missing binary is the caller's business (see ``which``)."""
    merged = {**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_COLORS": "0", "LC_ALL": "C", **(env or {})}
    proc = subprocess.run(  # noqa: S603 - argv list built from validated values
        list(argv), capture_output=True, text=True, timeout=timeout, env=merged, check=False
    )
    return Output(proc.returncode, proc.stdout, proc.stderr)
