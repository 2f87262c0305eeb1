"""The progress seam (console.Activity / console.step / StepLines): a redrawing rich line on a
terminal, plain stable lines elsewhere (a pipe, a log, CI). The terminal path also runs for real
under a pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest
from rich.console import Console

from deploykit import console
from deploykit.apply.report import Step

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal() -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=True, width=120, color_system="standard"), sink


def plain() -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=False, width=120), sink


@pytest.fixture(autouse=True)
def not_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERM", raising=False)


def test_off_a_terminal_each_phase_is_one_line_and_counts_stay_out() -> None:
    screen, sink = plain()
    with console.step("install the release", screen) as activity:
        for done in range(4):
            activity.update("reading the wheels", done, 3)
        activity.update("installing 3 packages")
        activity.update("compiling")
    assert sink.getvalue() == (
        "  … install the release: reading the wheels\n"
        "  … install the release: installing 3 packages\n"
        "  … install the release: compiling\n"
    )


def test_on_a_terminal_the_bar_shows_n_of_n_and_is_gone_when_the_step_ends() -> None:
    screen, sink = terminal()
    with console.step("install the release", screen) as activity:
        activity.update("reading the wheels", 2, 3)
        drawn = ANSI.sub("", sink.getvalue())
        assert "install the release: reading the wheels" in drawn
        assert "2/3" in drawn and "━" in drawn  # the bar and the count
        activity.update("installing 3 packages")
        assert "installing 3 packages" in ANSI.sub("", sink.getvalue())
    tail = sink.getvalue().rsplit("installing 3 packages", 1)[1]
    assert "\x1b[2K" in tail  # transient: the live line is erased when the step ends


def test_a_timed_wait_shows_seconds_waited_of_the_timeout() -> None:
    screen, sink = terminal()
    with console.step("health", screen) as activity:
        activity.update("waiting for an answer", total=30, timed=True)
        assert "0s of 30s" in ANSI.sub("", sink.getvalue())


def test_ci_and_dumb_terminals_get_the_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    screen, sink = terminal()
    monkeypatch.setenv("CI", "true")
    assert not console.live(screen)
    with console.step("build", screen) as activity:
        activity.update("resolving", 3)
    assert ANSI.sub("", sink.getvalue()) == "  … build: resolving\n"
    monkeypatch.delenv("CI")
    assert console.live(screen)
    monkeypatch.setenv("TERM", "dumb")
    assert not console.live(Console(file=io.StringIO(), force_terminal=True))


def test_apply_step_lines_end_each_step_with_one_result_line_in_both_modes() -> None:
    for make, live in ((plain, False), (terminal, True)):
        screen, sink = make()
        lines = console.StepLines(screen)
        lines.start("prepare the host")
        lines.update("reading the wheels", 1, 2)
        lines.output("a hook said this")
        lines.done(Step("prepare the host", "ok", "installed 2 wheel(s)", 1.5))
        text = ANSI.sub("", sink.getvalue())
        assert "│ a hook said this" in text
        assert text.rstrip("\n").endswith("✓ prepare the host installed 2 wheel(s) (1.50s)")
        assert ("1/2" in text) is live


SCRIPT = """
import sys, time
from deploykit import console
with console.step("install the release") as activity:
    for done in range(1, 4):
        activity.update("reading the wheels", done, 3)
        time.sleep(0.05)
    activity.update("installing 3 packages")
print("finished", file=sys.stderr)
"""


def run_under_pty() -> str:
    """SCRIPT with stderr (where console.step draws) a real pseudo-terminal."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")} | {"TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(10)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_real_terminal_gets_the_live_bar_and_a_pipe_gets_plain_lines() -> None:
    drawn = run_under_pty()
    assert "\x1b[" in drawn  # drawn with escape sequences
    text = ANSI.sub("", drawn)
    assert "3/3" in text and "installing 3 packages" in text and "finished" in text
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    piped = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True)
    assert piped.stderr == (
        "  … install the release: reading the wheels\n  … install the release: installing 3 packages\nfinished\n"
    )


def test_a_phase_without_a_total_drops_the_last_phases_bar_and_count() -> None:
    screen, sink = terminal()
    with console.step("install the release", screen) as activity:
        activity.update("reading the wheels", 3, 3)
        activity.update("installing 3 packages")
        last = ANSI.sub("", sink.getvalue()).replace("\r", "\n").splitlines()
        drawn = [line for line in last if "installing 3 packages" in line][-1]
    assert "3/3" not in drawn and "━" not in drawn
