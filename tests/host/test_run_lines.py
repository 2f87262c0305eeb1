"""Host.run_lines: a real command's output lines arrive while it runs (what a long step's progress
reads), with run's exit status, a hang ended at the timeout, a missing program exit 127."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from deploykit.host.base import CommandResult
from deploykit.host.fake import FakeHost
from deploykit.host.local import LocalHost
from deploykit.host.rooted import run_process_lines
from deploykit.host.staging import StagingHost

# prints a line, then waits until the test has seen it (the file appears), then fails on stderr
WAITS = """
import os, sys, time
print("first", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
print("to stderr", file=sys.stderr, flush=True)
sys.exit(3)
"""


def test_lines_arrive_while_the_command_runs_with_its_exit_status(tmp_path: Path) -> None:
    flag = tmp_path / "seen"
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        flag.touch()  # the command goes on only once this line got here

    result = LocalHost().run_lines([sys.executable, "-c", WAITS, str(flag)], on_line=on_line, timeout=60)
    assert seen == ["first", "to stderr"]
    assert result.returncode == 3 and result.stdout == "first\nto stderr\n"


def test_a_hang_ends_at_the_timeout_with_what_came_before() -> None:
    started = time.monotonic()
    hang = "import time; print('started', flush=True); time.sleep(60)"
    # 5 s: the interpreter must start and print first; under the suite's coverage and three busy workers
    # that alone took over 1 s in a fresh clone's run.
    result = run_process_lines([sys.executable, "-c", hang], 5, lambda _line: None)
    assert result.returncode == 124 and result.stdout == "started\n" and "no answer in 5s" in result.stderr
    assert time.monotonic() - started < 30


def test_a_missing_program_is_exit_127() -> None:
    result = run_process_lines(["/nonexistent/pip"], 5, lambda _line: None)
    assert result.returncode == 127 and "not found" in result.stderr


def test_a_staging_root_records_the_command_and_runs_nothing(tmp_path: Path) -> None:
    host = StagingHost(tmp_path)
    result = host.run_lines(["pip", "install", "x"], on_line=lambda _line: None)
    assert host.commands == [["pip", "install", "x"]] and result.returncode == -1


def test_the_fake_host_hands_its_answer_line_by_line() -> None:
    host = FakeHost()
    seen: list[str] = []
    host.answers.append((("pip",), CommandResult(0, "a\nb\n")))
    assert host.run_lines(["pip", "install"], on_line=seen.append).ok and seen == ["a", "b"]
