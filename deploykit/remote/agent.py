"""The host side of ``--host ssh://``: run by the client over SSH with
deploykit's own venv (``python -m deploykit.remote.agent VERB APP ARGS...``).

Verbs:
- ``run APP COMMAND ARGS...``: plan, status, logs, doctor. The resolved
  settings arrive on stdin (JSON, secrets included) and land in a 0600 file
  for the one command, removed after it.
- ``transact APP COMMAND ARGS...``: apply or rollback. The settings land in
  ``RUNS/APP/settings.json`` (0600), then the command runs in the transient
  unit ``deploykit-apply-APP`` (``execute``), so a dropped connection does not
  stop it; this process only follows its output files.
- ``execute APP COMMAND ARGS...``: inside that unit, the command itself; it
  records ``outcome.json`` (exit code, end time) when done.
- ``receive APP NAME``: a tar stream on stdin unpacked into ``RUNS/APP/NAME``.
- ``resolve``: for the Ansible role, which has a project file on the host and
  overrides rather than resolved settings: stdin holds ``{"config": PATH,
  "set": ["section.field=VALUE", ...]}``; stdout gets ``{"app": NAME,
  "settings": ...}``, the settings as ``run`` and ``transact`` read them on
  stdin (so the overrides, secrets among them, never sit on a command line).

Rules:
- ``run`` ends when its client hangs up, even while its command is quiet
  (``logs --follow``): it stops what the command started (``watch_client``);
- every verb first re-attaches to an apply still running for APP (its output
  from the start, then its outcome), or reports how the last one ended when no
  client has seen that yet (``outcome.json`` ``seen``);
- the command always runs with ``--host local`` and without the host's
  ``DEPLOYKIT_*`` variables: the shipped settings are the resolved ones.
"""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from deploykit.remote.layout import TRANSACTIONS, run_dir, unit
from deploykit.settings.syntax import CHECKS

OUT, ERR, OUTCOME, SETTINGS = "output.log", "errors.log", "outcome.json", "settings.json"
#: How long a finished unit may lag behind its outcome file (seconds).
GRACE = 5.0


def _say(message: str) -> None:
    sys.stderr.write(f"deploykit: {message}\n")
    sys.stderr.flush()


def _private_dir(app: str) -> Path:
    folder = Path(run_dir(app))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def _write_private(path: Path, data: bytes) -> None:
    """DATA into PATH, created 0600 from the first byte (never readable by others), then renamed in place."""
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.replace(path)


#: commands that read no live host, so take no --host (the Ansible role runs check through `run`)
NO_HOST = frozenset({"check"})


def _command(command: str, settings: Path, args: list[str]) -> list[str]:
    return [command, "-c", str(settings), *([] if command in NO_HOST else ["--host", "local"]), *args]


def _main(argv: list[str]) -> int:
    from deploykit.cli import main

    for key in [key for key in os.environ if key.startswith("DEPLOYKIT_")]:
        del os.environ[key]
    return main(argv)


