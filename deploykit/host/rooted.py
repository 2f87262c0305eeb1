"""File operations on a host whose ``/`` is a directory here: ``/`` itself
(the local machine), a staging tree, or ``/proc/PID/root`` of a container.
Owner names are resolved from that root's own ``/etc/passwd`` and
``/etc/group`` (through NSS when the root is ``/``), so a container's users
are its own."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from deploykit.errors import DeployKitError, Locked
from deploykit.host.base import CommandResult, FileFacts


class RootedHost:
    """The file half of the Host protocol, under ROOT. Subclasses add ``run``."""

    tracks_owners = True
    runs_commands = True

    def __init__(self, root: Path, accounts: Path | None = None) -> None:
        self.root = root
        #: whose /etc/passwd and /etc/group name owners ("/" means this machine's NSS)
        self.accounts = root if accounts is None else accounts

    def local(self, path: str) -> Path:
        """Where host path PATH lies on this machine."""
        return self.root / path.lstrip("/")

    # reading
    def read(self, path: str) -> FileFacts | None:
        target = self.local(path)
        try:
            info = target.stat()
            content = target.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeployKitError(f"cannot read {path}: {exc.strerror}") from exc
        return FileFacts(content, stat.S_IMODE(info.st_mode), self.user_name(info.st_uid), self.group_name(info.st_gid))

    def link_target(self, path: str) -> str | None:
        target = self.local(path)
        return os.readlink(target) if target.is_symlink() else None

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.local(path)))
        except FileNotFoundError:
            return []

    # writing
    def write(self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root") -> None:
        target = self.local(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(content)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._own(tmp, owner, group)
                os.chmod(tmp, mode)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(target.parent)
        except OSError as exc:
            raise DeployKitError(f"cannot write {path}: {exc.strerror}") from exc

    def symlink(self, link: str, target: str) -> None:
        where = self.local(link)
        tmp = where.with_name(f".{where.name}.deploykit-link")
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            os.replace(tmp, where)
        except OSError as exc:
            raise DeployKitError(f"cannot link {link} -> {target}: {exc.strerror}") from exc

    def remove(self, path: str) -> None:
        try:
            self.local(path).unlink(missing_ok=True)
        except OSError as exc:
            raise DeployKitError(f"cannot remove {path}: {exc.strerror}") from exc

    def make_dir(self, path: str, *, mode: int, owner: str = "root", group: str = "root") -> bool:
        target = self.local(path)
        if target.is_dir():
            return False
        try:
            target.mkdir(parents=True)
            self._own(str(target), owner, group)
            os.chmod(target, mode)
        except OSError as exc:
            raise DeployKitError(f"cannot create {path}: {exc.strerror}") from exc
        return True

    def set_mode(self, path: str, mode: int) -> None:
        try:
            os.chmod(self.local(path), mode)
        except OSError as exc:
            raise DeployKitError(f"cannot change the mode of {path}: {exc.strerror}") from exc

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(self.local(path), ignore_errors=True)

    @contextlib.contextmanager
    def lock(self, path: str) -> Iterator[None]:
        target = self.local(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fh = target.open("a")
        except OSError as exc:  # e.g. the lock path is a directory, or state_dir is a file
            raise DeployKitError(
                f"cannot open the deploy lock {path}: {exc.strerror}",
                hint="It must be a regular file (deploykit creates it); move away what is in its place.",
            ) from exc
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise Locked(f"another deploykit apply holds {path}") from exc
                raise DeployKitError(f"cannot lock {path}: {exc.strerror}") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # owners
    def _own(self, path: str, owner: str, group: str) -> None:
        if not self.tracks_owners:
            return
        uid, gid = self.user_id(owner), self.group_id(group)
        os.chown(path, uid, gid)

    def _table(self, name: str) -> list[list[str]]:
        try:
            text = (self.accounts / "etc" / name).read_text(encoding="utf-8")
        except OSError:
            return []
        return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]

    def user_id(self, name: str) -> int:
        if self.accounts == Path("/"):
            return _lookup(lambda: pwd.getpwnam(name).pw_uid, "user", name)
        return _lookup(lambda: next(int(row[2]) for row in self._table("passwd") if row[0] == name), "user", name)

    def group_id(self, name: str) -> int:
        if self.accounts == Path("/"):
            return _lookup(lambda: grp.getgrnam(name).gr_gid, "group", name)
        return _lookup(lambda: next(int(row[2]) for row in self._table("group") if row[0] == name), "group", name)

    def user_name(self, uid: int) -> str:
        if self.accounts == Path("/"):
            return _name(lambda: pwd.getpwuid(uid).pw_name, uid)
        return _name(lambda: next(row[0] for row in self._table("passwd") if row[2] == str(uid)), uid)

    def group_name(self, gid: int) -> str:
        if self.accounts == Path("/"):
            return _name(lambda: grp.getgrgid(gid).gr_name, gid)
        return _name(lambda: next(row[0] for row in self._table("group") if row[2] == str(gid)), gid)


def _lookup(find: Callable[[], int], what: str, name: str) -> int:
    try:
        return int(find())
    except (KeyError, StopIteration) as exc:
        raise DeployKitError(f"no {what} named {name!r} on the host") from exc


def _name(find: Callable[[], str], ident: int) -> str:
    try:
        return str(find())
    except (KeyError, StopIteration):
        return str(ident)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_process(argv: Sequence[str], timeout: float) -> CommandResult:
    """Run ARGV here, capturing text output; a missing program is exit 127, a hang exit 124."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except FileNotFoundError:
        return CommandResult(127, stderr=f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return CommandResult(124, stderr=f"{argv[0]}: no answer in {timeout:g}s")
    return CommandResult(done.returncode, done.stdout, done.stderr)


def run_process_lines(
    argv: Sequence[str], timeout: float, on_line: Callable[[str], None], env: Mapping[str, str] | None = None
) -> CommandResult:
    """``run_process`` with each output line (stdout and stderr merged) handed to ON_LINE as it comes."""
    pipe = subprocess.PIPE
    try:
        proc = subprocess.Popen(list(argv), stdout=pipe, stderr=subprocess.STDOUT, text=True, env=env)  # noqa: S603
    except FileNotFoundError:
        return CommandResult(127, stderr=f"{argv[0]}: not found")
    except OSError as exc:
        return CommandResult(126, stderr=f"{argv[0]}: {exc.strerror}")
    assert proc.stdout is not None
    hung = threading.Event()

    def kill() -> None:  # a hang ends the read: the pipe closes with the process
        hung.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            on_line(line.rstrip("\n"))
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # ON_LINE raised (Ctrl-C): the command does not outlive the step
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if hung.is_set():
        return CommandResult(124, "".join(lines), f"{argv[0]}: no answer in {timeout:g}s")
    return CommandResult(returncode, "".join(lines))


@contextlib.contextmanager
def stream_process(argv: Sequence[str]) -> Iterator[Iterator[str]]:
    """ARGV's stdout lines as they come; the process is stopped when the block ends."""
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S603
    except FileNotFoundError as exc:
        raise DeployKitError(f"{argv[0]}: not found on the host") from exc
    assert proc.stdout is not None
    try:
        yield iter(proc.stdout.readline, "")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
