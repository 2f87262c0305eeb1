"""The client side of ``--host ssh://``: look at a host, prepare it
(``bootstrap``), and run a command there through the agent, streaming its
output here.

Rules:
- every host is probed first (one round trip: systemd, Python, nginx, the
  venv module, deploykit's version there, the login's uid); a host that
  cannot run the command is refused before anything is written;
- the resolved settings (secrets included) go on the agent's stdin, never on
  its command line; app wheels go as a tar stream;
- several hosts run one after another; a transaction stops at the first host
  that fails (that host restored itself), and the error names it.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from deploykit.errors import DeployKitError, UsageError
from deploykit.host.ssh import SshClient, SshError
from deploykit.remote import layout
from deploykit.remote.target import SshTarget
from deploykit.settings.model import Settings
from deploykit.version import DISTRIBUTION, WHEEL_PREFIX, version

#: One line per fact, ``key=value``; $1 is deploykit's venv on the host.
PROBE = r"""
systemd=
test -d /run/systemd/system && systemd=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
echo "systemd=$systemd"
echo "python=$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
echo "nginx=$(command -v nginx)"
echo "venv=$(python3 -c 'import ensurepip, venv; print(1)' 2>/dev/null)"
echo "deploykit=$("$1/bin/python" -m deploykit --version 2>/dev/null | sed -n 's/^deploykit //p')"
echo "uid=$(id -u)"
"""
MIN_PYTHON = (3, 11)
Say = Callable[[str], None]


@dataclass(frozen=True)
class HostFacts:
    systemd: str  # systemd's version, "" when PID 1 is not systemd
    python: str  # python3's version, "" when missing
    nginx: bool
    venv_module: bool
    deploykit: str  # the version in deploykit's venv, "" when none
    root: bool

    @classmethod
    def parse(cls, text: str) -> HostFacts:
        found = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
        return cls(
            systemd=found.get("systemd", ""),
            python=found.get("python", ""),
            nginx=bool(found.get("nginx")),
            venv_module=bool(found.get("venv")),
            deploykit=found.get("deploykit", ""),
            root=found.get("uid") == "0",
        )

    def python_ok(self) -> bool:
        parts = self.python.split(".")
        return len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) and (int(parts[0]), int(parts[1])) >= MIN_PYTHON


class RemoteHost:
    """One ssh:// host: its facts, and commands run there as root (``sudo -n`` for another login)."""

    def __init__(self, target: SshTarget, client: SshClient | None = None) -> None:
        self.target = target
        self.client = client or SshClient(target)
        self._facts: HostFacts | None = None

    @property
    def facts(self) -> HostFacts:
        if self._facts is None:
            reply = self.client.call(["sh", "-c", PROBE, "probe", layout.VENV], timeout=60)
            self._facts = HostFacts.parse(reply.text)
        return self._facts

    def as_root(self, argv: Sequence[str]) -> list[str]:
        return list(argv) if self.facts.root else ["sudo", "-n", "--", *argv]

    def require_systemd(self) -> None:
        facts = self.facts
        if not facts.systemd:
            raise DeployKitError(
                f"{self.target}: systemd is not running there (no /run/systemd/system); nothing was changed",
                hint="deploykit installs systemd units: use a host booted with systemd (Debian/Ubuntu servers are).",
            )
        if not facts.python_ok():
            found = f"Python {facts.python}" if facts.python else "no python3"
            raise DeployKitError(
                f"{self.target}: {found}; deploykit needs Python {'.'.join(map(str, MIN_PYTHON))} or newer",
                hint="Install python3 there (apt install python3).",
            )

    def require_tool(self) -> None:
        """The host can run this client's commands: systemd, and the same deploykit version."""
        self.require_systemd()
        here = version()
        if self.facts.deploykit != here:
            there = f"deploykit {self.facts.deploykit}" if self.facts.deploykit else f"no deploykit in {layout.VENV}"
            raise DeployKitError(
                f"{self.target} has {there}; this client is deploykit {here}",
                hint=f"Run `deploykit bootstrap --host {self.target} --wheels DIR` first.",
            )

    def call(self, argv: Sequence[str], *, stdin: bytes = b"", what: str, timeout: float = 600) -> str:
        reply = self.client.call(self.as_root(argv), stdin=stdin, timeout=timeout)
        if reply.returncode != 0:
            output = (reply.stderr or reply.stdout).decode(errors="replace").strip().splitlines()
            raise DeployKitError(
                f"{self.target}: {what} failed: {output[-1] if output else f'exit {reply.returncode}'}"
            )
        return reply.text

    def agent(self, verb: str, app: str, args: Sequence[str], stdin: bytes) -> int:
        """Run the agent there, its output streaming through this process; its exit code."""
        proc = self.client.popen(self.as_root(layout.agent(verb, app, args)))
        assert proc.stdin is not None  # popen always opens a pipe
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ssh failed at once: its exit code says so
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise


def wheel_version(wheels: Path) -> dict[str, str]:
    """deploykit wheels in WHEELS by version (``deploykit_asgi-1.2.0-py3-none-any.whl``)."""
    found = {}
    for wheel in wheels.glob("*.whl"):
        if wheel.name.lower().startswith(WHEEL_PREFIX):
            found[wheel.name[len(WHEEL_PREFIX) :].partition("-")[0]] = wheel.name
    return found