def unit_state(app: str) -> str:
    done = subprocess.run(["systemctl", "is-active", unit(app)], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def wait_unloaded(app: str, timeout: float = 30) -> None:
    """Wait until the apply unit is gone (``--collect`` unloads it once its process exited): the outcome
    is written just before that, and a new unit of the same name cannot start while the old is loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        argv = ["systemctl", "show", "--property=LoadState,ActiveState", unit(app)]
        shown = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        if "LoadState=not-found" in shown:
            return
        if "ActiveState=failed" in shown:  # --collect unloads a failed unit too; reset-failed hurries it
            # along, but the unit is unloaded only later: starting at once met "already loaded"
            subprocess.run(["systemctl", "reset-failed", unit(app)], capture_output=True, check=False)
        time.sleep(0.1)


def _outcome(folder: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((folder / OUTCOME).read_text()))
    except (OSError, ValueError):
        return None


def _describe(outcome: dict[str, Any]) -> str:
    code = outcome.get("exit")
    how = "succeeded" if code == 0 else f"failed (exit {code}; a failed apply restores the host)"
    return f"the {outcome.get('command', 'apply')} started {outcome.get('started', '?')} {how}"


def client_gone() -> bool:
    """Whether the client hung up: sshd closed the other end of our stdout (a quiet follow writes
    nothing, so a write error would come too late, after the outcome was marked seen)."""
    poller = select.poll()
    poller.register(sys.stdout.fileno(), 0)  # POLLERR / POLLHUP are always reported
    return any(events & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, events in poller.poll(0))


def watch_client() -> None:
    """End this process (as a hang-up does: SIGHUP, so finally blocks run) once the client is gone.
    sshd closes a command's pipes but sends no signal, and ``logs --follow`` writes nothing while
    the app is quiet: without this it, journalctl and tail would stay until the next log line."""

    def watch() -> None:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR / POLLHUP are always reported
        while True:
            if any(events & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, events in poller.poll()):
                os.kill(os.getpid(), signal.SIGHUP)
                return

    threading.Thread(target=watch, name="deploykit-watch-client", daemon=True).start()


def follow(app: str, folder: Path, *, from_start: bool = True) -> int:
    """Copy the running apply's output here until its outcome is recorded; its exit code."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    offsets = {OUT: 0, ERR: 0}
    if not from_start:
        offsets = {name: (folder / name).stat().st_size if (folder / name).exists() else 0 for name in offsets}
    quiet_since: float | None = None

    def drain() -> None:
        for name, stream in ((OUT, out), (ERR, err)):
            try:
                with (folder / name).open("rb") as fh:
                    fh.seek(offsets[name])
                    data = fh.read()
            except FileNotFoundError:
                continue
            if data:
                offsets[name] += len(data)
                stream.write(data)
                stream.flush()

    while True:
        drain()
        if client_gone():
            raise SystemExit(129)  # the apply goes on in its unit; the next command reports it
        outcome = _outcome(folder)
        if outcome is not None:
            wait_unloaded(app)
            drain()
            if client_gone():
                raise SystemExit(129)
            _mark_seen(folder, outcome)
            return int(outcome.get("exit", 1))
        if unit_state(app) not in ("active", "activating", "deactivating", "reloading"):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > GRACE:
                drain()
                _say(f"the apply unit {unit(app)} ended without recording an outcome (killed?)")
                return 1
        time.sleep(0.2)


def _mark_seen(folder: Path, outcome: dict[str, Any]) -> None:
    _write_private(folder / OUTCOME, json.dumps({**outcome, "seen": True}).encode())


def catch_up(app: str, folder: Path) -> int | None:
    """Re-attach to a running apply, or report an ended one no client has seen; its exit code, or None."""
    if unit_state(app) in ("active", "activating", "reloading"):
        _say(f"an apply is running on this host ({unit(app)}); re-attaching to it")
        code = follow(app, folder)
        _say(f"that apply ended with exit {code}")
        return code
    outcome = _outcome(folder)
    if outcome is not None and not outcome.get("seen"):
        _say(f"{_describe(outcome)}; it ended {outcome.get('ended', '?')} while no client was attached")
        _mark_seen(folder, outcome)
        return int(outcome.get("exit", 1))
    return None


def run(app: str, command: str, args: list[str]) -> int:
    folder = _private_dir(app)
    catch_up(app, folder)
    watch_client()
    settings = folder / f"settings-{os.getpid()}.json"
    _write_private(settings, sys.stdin.buffer.read())
    try:
        return _main(_command(command, settings, args))
    finally:
        settings.unlink(missing_ok=True)


def transact(app: str, command: str, args: list[str]) -> int:
    if command not in TRANSACTIONS:
        _say(f"{command!r} is not a transaction ({', '.join(TRANSACTIONS)})")
        return 2
    folder = _private_dir(app)
    catch_up(app, folder)
    wait_unloaded(app)
    _write_private(folder / SETTINGS, sys.stdin.buffer.read())
    (folder / OUTCOME).unlink(missing_ok=True)
    for name in (OUT, ERR):
        _write_private(folder / name, b"")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    argv = ["systemd-run", "--quiet", "--collect", f"--unit={unit(app)}", "--service-type=exec",
            f"--property=StandardOutput=append:{folder / OUT}", f"--property=StandardError=append:{folder / ERR}",
            "--setenv=PYTHONUNBUFFERED=1", "--setenv=LANG=C.UTF-8", f"--setenv=DEPLOYKIT_REMOTE_STARTED={started}",
            "--", sys.executable, "-m", "deploykit.remote.agent", "execute", app, command, *args]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    for _ in range(3):
        if done.returncode == 0 or "already loaded" not in done.stderr:
            break
        # the last apply's unit is still loaded (not yet collected, or something of it lingers): it is not
        # running (catch_up would have re-attached), so stop what is left of it, then start again
        _say(f"{unit(app)} is still loaded ({_shown(app)}); stopping what is left of it")
        subprocess.run(["systemctl", "stop", unit(app)], capture_output=True, check=False, timeout=120)
        subprocess.run(["systemctl", "reset-failed", unit(app)], capture_output=True, check=False)
        wait_unloaded(app)
        time.sleep(1)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        _say(f"could not start {unit(app)}: {done.stderr.strip()} ({_shown(app)})")
        return 1
    return follow(app, folder)


def _shown(app: str) -> str:
    argv = ["systemctl", "show", "--property=LoadState,ActiveState,SubState,MainPID,ControlGroup", unit(app)]
    return " ".join(subprocess.run(argv, capture_output=True, text=True, check=False).stdout.split())


def execute(app: str, command: str, args: list[str]) -> int:
    folder = Path(run_dir(app))
    settings = folder / SETTINGS
    started = os.environ.get("DEPLOYKIT_REMOTE_STARTED", "?")
    try:
        code = _main(_command(command, settings, args))
    finally:
        settings.unlink(missing_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
    ended = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"command": command, "exit": code, "started": started, "ended": ended, "seen": False}
    _write_private(folder / OUTCOME, json.dumps(record).encode())
    return code


def receive(app: str, name: str) -> int:
    if not name.isidentifier():
        _say(f"{name!r} is not a folder name")
        return 2
    target = _private_dir(app) / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(mode=0o700)
    with tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode="r:") as archive:
        for member in archive.getmembers():  # flat regular files only: no links, folders or ../ names
            if not member.isfile() or "/" in member.name or member.name.startswith("."):
                _say(f"refusing {member.name!r} in the shipped files")
                return 1
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has content
            (target / member.name).write_bytes(source.read())
    return 0


