"""The molecule hosts' helpers (fleet.py, host.py) end every wait and report
every failure: `fleet up` once hung for good after one host failed to boot
(it stopped the other host, its own child, then waited for the zombie to
leave /proc). These run without root: they stand in small processes for
systemd-nspawn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.realhost import fleet, host


def fake_nspawn(machine: str, setup: str = "") -> subprocess.Popen[bytes]:
    """A child of this process whose command line reads like the systemd-nspawn of MACHINE; returned
    once it has run SETUP (e.g. ignore SIGTERM) and sleeps. (A fixed 0.3 s wait for that lost the race
    on a loaded machine: SIGTERM's default action killed an interpreter not yet past SETUP.)"""
    script = f"{setup}\nimport time\nprint('ready', flush=True)\ntime.sleep(60)"
    argv = ["/usr/bin/systemd-nspawn", "-c", script, "-M", machine]
    proc = subprocess.Popen(argv, executable=sys.executable, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    with proc.stdout:
        ready = proc.stdout.readline()  # "" if it died first: then the assert says so
    assert ready == b"ready\n", f"the stand-in for systemd-nspawn exited ({proc.wait()}) before it was ready"
    return proc


def test_stop_pid_returns_when_its_own_child_exits() -> None:
    """The child exits on SIGTERM and stays a zombie until reaped: stop_pid must not wait for it to leave /proc."""
    proc = fake_nspawn("dktesta")  # takes SIGTERM's default action
    stopper = threading.Thread(target=host.stop_pid, args=(proc.pid, "dktesta"), kwargs={"timeout": 1}, daemon=True)
    started = time.monotonic()
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive(), "stop_pid still waits for a child that has exited"
    assert time.monotonic() - started < 5
    assert not Path(f"/proc/{proc.pid}").exists()  # reaped, not left a zombie
    assert proc.wait(1) == 0  # (Popen learns it is gone: ECHILD)


def test_stop_pid_leaves_other_processes_alone() -> None:
    proc = fake_nspawn("dktestb")
    try:
        host.stop_pid(proc.pid, "dktestother")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stop_pid_gives_up_on_a_process_that_survives_sigkill(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bounded wait with a clear error, never a loop (here SIGKILL is made a no-op)."""
    proc = fake_nspawn("dktestc", "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    real_kill = os.kill
    try:
        with (
            monkeypatch.context() as patch,
            pytest.raises(RuntimeError, match=r"dktestc\) still runs 0 s after SIGKILL"),
        ):
            patch.setattr(os, "kill", lambda pid, sig: None if sig == signal.SIGKILL else real_kill(pid, sig))
            host.stop_pid(proc.pid, "dktestc", timeout=0.3)
    finally:
        proc.kill()
        proc.wait()


def test_a_container_that_halts_while_booting_fails_at_once(tmp_path: Path) -> None:
    box = object.__new__(host.Container)
    box.name = "dktestd"
    box.log = tmp_path / "console.log"
    box.log.write_text("Powering off.\n")
    box.proc = subprocess.Popen(["true"])
    box.proc.wait()
    started = time.monotonic()
    with pytest.raises(
        RuntimeError, match=r"(?s)container dktestd halted while booting \(systemd-nspawn exited 0\).*Powering off"
    ):
        box._wait_running(timeout=30)
    assert time.monotonic() - started < 5


def test_fleet_up_reports_every_failed_host_and_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One host halts while booting, the other boots: up stops the one that booted and names the one that failed."""
    stopped: list[str] = []

    class Box:
        def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
            if name.endswith("a"):
                raise RuntimeError(f"container {name} halted while booting (systemd-nspawn exited 0)")
            self.name, self.leader, self.proc = name, 1, subprocess.Popen(["true"])
            self.proc.wait()

    monkeypatch.setattr(fleet, "can_boot", lambda: None)
    monkeypatch.setattr(fleet, "ensure_rootfs", lambda: tmp_path)
    monkeypatch.setattr(fleet, "ssh_key", lambda state: state / "id_ed25519")
    monkeypatch.setattr(fleet, "stage", lambda target: None)
    monkeypatch.setattr(fleet, "wait_for_ssh", lambda address, key: None)
    monkeypatch.setattr(fleet, "Container", Box)
    monkeypatch.setattr(fleet, "stop_pid", lambda pid, name: stopped.append(name))
    with pytest.raises(RuntimeError) as failed:
        fleet.up(tmp_path, ["host1", "host2"])
    message = str(failed.value)
    assert "host1: RuntimeError: container dk" in message and "halted while booting" in message
    assert "host2" not in message
    assert len(stopped) == 1 and stopped[0].endswith("b")
    assert not list(tmp_path.glob("machine-*.json"))
