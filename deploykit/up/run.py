"""The side-effecting half of `deploykit up`: write the run directory, start
`deploykit serve` and nginx as plain processes, wait until a request passes
through both, start each ``[processes.<name>]`` command, follow their logs, and
stop them all on Ctrl-C / SIGTERM / SIGHUP.

Each child runs in its own process group, so the terminal's Ctrl-C reaches
only `deploykit up`, which then stops them in order: the processes (TERM,
each with its stop timeout), nginx (QUIT: it stops accepting and finishes what
is in flight), then the server (TERM: its graceful shutdown). A second Ctrl-C
kills whatever is left at once. A process that exits with an error is started
again after ``systemd.restart_sec`` (as its unit would be, Restart=on-failure);
the server or nginx exiting ends `up` with its last log lines.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from deploykit import console
from deploykit.check.tools import INSTALL_HINTS, which
from deploykit.check.tools import run as run_tool
from deploykit.errors import PortInUse, ToolMissing, UpError
from deploykit.render.nginx import render_site
from deploykit.settings.model import Settings
from deploykit.settings.processes import shown
from deploykit.up.follow import Follower, last_lines
from deploykit.up.local import (
    LOOPBACK,
    Layout,
    LocalProcess,
    local_processes,
    localize,
    nginx_argv,
    nginx_conf,
    server_argv,
    server_env,
    timers_notice,
    url,
)

RUN_DIR_NAME = ".deploykit-up"
READY_TIMEOUT = 30.0
NGINX_STOP_TIMEOUT = 10.0  # nginx.conf gives open connections 5 s (worker_shutdown_timeout)
POLL = 0.2
PROBE_AGENT = "deploykit-up (readiness probe)"


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    stop_timeout: float
    logs: tuple[Path, ...]
    #: a [processes.<name>] instance: started again when it fails, not the end of `up`
    process: LocalProcess | None = None
    restart_at: float | None = None

    def exited(self) -> int | None:
        return self.proc.poll()

    def kill_group(self) -> None:
        """SIGKILL the child's whole process group (it leads it): workers included."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def died(self, code: int) -> UpError:
        lines = next((found for found in map(last_lines, self.logs) if found), [])
        shown = "".join(f"\n  | {line}" for line in lines) or "\n  (no output)"
        return UpError(
            f"{self.name} exited with code {code}; its last log lines:{shown}",
            hint=f"the full logs are in {', '.join(str(p) for p in self.logs)}",
        )


class StopRequests:
    """Counts stop signals: the first stops gracefully, the second kills."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1


def up(settings: Settings, *, config: Path, port: int = 8080, run_dir: Path | None = None) -> None:
    """Run SETTINGS' stack locally until a stop signal; see the module docstring."""
    nginx = which("nginx")
    if nginx is None:
        raise ToolMissing(
            "nginx is not installed; deploykit up runs it as a plain process", hint=INSTALL_HINTS["nginx"]
        )
    project = config.resolve().parent
    layout_dir = (run_dir if run_dir is not None else project / RUN_DIR_NAME).absolute()
    chosen = claim_port(port)
    local = localize(settings, project=project, run_dir=layout_dir, port=chosen)
    layout = Layout(layout_dir, local.app.name)
    prepare(layout, local, mime_types(nginx))
    stop = StopRequests()
    with _stop_signals(stop):
        _run(local, layout, nginx, chosen, stop)


def _run(local: Settings, layout: Layout, nginx: str, port: int, stop: StopRequests) -> None:
    console.info(f"starting deploykit serve and nginx for {local.app.name} (files and logs in {layout.run_dir})")
    children: list[Child] = []
    follower: Follower | None = None  # logs are shown from their start once both are ready
    workers = local_processes(local, os.environ)
    try:
        if _start_both(children, local, layout, nginx, port, stop):
            children += [_start_process(w, layout) for w in workers]
            console.up_ready(url(port), _notes(local, layout))
            follower = Follower.of(layout.logs([w.label for w in workers]))
            _follow(children, follower, stop, local.systemd.restart_sec)
    finally:
        _stop_all(children, stop)
        if children and not _answers(layout.socket):
            layout.socket.unlink(missing_ok=True)
        if follower is not None:
            console.log_lines(follower.new_lines(final=True))
    console.info("stopped: " + ("the processes, " if workers else "") + "nginx and deploykit serve have exited")


