"""The pure half of `deploykit up`: the project's Settings turned into a local
variant, and the command lines and nginx.conf that run it. Nothing here starts
a process; the only file-system reads are the injectable ``exists`` checks
used to find static folders.

The local variant keeps everything that shapes the stack (locations, timeouts,
buffering, WebSocket routes, server workers and limits) and moves only what
cannot work on a developer's machine:

- every path under the run directory (socket, logs, rendered files);
- nginx listens on 127.0.0.1:<port> only, plain HTTP (TLS, the port-80
  redirect and the catch-all default server are dropped);
- the app runs from the project folder (the folder holding deploykit.toml),
  always with `deploykit serve` on the unix socket, trusting proxy headers
  from that socket only;
- each static location is served from the project (see ``static_folder``);
- each ``[processes.<name>]`` runs its command (each instance) from the project
  folder with the app's environment (``local_processes``); timers are not run,
  and `up` says so (``timers_notice``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from deploykit.errors import UpError
from deploykit.render.jinja import render_template
from deploykit.render.systemd import exec_start
from deploykit.settings import processes
from deploykit.settings.model import Settings, StaticLocation

LOOPBACK = "127.0.0.1"
SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


@dataclass(frozen=True)
class Layout:
    """Every file `deploykit up` writes, under one run directory."""

    run_dir: Path
    app: str

    @property
    def socket(self) -> Path:
        return self.run_dir / f"{self.app}.sock"

    @property
    def site(self) -> Path:
        return self.run_dir / "nginx-site.conf"

    @property
    def nginx_conf(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def pid(self) -> Path:
        return self.run_dir / "nginx.pid"

    @property
    def temp(self) -> Path:
        return self.run_dir / "nginx-temp"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "nginx-access.log"

    @property
    def error_log(self) -> Path:
        return self.run_dir / "nginx-error.log"

    @property
    def nginx_stderr(self) -> Path:
        return self.run_dir / "nginx-stderr.log"

    @property
    def server_log(self) -> Path:
        return self.run_dir / "serve.log"

    def process_log(self, label: str) -> Path:
        return self.run_dir / f"process-{label}.log"

    def logs(self, processes: Sequence[str] = ()) -> list[tuple[str, Path]]:
        """The logs `up` follows, each with the label its lines are shown with (PROCESSES: their labels)."""
        found = [("serve", self.server_log), ("access", self.access_log), ("nginx", self.error_log)]
        return found + [(label, self.process_log(label)) for label in processes]


@dataclass(frozen=True)
class LocalProcess:
    """One instance of a ``[processes.<name>]`` as `up` runs it: LABEL is ``name`` or ``name@i``."""

    label: str
    argv: list[str]
    env: dict[str, str]
    stop_timeout: int
    cwd: str  # the project folder, as the app's


def local_processes(local: Settings, base: Mapping[str, str], python: str = sys.executable) -> list[LocalProcess]:
    """Each process's command, once per instance, as its unit runs it: the app's environment, the
    Python's bin folder (the venv's) first on PATH, DEPLOYKIT_INSTANCE for an instance of several."""
    env = server_env(local, base)
    env["PATH"] = os.pathsep.join(p for p in (os.path.dirname(python), base.get("PATH", "")) if p)
    found = []
    for name, process in local.processes.items():
        stop = process.stop_timeout or local.timeout_stop_sec
        argv = processes.argv(process.command)
        if process.instances == 1:
            found.append(LocalProcess(name, argv, env, stop, local.app.working_dir))
            continue
        for i in range(1, process.instances + 1):
            instance = {**env, "DEPLOYKIT_INSTANCE": str(i)}
            found.append(LocalProcess(f"{name}@{i}", argv, instance, stop, local.app.working_dir))
    return found


def timers_notice(local: Settings) -> str | None:
    """`up` does not run timers on their calendar: one line that says so, naming them."""
    if not local.timers:
        return None
    names = ", ".join(f"{name} ({timer.on_calendar})" for name, timer in local.timers.items())
    return f"timers are not run by deploykit up: {names}; run a job by hand when you need it"


def static_folder(
    static: StaticLocation, index: int, *, project: Path, working_dir: str, exists: Callable[[Path], bool]
) -> Path:
    """Where the files of one static location are on this machine. In order:
    ``source`` (relative to the project folder) when set; else the configured
    path moved from app.working_dir to the project folder, when that exists
    (the project is what gets deployed to working_dir); else the configured
    path itself, when it exists here. Anything else is an error that says
    which ``source`` to set."""
    if static.source is not None:
        found = Path(os.path.normpath(project / static.source))
        if not exists(found):
            raise UpError(
                f"nginx.static[{index}] ({static.url}): source {static.source!r} is not a folder: {found}",
                hint="source is relative to the folder holding deploykit.toml",
            )
        return found
    configured = PurePosixPath(static.path)
    if configured.is_relative_to(working_dir):
        moved = project / configured.relative_to(working_dir)
        if exists(moved):
            return moved
    if exists(Path(configured)):
        return Path(configured)
    raise UpError(
        f"nginx.static[{index}] ({static.url}): {static.path} is not on this machine, "
        f"and app.working_dir ({working_dir}) does not map it into {project}",
        hint=f'set nginx.static[{index}].source to the folder in the project, e.g. source = "app/static"',
    )


def localize(
    settings: Settings,
    *,
    project: Path,
    run_dir: Path,
    port: int,
    exists: Callable[[Path], bool] = os.path.isdir,
) -> Settings:
    """The local variant of SETTINGS (see the module docstring); validated again,
    so every moved path still passes the model's syntax rules."""
    layout = Layout(run_dir, settings.app.name)
    if len(str(layout.socket)) > SUN_PATH_MAX:
        raise UpError(
            f"the socket path {layout.socket} is longer than a unix socket allows ({SUN_PATH_MAX} bytes)",
            hint="pass a shorter --dir",
        )
    # Only what the sources set, so defaults are not validated twice; SecretStr stays an object.
    data = settings.model_dump(mode="python", exclude_unset=True)
    data["app"].update(working_dir=str(project), run_mode="serve")
    server = {"uds": str(layout.socket), "fd": None, "proxy_headers": True, "forwarded_allow_ips": ("unix:",)}
    data.setdefault("server", {}).update(server)
    data.setdefault("systemd", {}).update(socket_activation=False)
    data.setdefault("nginx", {}).update(_nginx_changes(settings, layout, project, port, exists))
    data.setdefault("paths", {}).update(_paths(layout))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UpError(
            f"the local variant of the settings is invalid: {problems}",
            hint="paths nginx reads may only contain letters, digits and . _ / @ + = , - (no spaces)",
        ) from exc