def resolve() -> int:
    """The settings a project file on this host and overrides resolve to (see the module's docstring)."""
    from deploykit.errors import DeployKitError
    from deploykit.remote.session import settings_payload
    from deploykit.settings.load import load

    try:
        given = json.loads(sys.stdin.buffer.read())
        config, overrides = Path(given["config"]), [str(item) for item in given.get("set", [])]
    except (ValueError, KeyError, TypeError) as exc:
        _say(f'resolve: stdin is not {{"config": PATH, "set": [...]}}: {exc}')
        return 2
    try:
        settings = load(project=config, environ={}, overrides=overrides).settings
    except DeployKitError as exc:
        _say(f"{exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return exc.exit_code
    payload = json.loads(settings_payload(settings))
    sys.stdout.write(json.dumps({"app": settings.app.name, "settings": payload}, sort_keys=True) + "\n")
    return 0


def _hang_up(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # the client went away: finally blocks still clean up


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGHUP, _hang_up)
    signal.signal(signal.SIGTERM, _hang_up)
    if len(argv) < 2 and argv != ["resolve"]:
        _say("usage: python -m deploykit.remote.agent VERB APP [ARGS...]")
        return 2
    if argv == ["resolve"]:
        return resolve()
    verb, app, rest = argv[0], argv[1], argv[2:]
    try:
        CHECKS["app name"](app)
    except ValueError as exc:
        _say(f"app name {app!r}: {exc}")
        return 2
    if verb == "receive" and len(rest) == 1:
        return receive(app, rest[0])
    if verb in ("run", "transact", "execute") and rest:
        return {"run": run, "transact": transact, "execute": execute}[verb](app, rest[0], rest[1:])
    _say(f"unknown agent verb {verb!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
