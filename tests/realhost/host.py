"""A real Debian 12 host with systemd as PID 1, in a systemd-nspawn container.

The root filesystem is built once with debootstrap and cached under
``.cache/rootfs`` (never in git); every boot is ``--ephemeral``, so each test
run starts from a clean host. Commands run through ``nsenter`` with a clean
environment (``machinectl``/``systemctl -M`` do not work on these machines).
The container has no network: wheels and files come in through read-only
bind mounts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
ROOTFS = CACHE / "rootfs"
PACKAGES = "systemd,systemd-sysv,dbus,procps,iproute2,python3,python3-venv,nginx-light,curl"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def mirror() -> str:
    for sources in Path("/etc/apt/sources.list.d").glob("*.sources"):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def ensure_rootfs() -> Path:
    """The cached Debian 12 tree, built on first use (about a minute)."""
    CACHE.mkdir(exist_ok=True)
    with (CACHE / "rootfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (ROOTFS / "usr/bin/python3").exists():
            return ROOTFS
        partial = CACHE / "rootfs-building"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(partial), mirror()],
            check=True,
            capture_output=True,
        )
        subprocess.run(["systemctl", f"--root={partial}", "mask", "systemd-networkd-wait-online.service"], check=True)
        partial.rename(ROOTFS)
    return ROOTFS


def build_wheels(target: Path) -> Path:
    """deploykit and every dependency as wheels, for an offline install in the container."""
    target.mkdir(parents=True, exist_ok=True)
    pip = [str(ROOT / ".venv/bin/python"), "-m", "pip"]
    subprocess.run([*pip, "wheel", "--quiet", "--wheel-dir", str(target), str(ROOT)], check=True, capture_output=True)
    return target


class Container:
    """A booted ephemeral container; ``run`` executes inside it."""

    def __init__(self, name: str, binds: Sequence[tuple[Path, str]], log: Path) -> None:
        self.name = name
        self.log = log
        argv = ["systemd-nspawn", "-D", str(ensure_rootfs()), "--ephemeral", "-b", "-M", name, "--register=no",
                "--keep-unit", "--private-network", "--console=read-only"]  # fmt: skip
        argv += [f"--bind-ro={host}:{inside}" for host, inside in binds]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        self.leader = self._leader()
        self._wait_running()

    def _leader(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.log.read_text()[-2000:]}")
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
            pids = out.stdout.split()
            if pids:
                return int(pids[0])
            time.sleep(0.1)
        raise RuntimeError("the container's PID 1 did not appear")

    def _wait_running(self) -> None:
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.25)
        raise RuntimeError(f"container did not finish booting (state {state!r})")

    def run(
        self, argv: Sequence[str], *, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        command = ["nsenter", "-t", str(self.leader), "-a", "env", "-i", PATH, "LANG=C.UTF-8", *argv]
        done = subprocess.run(command, capture_output=True, text=True, input=input, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def sh(self, script: str, *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-ec", script], check=check, timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def can_boot() -> str | None:
    """Why this machine cannot run the real-host layer, or None."""
    if os.geteuid() != 0:
        return "the real-host tests boot a systemd-nspawn container and need root"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (make test installs it with apt-get)"
    return None


@contextlib.contextmanager
def container(name: str, binds: Sequence[tuple[Path, str]], log: Path) -> Iterator[Container]:
    box = Container(name, binds, log)
    try:
        yield box
    finally:
        box.stop()