def pack(folder: Path, pattern: str = "*.whl") -> bytes:
    """The files matching PATTERN directly in FOLDER, as an uncompressed tar (flat names)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as archive:
        for path in sorted(folder.glob(pattern)):
            if path.is_file():
                archive.add(path, arcname=path.name, recursive=False)
    return buffer.getvalue()


def bootstrap(host: RemoteHost, wheels: Path | None, *, dry_run: bool, say: Say) -> list[str]:
    """Prepare HOST for deploykit; what changed (or would, with DRY_RUN)."""
    host.require_systemd()
    facts = host.facts
    here = version()
    changes: list[str] = []
    would = "would " if dry_run else ""
    packages = [name for name, present in (("nginx", facts.nginx), ("python3-venv", facts.venv_module)) if not present]
    tool_needed = facts.deploykit != here
    if tool_needed:
        if wheels is None:
            raise UsageError(
                f"{host.target} needs deploykit {here} installed: pass --wheels DIR (or $DEPLOYKIT_WHEELS)",
                hint=f"Build them with `pip wheel --wheel-dir DIR {DISTRIBUTION}=={here}` (it and its dependencies).",
            )
        if here not in wheel_version(wheels):
            raise UsageError(
                f"--wheels {wheels}: no deploykit {here} wheel there",
                hint=f"Build them with `pip wheel --wheel-dir {wheels} {DISTRIBUTION}=={here}`.",
            )
    say(f"{host.target}: systemd {facts.systemd}, Python {facts.python}")
    if packages:
        if not dry_run:
            apt = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends"]
            try:
                host.call([*apt, *packages], what="apt-get install")
            except DeployKitError:  # a fresh server often has no package lists yet
                host.call(["apt-get", "update"], what="apt-get update")
                host.call([*apt, *packages], what="apt-get install")
        changes.append(f"{would}install {', '.join(packages)} with apt-get")
    if tool_needed:
        before = f"deploykit {facts.deploykit}" if facts.deploykit else "nothing"
        if not dry_run:
            assert wheels is not None
            unpack = 'rm -rf -- "$1" && mkdir -p -- "$1" && tar -x -C "$1" -f -'
            host.call(["sh", "-c", unpack, "unpack", layout.WHEELHOUSE], stdin=pack(wheels), what="shipping the wheels")
            host.call(["python3", "-m", "venv", layout.VENV], what=f"creating {layout.VENV}")
            pip = [f"{layout.VENV}/bin/pip", "install", "--quiet", "--no-index", "--find-links", layout.WHEELHOUSE]
            host.call([*pip, "--upgrade", f"{DISTRIBUTION}=={here}"], what="pip install")
        changes.append(f"{would}install deploykit {here} into {layout.VENV} (was {before}) from {wheels}")
    return changes


def settings_payload(settings: Settings) -> bytes:
    """The resolved settings as JSON, secrets in clear (they travel only on the channel's stdin)."""
    # only what the sources set: the host validates it again, and defaults are its own to fill in
    given = settings.model_dump(mode="python", by_alias=True, exclude_unset=True)
    return json.dumps(_reveal(given), sort_keys=True).encode()


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_reveal(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # paths and the like: their text is what TOML would hold


def run_on(
    targets: Sequence[SshTarget],
    settings: Settings,
    command: str,
    args: Sequence[str],
    *,
    app_wheels: Path | None = None,
    say: Say,
) -> int:
    """COMMAND ARGS on each target in turn; the exit code (a transaction raises on the first failed host)."""
    hosts = [RemoteHost(target) for target in targets]
    for host in hosts:  # all reachable and ready before any of them changes
        host.require_tool()
    app = settings.app.name
    payload = settings_payload(settings)
    transaction = command in layout.TRANSACTIONS
    worst = 0
    for index, host in enumerate(hosts):
        if len(hosts) > 1:
            say(f"── {host.target} ({index + 1}/{len(hosts)})")
        remote_args = list(args)
        if app_wheels is not None:
            host.call(
                layout.agent("receive", app, ["app_wheels"]), stdin=pack(app_wheels), what="shipping the wheelhouse"
            )
            remote_args += ["--wheelhouse", f"{layout.run_dir(app)}/app_wheels"]
        verb = "transact" if transaction else "run"
        code = host.agent(verb, app, [command, *remote_args], payload)
        if code == 255:
            continues = (
                f"; the {command} goes on there, and the next command reports how it ended" if transaction else ""
            )
            raise SshError(f"lost the connection to {host.target}{continues}")
        if transaction and code != 0:
            done = ", ".join(str(h.target) for h in hosts[:index])
            left = ", ".join(str(h.target) for h in hosts[index + 1 :])
            tail = (f"; {done} kept the new release" if done else "") + (f"; not started: {left}" if left else "")
            raise DeployKitError(
                f"{command} failed on {host.target} (exit {code}){tail}",
                hint=f"{host.target} put its previous state back unless its report above says otherwise; "
                f"`deploykit status --host {host.target}` shows it now.",
            )
        worst = max(worst, code)
    return worst


def describe(argv: Sequence[str]) -> str:
    """A remote argv as the shell there reads it (for messages and docs)."""
    return shlex.join(argv)