def _start_both(
    children: list[Child], local: Settings, layout: Layout, nginx: str, port: int, stop: StopRequests
) -> bool:
    """The server, then nginx once the socket answers; True once a request went through
    both, False when a stop signal came first. CHILDREN collects what was started."""
    children.append(_start_server(local, layout))
    if not _wait_for(lambda: _answers(layout.socket), children, stop, f"{layout.socket} to accept connections"):
        return False
    children.append(_start_nginx(nginx, layout))
    return _wait_for(lambda: _through_nginx(port), children, stop, f"an answer through nginx on {url(port)}")


def claim_port(port: int) -> int:
    """Check that nginx can listen on 127.0.0.1:PORT (0: pick a free port) and return the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does: TIME_WAIT is no conflict
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"{LOOPBACK}:{port} is already in use") from exc
            raise UpError(
                f"cannot listen on {LOOPBACK}:{port}: {exc.strerror}",
                hint="ports below 1024 need root; try --port 8080",
            ) from exc
        found: int = sock.getsockname()[1]
        return found


def mime_types(nginx: str) -> str | None:
    """nginx's own mime.types (beside its --conf-path), so static files get their Content-Type."""
    match = re.search(r"--conf-path=(\S+)", run_tool([nginx, "-V"], timeout=10).stderr)
    folders = [os.path.dirname(match.group(1))] if match else []
    for folder in [*folders, "/etc/nginx"]:
        candidate = os.path.join(folder, "mime.types")
        if os.path.isfile(candidate):
            return candidate
    return None


def prepare(layout: Layout, local: Settings, mime: str | None) -> None:
    """Create the run directory (0755: nginx's workers may run as another user) and write its files."""
    try:
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(layout.run_dir, 0o755)
        layout.temp.mkdir(exist_ok=True)
        _refuse_live_socket(layout.socket)
        for log in (layout.server_log, layout.access_log, layout.error_log, layout.nginx_stderr):
            log.write_bytes(b"")
        layout.site.write_text(render_site(local).content, encoding="utf-8")
        layout.nginx_conf.write_text(nginx_conf(layout, mime, as_root=os.geteuid() == 0), encoding="utf-8")
    except OSError as exc:
        raise UpError(f"cannot prepare the run directory {layout.run_dir}: {exc.strerror or exc}") from exc


def _refuse_live_socket(path: Path) -> None:
    """A socket someone still answers on means another `deploykit up` runs from this directory."""
    if path.is_socket() and _answers(path):
        raise UpError(f"another deploykit up is running from {path.parent} (its socket answers)", hint="stop it first")


def _start_server(local: Settings, layout: Layout) -> Child:
    proc = _spawn(server_argv(local), layout.server_log, cwd=local.app.working_dir, env=server_env(local, os.environ))
    grace = local.graceful_timeout + 5
    return Child("deploykit serve", proc, signal.SIGTERM, grace, (layout.server_log,))


def _start_nginx(nginx: str, layout: Layout) -> Child:
    proc = _spawn(nginx_argv(nginx, layout), layout.nginx_stderr, cwd=str(layout.run_dir), env=dict(os.environ))
    return Child("nginx", proc, signal.SIGQUIT, NGINX_STOP_TIMEOUT, (layout.error_log, layout.nginx_stderr))


def _start_process(process: LocalProcess, layout: Layout) -> Child:
    log = layout.process_log(process.label)
    with contextlib.suppress(FileNotFoundError):
        log.unlink()  # this run's output only
    proc = _spawn(process.argv, log, cwd=process.cwd, env=process.env)
    return Child(f"process {process.label}", proc, signal.SIGTERM, process.stop_timeout, (log,), process)


