"""The suite's children start with SIGINT, SIGHUP and SIGQUIT at their defaults even when the suite
itself was started with them ignored (`nohup make test &` from a script): tests/conftest.py's
pytest_configure. Without it, `deploykit logs -f` ignored the SIGINT a real-host test sent it and
`make unit` hung."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.server.harness import ROOT

PROBE = """
import subprocess


def test_child_signals() -> None:
    status = subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True, text=True, check=True)
    print("CHILD", status.stdout.split()[1])
"""


def _ignoring() -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)


def test_a_suite_started_with_signals_ignored_starts_its_children_with_the_defaults(tmp_path: Path) -> None:
    probe = ROOT / "tests" / "unit" / f"test_zz_probe_{tmp_path.name}.py"  # under tests/: its conftest applies
    probe.write_text(PROBE)
    try:
        argv = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--no-cov", str(probe)]
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120, preexec_fn=_ignoring
        )  # noqa: PLW1509 - one signal call per signal, nothing else
    finally:
        probe.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    ignored = int(next(line for line in done.stdout.splitlines() if "CHILD" in line).split()[-1], 16)
    masks = {sig.name: 1 << (sig - 1) for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)}
    assert {name: bool(ignored & mask) for name, mask in masks.items()} == dict.fromkeys(masks, False)
