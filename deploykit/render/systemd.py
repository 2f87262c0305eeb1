"""Settings -> <app>.service and <app>.socket, hardened by default.

The `strict` set scores about 1 ("OK") in `systemd-analyze security`; the
check step enforces `systemd.security_threshold` (default 2.0).
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from typing import Any

from deploykit.render.bundle import Kind, RenderedFile
from deploykit.render.jinja import render_template
from deploykit.server.command import flags_for
from deploykit.settings import serving
from deploykit.settings.layout import code_location
from deploykit.settings.model import Settings

SD_LISTEN_FDS_START = 3

_STANDARD: tuple[tuple[str, str], ...] = (
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "full"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("UMask", "0027"),
)

#: systemd.hardening = "strict"; render/acme.py adjusts it for its root job
STRICT_SANDBOX: tuple[tuple[str, str], ...] = (
    ("NoNewPrivileges", "yes"),
    ("CapabilityBoundingSet", ""),
    ("AmbientCapabilities", ""),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("PrivateUsers", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("ProtectProc", "invisible"),
    ("ProcSubset", "pid"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("RemoveIPC", "yes"),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", "@system-service"),
    ("SystemCallFilter", "~@privileged @resources"),
    ("SystemCallErrorNumber", "EPERM"),
    ("UMask", "0027"),
)


def exec_start(settings: Settings) -> list[str]:
    """The command line the service runs, as argv (every part validated)."""
    app = settings.app
    bin_dir = code_location(settings).bin
    if app.run_mode == "gunicorn":
        return [f"{bin_dir}/gunicorn", "--config", settings.paths.gunicorn_conf]
    argv = [f"{bin_dir}/deploykit", "serve", app.module]
    if app.factory:
        argv.append("--factory")
    if app.interface != "auto":
        argv += ["--interface", app.interface]
    if settings.systemd.socket_activation:
        argv += ["--fd", str(SD_LISTEN_FDS_START)]
    else:
        argv += ["--uds", settings.paths.socket]
    return argv + flags_for(serve_values(settings))


def serve_values(settings: Settings) -> dict[str, Any]:
    """The [server] values the serve command line passes: every one that differs from
    the server's default (the unit stays short, and the server's defaults are the
    model's), and always --workers, which would otherwise follow a $WEB_CONCURRENCY
    in the environment file. The socket is the deployment's own (above); the backlog
    of an inherited socket is the socket unit's Backlog=."""
    values = {"workers": settings.server.workers, **serving.changed(settings.server)}
    for name in serving.SOCKET_FIELDS:
        values.pop(name, None)
    if settings.systemd.socket_activation:
        values.pop("backlog", None)
    return values


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def exec_quote(word: str) -> str:
    """One argv word for an ExecStart= line: %% and $$ keep systemd from expanding
    specifiers and variables; anything beyond plain characters is double-quoted with
    \\ and \" escaped (values never hold control characters: the model rejects them)."""
    text = word.replace("%", "%%").replace("$", "$$")
    if _PLAIN_WORD.fullmatch(word):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_split(line: str) -> list[str]:
    """The argv systemd reads from an ExecStart= value written by ``exec_quote``."""
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(line)]


def exec_line(argv: list[str]) -> str:
    return " ".join(exec_quote(word) for word in argv)


def hardening(settings: Settings) -> list[tuple[str, str]]:
    sd = settings.systemd
    level = {"strict": STRICT_SANDBOX, "standard": _STANDARD, "off": ()}[sd.hardening]
    found = list(level)
    if sd.memory_deny_write_execute:
        found.append(("MemoryDenyWriteExecute", "yes"))
    if sd.hardening != "off" and sd.read_write_paths:
        found.append(("ReadWritePaths", " ".join(sd.read_write_paths)))
    return found


def identity(settings: Settings) -> list[tuple[str, str]]:
    app = settings.app
    if app.user is None:
        return [("DynamicUser", "yes")]
    found = [("User", app.user)]
    if app.group is not None:
        found.append(("Group", app.group))
    return found


def directories(settings: Settings) -> list[tuple[str, str]]:
    """StateDirectory= per app.state_directories folder (systemd creates and owns it, for a
    DynamicUser too, and makes it writable under ProtectSystem=strict), and the variable
    that tells the app where it is."""
    app = settings.app
    found = [("StateDirectory", f"{app.name}/{folder}") for folder in app.state_directories.values()]
    found += [("Environment", f"{key}={path}") for key, path in app.state_paths().items()]
    return found


def limits(settings: Settings) -> list[tuple[str, str]]:
    sd = settings.systemd
    found = [("LimitNOFILE", str(sd.limit_nofile))]
    if sd.memory_max is not None:
        found.append(("MemoryMax", sd.memory_max.upper()))
    if sd.cpu_quota is not None:
        found.append(("CPUQuota", f"{sd.cpu_quota}%"))
    if sd.tasks_max is not None:
        found.append(("TasksMax", str(sd.tasks_max)))
    return found


def service_body(settings: Settings, unit: str, *, runtime_directory: bool = False) -> dict[str, Any]:
    """What service_body.j2 needs: the [Service] lines the app's unit shares with its
    processes' and timers' units (working directory, env file, identity, state folders,
    limits, sandbox). Only the app's unit owns the RuntimeDirectory (stopping a unit
    removes its runtime directory)."""
    return {
        "app": settings.app.name,
        "settings": settings,
        "unit": unit,
        "working_dir": code_location(settings).working_dir,
        "identity": identity(settings),
        "directories": directories(settings),
        "limits": limits(settings),
        "hardening": hardening(settings),
        "runtime_directory": runtime_directory,
    }


def render_service(settings: Settings) -> RenderedFile:
    content = render_template(
        "service.j2",
        **service_body(
            settings, PurePosixPath(settings.paths.service_unit).name,
            runtime_directory=not settings.systemd.socket_activation,
        ),
        exec_start=exec_line(exec_start(settings)),
        timeout_stop_sec=settings.timeout_stop_sec,
        socket_unit=settings.paths.socket_unit.rsplit("/", 1)[-1],
    )  # fmt: skip
    return RenderedFile(path=settings.paths.service_unit, kind=Kind.SERVICE_UNIT, content=content)


def render_socket(settings: Settings) -> RenderedFile:
    content = render_template("socket.j2", app=settings.app.name, settings=settings)
    return RenderedFile(path=settings.paths.socket_unit, kind=Kind.SOCKET_UNIT, content=content)