def _spawn(argv: list[str], log: Path, *, cwd: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    try:
        with log.open("ab") as out:
            return subprocess.Popen(  # noqa: S603 - argv built from validated settings
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, process_group=0
            )
    except OSError as exc:
        raise UpError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc


def _wait_for(ready: Callable[[], bool], children: list[Child], stop: StopRequests, what: str) -> bool:
    """True once READY; False when a stop signal came first. A child that exits, or
    READY_TIMEOUT passing, is an error."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not stop.count:
        _raise_if_exited(children)
        if ready():
            return True
        if time.monotonic() > deadline:
            raise UpError(
                f"waited {READY_TIMEOUT:.0f} s for {what}", hint=f"see the logs in {children[0].logs[0].parent}"
            )
        time.sleep(0.05)
    return False


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _through_nginx(port: int) -> bool:
    status = probe(port)
    return status is not None and status != 502  # 502: nginx is up, the app's socket is not


def probe(port: int) -> int | None:
    """The status of GET / through nginx, or None when nothing answers yet."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request("GET", "/", headers={"User-Agent": PROBE_AGENT})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _follow(children: list[Child], follower: Follower, stop: StopRequests, restart_sec: float) -> None:
    while not stop.count:
        console.log_lines(follower.new_lines())
        _raise_if_exited(children)
        _restart_processes(children, restart_sec)
        time.sleep(POLL)


def _raise_if_exited(children: list[Child]) -> None:
    for child in children:
        code = child.exited()
        if code is not None and child.process is None:
            raise child.died(code)


def _restart_processes(children: list[Child], restart_sec: float) -> None:
    """A process that failed starts again RESTART_SEC later (Restart=on-failure); one that exited 0 stays down."""
    for index, child in enumerate(children):
        code = child.exited()
        if child.process is None or code is None or child.restart_at == float("inf"):
            continue
        if child.restart_at is None:
            child.kill_group()  # what it started goes with it, as with its unit's cgroup
            again = code != 0
            child.restart_at = time.monotonic() + restart_sec if again else float("inf")
            then = f"; starting it again in {restart_sec:g} s" if again else "; not started again (it succeeded)"
            console.info(f"{child.name} exited with code {code}{then} (its log: {child.logs[0]})")
        elif time.monotonic() >= child.restart_at:
            log = child.logs[0]
            proc = _spawn(child.process.argv, log, cwd=child.process.cwd, env=child.process.env)
            children[index] = Child(child.name, proc, child.stop_signal, child.stop_timeout, child.logs, child.process)


def _stop_all(children: list[Child], stop: StopRequests) -> None:
    """nginx first, then the server; each gets its timeout, a second signal kills at once.
    Then each process group is killed, so no worker outlives `deploykit up`."""
    signalled = stop.count
    if children and signalled:
        first = "the processes (TERM), " if any(c.process is not None for c in children) else ""
        console.info(f"stopping: {first}nginx (QUIT), then deploykit serve (TERM); Ctrl-C again kills them all")
    for child in reversed(children):
        if child.exited() is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(child.stop_signal)
            _wait_or_kill(child, stop, signalled)
        child.kill_group()


def _wait_or_kill(child: Child, stop: StopRequests, signalled: int) -> None:
    deadline = time.monotonic() + child.stop_timeout
    while child.exited() is None:
        if stop.count > signalled or time.monotonic() > deadline:
            child.kill_group()
            child.proc.wait()
            return
        time.sleep(0.05)


@contextlib.contextmanager
def _stop_signals(stop: StopRequests) -> Iterator[None]:
    names = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop) for sig in names}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _notes(local: Settings, layout: Layout) -> list[str]:
    notes = [f"nginx → unix:{layout.socket} → deploykit serve {local.app.module} (in {local.app.working_dir})"]
    notes += [f"static {s.url} → {s.path}" for s in local.nginx.static]
    notes += [f"websocket {w.url}" for w in local.nginx.websockets]
    notes += [f"process {name}: {shown(p.command)}" + (f" ({p.instances} instances)" if p.instances > 1 else "")
              for name, p in local.processes.items()]  # fmt: skip
    notice = timers_notice(local)
    notes += [notice] if notice else []
    notes.append(f"files and logs: {layout.run_dir}; Ctrl-C stops")
    return notes