def _nginx_changes(
    settings: Settings, layout: Layout, project: Path, port: int, exists: Callable[[Path], bool]
) -> dict[str, Any]:
    statics = []
    for index, static in enumerate(settings.nginx.static):
        folder = str(static_folder(static, index, project=project, working_dir=settings.app.working_dir, exists=exists))
        if static.path.endswith("/") and not folder.endswith("/"):
            folder += "/"  # `alias` keeps the configured path's trailing slash, matching the URL's
        statics.append({**static.model_dump(exclude_unset=True), "path": folder})
    return {
        "listen": port,
        "listen_address": LOOPBACK,
        "ipv6": False,
        "tls": None,
        "default_server": False,
        "access_log": str(layout.access_log),
        "error_log": str(layout.error_log),
        "static": statics,
    }


def _paths(layout: Layout) -> dict[str, str]:
    run = layout.run_dir
    return {
        "nginx_site": str(layout.site),
        "nginx_site_enabled": str(run / "nginx-site-enabled.conf"),  # never made: up includes the site itself
        "gunicorn_conf": str(run / "gunicorn.conf.py"),
        "service_unit": str(run / f"{layout.app}.service"),
        "socket_unit": str(run / f"{layout.app}.socket"),
        "acme_service_unit": str(run / f"{layout.app}-acme-renew.service"),  # never made: up serves plain HTTP
        "acme_timer_unit": str(run / f"{layout.app}-acme-renew.timer"),
        "env_file": str(run / f"{layout.app}.env"),
        "socket": str(layout.socket),
        "state_dir": str(run / "state"),
    }


def server_argv(local: Settings, python: str = sys.executable) -> list[str]:
    """`deploykit serve` as the rendered unit runs it (same flags), with this Python."""
    argv = exec_start(local)
    assert argv[1] == "serve", argv  # localize() always picks the serve run mode
    return [python, "-m", "deploykit", *argv[1:], "--app-dir", local.app.working_dir]


def server_env(local: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ours, plus app.env and app.secrets (never on a command line or disk)."""
    secrets = {key: value.get_secret_value() for key, value in local.app.secrets.items()}
    return {**base, **local.app.env, **secrets, "PYTHONUNBUFFERED": "1"}


def nginx_conf(layout: Layout, mime_types: str | None, *, as_root: bool = False) -> str:
    """A whole nginx.conf for a local nginx: every file it writes is in the run directory.
    AS_ROOT: the workers run as root too, the invoking user, instead of nginx's default
    `nobody`, who cannot enter a checkout under /root (a local demo on loopback only)."""
    return render_template("nginx_up.conf.j2", layout=layout, mime_types=mime_types, as_root=as_root)


def nginx_argv(nginx: str, layout: Layout) -> list[str]:
    prefix = f"{layout.run_dir}/"
    return [nginx, "-p", prefix, "-c", str(layout.nginx_conf), "-e", str(layout.error_log), "-g", "daemon off;"]


def url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/"
