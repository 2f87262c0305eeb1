"""The hook runner's own parts: the wrapper around systemd-run (run by a real /bin/sh here, with
a stand-in systemd-cat on PATH: the real systemd-run and journal are proved in
tests/realhost/test_django_profile.py), the properties each hook unit gets, and what a timeout says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploykit.apply import hooks
from deploykit.host.base import CommandResult
from deploykit.host.fake import FakeHost
from deploykit.settings.layout import code_location
from tests.conftest import settings_for

SETTINGS = settings_for(None, "deploy.code_releases=true", 'deploy.hooks.before_switch=["migrate"]',
                        "deploy.hooks.timeout=7")  # fmt: skip


def wrapped(tmp_path: Path, journal: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run the wrapper as apply does, COMMAND in place of the systemd-run line; JOURNAL: the body
    of the systemd-cat on PATH (its stdin is what the journal would get)."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "systemd-cat").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n{journal}\n')
    (fake / "systemd-cat").chmod(0o755)
    argv = ["/bin/sh", "-c", hooks.WRAPPER, "deploykit-hook", "demo-hook", *command]
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True)


def test_the_output_goes_to_the_caller_and_to_the_journal_and_the_status_comes_back(tmp_path: Path) -> None:
    done = wrapped(tmp_path, f"cat > {tmp_path}/journal", "sh", "-c", "echo one; echo two >&2; printf three; exit 7")
    assert done.stdout == f"one\ntwo\nthree\n{hooks.EXIT_MARK}7\n"
    assert (tmp_path / "journal").read_text() == "one\ntwo\nthree"  # the marker is not the hook's output
    assert (tmp_path / "args").read_text().split() == ["-t", "demo-hook", "--level-prefix=false"]


def test_a_journal_that_refuses_the_copy_costs_the_copy_only(tmp_path: Path) -> None:
    done = wrapped(tmp_path, "exit 1", "sh", "-c", "seq 1 20000; exit 0")
    lines = done.stdout.splitlines()
    assert lines[:2] == ["1", "2"] and lines[-3:] == ["20000", "", f"{hooks.EXIT_MARK}0"]


def test_each_hook_unit_is_bounded_by_the_timeout_and_stopped_soon_after() -> None:
    hook = hooks.hooks(SETTINGS, "before_switch")[0]
    argv = hooks.command(SETTINGS, hook, "/dev/null", code_location(SETTINGS, "r1"), "r1")
    assert argv[:5] == ["/bin/sh", "-c", hooks.WRAPPER, "deploykit-hook", "demo-hook"]
    props = [a.removeprefix("--property=") for a in argv if a.startswith("--property=")]
    assert "RuntimeMaxSec=7" in props
    assert [p for p in props if p.startswith("TimeoutStopSec=")] == [f"TimeoutStopSec={hooks.STOP_GRACE}"]


def test_a_hook_killed_at_its_timeout_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost()
    host.answers.insert(0, (("/bin/sh", "-c"), CommandResult(0, f"waiting for the lock\n\n{hooks.EXIT_MARK}1\n")))
    clock = iter([100.0, 107.2])
    monkeypatch.setattr("deploykit.apply.hooks.time.monotonic", lambda: next(clock))
    hook = hooks.hooks(SETTINGS, "before_switch")[0]
    result = hooks.run_hook(host, SETTINGS, hook, "/dev/null", code_location(SETTINGS, "r1"), "r1", lambda _l: None)
    assert not result.ok and result.timed_out
    assert hooks.failure(result, SETTINGS).splitlines()[0] == (
        "killed after 7s (deploy.hooks.timeout): waiting for the lock"
    )
