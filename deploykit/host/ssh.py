"""The system ``ssh`` client, multiplexed: one TCP connection and one login
per host for a whole command (ControlMaster/ControlPersist), so
``~/.ssh/config``, the agent, ``known_hosts``, ``ProxyJump`` and certificates
work exactly as they do for the user's own ``ssh``.

Rules:
- a remote command is always an argv list, joined with ``shlex.join`` here
  and nowhere else: ssh hands the remote login shell one string, and every
  word of it is quoted;
- secrets never travel as arguments: callers send them on stdin;
- host-key checking is forced on (``StrictHostKeyChecking=yes``) and
  ``BatchMode=yes`` never prompts: an unknown or changed key, a refused login
  or an unreachable host becomes one ``SshError`` line naming the host (and
  the key's fingerprint);
- ``$DEPLOYKIT_SSH_CONFIG`` names another ssh_config file (``-F``), e.g. a
  CI runner's; the control sockets live in ``$DEPLOYKIT_SSH_CONTROL_DIR`` or
  a private folder under the temp dir.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploykit.errors import DeployKitError
from deploykit.remote.target import SshTarget

CONFIG_ENV = "DEPLOYKIT_SSH_CONFIG"
CONTROL_ENV = "DEPLOYKIT_SSH_CONTROL_DIR"
#: How long the shared connection outlives the last command (seconds).
PERSIST = 60
_FINGERPRINT = re.compile(r"Server host key: (\S+) (SHA256:\S+)")


class SshError(DeployKitError):
    """ssh itself failed: the host key, the login, or the connection."""


@dataclass(frozen=True)
class Reply:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


def control_dir(environ: Mapping[str, str]) -> Path:
    given = environ.get(CONTROL_ENV)
    folder = Path(given) if given else Path(tempfile.gettempdir()) / f"deploykit-ssh-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise SshError(
            f"{folder} (ssh control sockets) must be private to this user",
            hint=f"Remove it, or point ${CONTROL_ENV} at a folder only you can read.",
        )
    return folder


class SshClient:
    """ssh to one target; ``argv`` builds the command lines, ``call``/``popen`` run them."""

    def __init__(self, target: SshTarget, environ: Mapping[str, str] | None = None) -> None:
        self.target = target
        self.environ = os.environ if environ is None else environ
        self._control: Path | None = None
        self._connected = False

    def options(self, *, multiplex: bool = True, master: bool = False) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=15"]
        config = self.environ.get(CONFIG_ENV)
        if config:
            opts[:0] = ["-F", config]
        if multiplex:
            if self._control is None:
                self._control = control_dir(self.environ)
            opts += ["-o", f"ControlPath={self._control}/%C"]
            # only `connect` starts the shared connection: a master backgrounded by a call would keep
            # that call's output pipes open; the others use it when it is there, or connect on their own
            opts += (
                ["-o", "ControlMaster=auto", "-o", f"ControlPersist={PERSIST}"]
                if master
                else ["-o", "ControlMaster=no"]
            )
        else:
            opts += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        if self.target.user:
            opts += ["-l", self.target.user]
        if self.target.port is not None:
            opts += ["-p", str(self.target.port)]
        return opts

    def argv(self, remote: Sequence[str], *, multiplex: bool = True, extra: Sequence[str] = ()) -> list[str]:
        """The local ssh command line that runs REMOTE (an argv) on the target, every word quoted."""
        return ["ssh", *self.options(multiplex=multiplex), *extra, "--", self.target.host, shlex.join(remote)]

    def master_argv(self) -> list[str]:
        """The command line that logs in once and keeps the shared connection in the background."""
        return ["ssh", *self.options(master=True), "-f", "-N", "--", self.target.host]

    def connect(self) -> None:
        """Log in (once per client) and keep the connection for the calls that follow; SshError when refused."""
        if self._connected:
            return
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: the backgrounded master keeps it open
            try:
                code = subprocess.run(
                    self.master_argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    timeout=120,
                    check=False,
                ).returncode
            except FileNotFoundError as exc:
                raise SshError(
                    "the ssh client is not installed", hint="Install OpenSSH's client (apt install openssh-client)."
                ) from exc
            except subprocess.TimeoutExpired as exc:
                raise SshError(f"ssh: no answer from {self.target} within 120s") from exc
            if code != 0:
                errors.seek(0)
                raise self.explain(errors.read().decode(errors="replace"))
        self._connected = True

    def call(self, remote: Sequence[str], *, stdin: bytes = b"", timeout: float = 300) -> Reply:
        """Run REMOTE, feeding STDIN; ssh's own failures (exit 255) raise SshError."""
        self.connect()
        try:
            done = subprocess.run(self.argv(remote), input=stdin, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise SshError(f"{self.target}: {remote[0]} did not finish within {timeout:.0f}s") from exc
        if done.returncode == 255:
            raise self.explain(done.stderr.decode(errors="replace"))
        return Reply(done.returncode, done.stdout, done.stderr)

    def popen(self, remote: Sequence[str]) -> subprocess.Popen[bytes]:
        """REMOTE with stdin a pipe and stdout/stderr shared with this process (output streams through)."""
        self.connect()
        return subprocess.Popen(self.argv(remote), stdin=subprocess.PIPE)

    def explain(self, stderr: str) -> SshError:
        """One clear error for ssh's exit 255, from what it printed."""
        where = str(self.target)
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else "no message"
        if "Host key verification failed" in stderr or "host key for" in stderr.lower():
            changed = "HAS CHANGED" in stderr or "REMOTE HOST IDENTIFICATION" in stderr
            kind, fingerprint = self.fingerprint()
            key = f"{kind} key {fingerprint}" if fingerprint else "its key"
            if changed:
                return SshError(
                    f"ssh: the host key of {self.target.host} has CHANGED (it now offers {key}); refusing to connect",
                    hint="If the server was rebuilt, check the fingerprint out of band, then "
                    f"`ssh-keygen -R {self.target.host}` and connect once with ssh to record the new key.",
                )
            return SshError(
                f"ssh: the host key of {self.target.host} is not known ({key}); refusing to connect",
                hint=f"Check the fingerprint with the server's owner, then add it to known_hosts "
                f"(e.g. `ssh {self.target.login}` once, and compare).",
            )
        if "Permission denied" in stderr or "Too many authentication failures" in stderr:
            return SshError(
                f"ssh: {self.target.login} refused the login ({last})",
                hint="Check the user in the URL, and that your key (or agent) is accepted there.",
            )
        return SshError(f"ssh: cannot reach {where}: {last}", hint="Check the host name, port and network.")

    def fingerprint(self) -> tuple[str, str]:
        """The key type and SHA256 fingerprint the host offers (read from ``ssh -v``; no login happens)."""
        argv = self.argv(["true"], multiplex=False, extra=["-v"])
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired):
            return "", ""
        found = _FINGERPRINT.search(done.stderr)
        if found is None:
            return "", ""
        return found.group(1).removeprefix("ssh-").upper(), found.group(2)

    def close(self) -> None:
        """Stop the shared connection (when one was started)."""
        if not self._connected:
            return
        self._connected = False
        argv = ["ssh", *self.options(), "-O", "exit", "--", self.target.host]
        subprocess.run(argv, capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
