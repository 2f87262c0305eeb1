"""A real Debian 12 host with systemd as PID 1, in a systemd-nspawn container.

The root filesystem is built once with debootstrap and cached under
``.cache/rootfs`` (never in git); every boot sees it through an overlay whose
writable layer is a tmpfs private to that boot (``Container``), so each test
run starts from a clean host and the cached tree is never written. Commands run through ``nsenter`` with a clean
environment (``machinectl``/``systemctl -M`` do not work on these machines).
By default the container has no network (loopback only): wheels and files come
in through read-only bind mounts. With a ``Veth`` it gets one point-to-point
link to this machine (a /30, the container side set by systemd-networkd), and
its sshd takes the keys bound over ``/root/.ssh/authorized_keys``: the path
Ansible uses in production (``molecule/``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
ROOTFS = CACHE / "rootfs"
PACKAGES = "systemd,systemd-sysv,dbus,procps,iproute2,python3,python3-venv,nginx-light,curl,openssh-server"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: What the cached tree was built from; a cache with another marker (or none) is rebuilt.
BUILD = f"3 {PACKAGES} networkd"
MARKER = "etc/deploykit-test-rootfs"
#: Where a boot mounts its overlay, inside a mount namespace of its own (so every boot uses the same path).
OVERLAY_MOUNT = CACHE / "overlay-mnt"
#: A tmpfs on OVERLAY_MOUNT holds the writable layer, an overlay of the cached tree on it the container's
#: root; then the shell becomes systemd-nspawn. Both go when the namespace's last process (nspawn) exits.
OVERLAY_SCRIPT = (
    'mount -t tmpfs -o mode=0755 deploykit-layer "$1"\n'
    'mkdir "$1/upper" "$1/work" "$1/root"\n'
    'mount -t overlay deploykit-layer -o "lowerdir=$2,upperdir=$1/upper,workdir=$1/work" "$1/root"\n'
    'shift 2\nexec "$@"\n'
)
#: What goes into deploykit's wheel: a change to any of these builds the cached wheels again.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "setup.py", "setup.cfg", "deploykit")
#: The /30 links of ``Veth`` containers come from here (not routed anywhere else).
VETH_NET = ipaddress.IPv4Network("10.213.0.0/16")


def mirror() -> str:
    for sources in Path("/etc/apt/sources.list.d").glob("*.sources"):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def ensure_rootfs() -> Path:
    """The cached Debian 12 tree, built on first use (about a minute) or when
    the cache was built from other packages (e.g. before sshd was added)."""
    CACHE.mkdir(exist_ok=True)
    with (CACHE / "rootfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_stale()
        marker = ROOTFS / MARKER
        if marker.is_file() and marker.read_text() == BUILD:
            return ROOTFS
        partial = CACHE / "rootfs-building"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(partial), mirror()],
            check=True,
            capture_output=True,
        )
        systemctl = ["systemctl", f"--root={partial}"]
        # Only a Veth container has a link for networkd to configure; the others keep loopback only.
        subprocess.run([*systemctl, "enable", "systemd-networkd.service"], check=True, capture_output=True)
        # (the generator, enabled with networkd, reads a kernel command line a container lacks, and fails)
        masked = ["systemd-networkd-wait-online.service", "systemd-network-generator.service"]
        subprocess.run([*systemctl, "mask", *masked], check=True, capture_output=True)
        (partial / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
        (partial / MARKER).write_text(BUILD)
        if ROOTFS.exists():  # an older cache: set aside (a container may be copying it), removed later
            ROOTFS.rename(CACHE / f"rootfs-stale-{os.getpid()}-{time.time_ns()}")
        partial.rename(ROOTFS)
        _remove_stale()
    return ROOTFS


def _remove_stale() -> None:
    """Old caches, once no container uses one: no ephemeral copy (``.#machine.*``) is being made
    or used, and no systemd-nspawn runs on an overlay of the cache (which may be an old tree)."""
    stale = list(CACHE.glob("rootfs-stale-*"))
    if not stale or any(CACHE.glob(".#machine.*")) or _overlay_in_use():
        return
    for tree in stale:
        shutil.rmtree(tree, ignore_errors=True)


def _overlay_in_use() -> bool:
    mount = str(OVERLAY_MOUNT).encode()
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"systemd-nspawn") and any(arg.startswith(mount) for arg in argv):
            return True
    return False


def overlay_boot(rootfs: Path) -> list[str] | None:
    """The argv that boots ROOTFS through a tmpfs overlay (to be followed by systemd-nspawn's argv,
    with ``-D`` at ``OVERLAY_MOUNT/root``), or None where that cannot work (then ``--ephemeral``:
    a full copy of the tree per boot, 15 s on an idle machine and over 30 s on a loaded one).
    Overlay options are split on ``,`` and ``:``, so a path holding one cannot be a lower layer."""
    if shutil.which("unshare") is None or any(c in str(rootfs) + str(OVERLAY_MOUNT) for c in ",:"):
        return None
    OVERLAY_MOUNT.mkdir(exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", OVERLAY_SCRIPT, "sh",
            str(OVERLAY_MOUNT), str(rootfs)]  # fmt: skip


def build_wheels(target: Path, extras: str = "") -> Path:
    """deploykit (with EXTRAS, e.g. "[acme]") and every dependency as wheels, for an offline install
    in the container: copied from ``.cache/wheels-*``, built there first when deploykit's sources
    (``WHEEL_SOURCES``) changed since the last build (about 30 s on a loaded machine, each module
    of the real-host layer and make test-fleet used to pay it)."""
    target.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(exist_ok=True)
    slug = extras.strip("[]").replace(",", "-") or "core"
    cached = CACHE / f"wheels-{slug}-{wheel_key(extras)}"
    with (CACHE / "wheels.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.is_dir():
            partial = CACHE / "wheels-building"
            shutil.rmtree(partial, ignore_errors=True)
            pip = [str(ROOT / ".venv/bin/python"), "-m", "pip"]
            argv = [*pip, "wheel", "--quiet", "--wheel-dir", str(partial), f"{ROOT}{extras}"]
            subprocess.run(argv, check=True, capture_output=True)
            for old in CACHE.glob(f"wheels-{slug}-*"):  # built from older sources
                shutil.rmtree(old, ignore_errors=True)
            partial.rename(cached)
        for wheel in cached.iterdir():
            shutil.copy2(wheel, target / wheel.name)
    return target


def wheel_key(extras: str) -> str:
    """A digest of EXTRAS and every file of ``WHEEL_SOURCES`` (bytecode caches aside)."""
    digest = hashlib.sha256(extras.encode() + b"\0")
    for source in WHEEL_SOURCES:
        top = ROOT / source
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Veth:
    """A point-to-point link to one container: ``host`` is this machine's end
    (on ``ve-NAME``), ``address`` the container's (on ``host0``)."""

    host: ipaddress.IPv4Interface
    address: ipaddress.IPv4Interface

    @classmethod
    def free(cls, seed: int, taken: Sequence[Veth] = ()) -> Veth:
        """A /30 from VETH_NET that no interface here (nor TAKEN) uses yet, searched
        from SEED (e.g. the pid, so concurrent test sessions start far apart)."""
        shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
        used = {ipaddress.IPv4Interface(word).network for word in shown.split() if word[:1].isdigit() and "/" in word}
        used |= {veth.host.network for veth in taken}
        subnets = list(VETH_NET.subnets(new_prefix=30))
        for step in range(len(subnets)):
            net = subnets[(seed + step) % len(subnets)]
            if net not in used:
                first, second = list(net.hosts())
                return cls(ipaddress.IPv4Interface(f"{first}/30"), ipaddress.IPv4Interface(f"{second}/30"))
        raise RuntimeError(f"no free /30 left in {VETH_NET}")

    def networkd_unit(self) -> str:
        return f"[Match]\nName=host0\n\n[Network]\nAddress={self.address}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"


class Container:
    """A booted ephemeral container; ``run`` executes inside it.

    Without ``veth`` it has loopback only (``--private-network``). With one it
    gets ``--network-veth``: the host end is configured here, the container end
    by a networkd unit bound in, and ``authorized_keys`` (a public key file) is
    bound over root's. ``detach`` starts nspawn in its own session, so it
    outlives the process that booted it (see ``stop_pid``)."""

    def __init__(
        self,
        name: str,
        binds: Sequence[tuple[Path, str]],
        log: Path,
        *,
        veth: Veth | None = None,
        authorized_keys: Path | None = None,
        detach: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.veth = veth
        rootfs = ensure_rootfs()
        overlay = overlay_boot(rootfs)
        if overlay is None:
            argv = ["systemd-nspawn", "-D", str(rootfs), "--ephemeral"]
        else:
            argv = [*overlay, "systemd-nspawn", "-D", str(OVERLAY_MOUNT / "root")]
        argv += ["-b", "-M", name, "--register=no", "--keep-unit", "--console=read-only"]
        binds = list(binds)
        if veth is None:
            argv.append("--private-network")
        else:
            if len(f"ve-{name}") > 15:
                raise ValueError(f"machine name {name!r} is too long for the ve-NAME interface (12 characters at most)")
            unit = log.with_name(f"{name}-host0.network")
            unit.write_text(veth.networkd_unit())
            argv.append("--network-veth")
            binds.append((unit, "/etc/systemd/network/10-host0.network"))
        if authorized_keys is not None:
            binds.append((authorized_keys, "/root/.ssh/authorized_keys"))
        argv += [f"--bind-ro={host}:{inside}" for host, inside in binds]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=detach
            )
        try:
            self.leader = self._leader()
            if veth is not None:
                self._link_host_end(veth)
            self._wait_running()
        except BaseException:
            self.stop()  # a boot that failed half-way leaves no container running
            raise

    def _link_host_end(self, veth: Veth) -> None:
        link = f"ve-{self.name}"
        deadline = time.monotonic() + 30
        while subprocess.run(["ip", "link", "show", link], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{link} did not appear")
            time.sleep(0.1)
        subprocess.run(["ip", "addr", "add", str(veth.host), "dev", link], check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", link, "up"], check=True, capture_output=True)

    def _leader(self) -> int:
        # --ephemeral (where no overlay can be used) copies the cached tree first (about 15 s here,
        # much longer on a loaded machine)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.log.read_text()[-2000:]}")
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
            for pid in out.stdout.split():  # the child that is PID 1 of its own namespace, not a helper nspawn forked
                if _is_namespace_init(int(pid)):
                    return int(pid)
            time.sleep(0.1)
        raise RuntimeError("the container's PID 1 did not appear")

    def _wait_running(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout  # a bound, not a speed claim: boots crawl when the machine is busy
        state = ""
        while time.monotonic() < deadline:
            self._check_alive("while booting")
            try:
                state = self.run(["systemctl", "is-system-running"], check=False, timeout=10).stdout.strip()
            except subprocess.TimeoutExpired:
                state = "(no answer in 10 s)"
            if state in ("running", "degraded"):
                return
            time.sleep(0.25)
        self._check_alive("while booting")
        raise RuntimeError(f"container {self.name} did not finish booting in {timeout:.0f} s (state {state!r})")

    def _check_alive(self, when: str) -> None:
        """A container that halted (its systemd-nspawn exited) fails at once, with its console's last lines."""
        code = self.proc.poll()
        if code is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"container {self.name} halted {when} (systemd-nspawn exited {code}):\n{tail}")

    def command(self, argv: Sequence[str]) -> list[str]:
        """ARGV run inside the container with a clean environment (for run, or a Popen of its own)."""
        return ["nsenter", "-t", str(self.leader), "-a", "env", "-i", PATH, "LANG=C.UTF-8", *argv]

    def run(
        self, argv: Sequence[str], *, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(argv), capture_output=True, text=True, input=input, timeout=timeout, check=False
        )
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


def _is_namespace_init(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
    return len(nspid) > 1 and nspid[-1] == "1"


def stop_pid(pid: int, name: str, timeout: float = 30) -> None:
    """Stop the detached systemd-nspawn PID that runs machine NAME (as ``Container.stop``),
    from any process; a pid that is gone or now something else is left alone.

    The process may be this one's own child (``fleet.up`` stopping what it booted when
    something failed): once it exits it stays a zombie, and ``/proc/PID`` with it, until
    it is reaped, so it is reaped here, and a zombie counts as gone. Bounded: a process
    still there ``timeout`` seconds after SIGKILL is an error."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if not cmdline[0].endswith(b"systemd-nspawn") or name.encode() not in cmdline:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = False
    while not _gone(pid):
        if time.monotonic() > deadline:
            if killed:
                raise RuntimeError(f"systemd-nspawn {pid} (machine {name}) still runs {timeout:.0f} s after SIGKILL")
            os.kill(pid, signal.SIGKILL)
            killed = True
            deadline = time.monotonic() + timeout
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    """PID has exited: reaped here if it is this process's child, or a zombie its parent has not reaped yet."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:  # not this process's child
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].startswith(("Z", "X"))


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
