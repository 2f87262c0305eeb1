"""Settings -> <app>.service and <app>.socket, hardened by default.

The `strict` set scores about 1 ("OK") in `systemd-analyze security`; the
check step enforces `systemd.security_threshold` (default 2.0).
"""

from __future__ import annotations

from deploykit.render.bundle import Kind, RenderedFile
from deploykit.render.jinja import render_template
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

_STRICT: tuple[tuple[str, str], ...] = (
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
    app, server = settings.app, settings.server
    if app.run_mode == "gunicorn":
        return [f"{app.venv}/bin/gunicorn", "--config", settings.paths.gunicorn_conf]
    argv = [f"{app.venv}/bin/deploykit", "serve", app.module]
    if app.factory:
        argv.append("--factory")
    if settings.systemd.socket_activation:
        argv += ["--fd", str(SD_LISTEN_FDS_START)]
    else:
        argv += ["--uds", settings.paths.socket]
    argv += [
        "--workers", str(server.workers),
        "--timeout-graceful-shutdown", _num(server.timeout_graceful_shutdown),
        "--timeout-keep-alive", _num(server.timeout_keep_alive),
        "--log-level", server.log_level,
        "--proxy-headers" if server.proxy_headers else "--no-proxy-headers",
        "--forwarded-allow-ips", ",".join(server.forwarded_allow_ips),
    ]  # fmt: skip
    if server.limit_concurrency is not None:
        argv += ["--limit-concurrency", str(server.limit_concurrency)]
    if server.limit_max_requests is not None:
        argv += ["--limit-max-requests", str(server.limit_max_requests)]
    if not server.access_log:
        argv.append("--no-access-log")
    return argv


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def hardening(settings: Settings) -> list[tuple[str, str]]:
    sd = settings.systemd
    level = {"strict": _STRICT, "standard": _STANDARD, "off": ()}[sd.hardening]
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


def render_service(settings: Settings) -> RenderedFile:
    content = render_template(
        "service.j2",
        app=settings.app.name,
        settings=settings,
        exec_start=" ".join(exec_start(settings)),
        identity=identity(settings),
        limits=limits(settings),
        hardening=hardening(settings),
        timeout_stop_sec=settings.timeout_stop_sec,
        socket_unit=settings.paths.socket_unit.rsplit("/", 1)[-1],
    )
    return RenderedFile(path=settings.paths.service_unit, kind=Kind.SERVICE_UNIT, content=content)


def render_socket(settings: Settings) -> RenderedFile:
    content = render_template("socket.j2", app=settings.app.name, settings=settings)
    return RenderedFile(path=settings.paths.socket_unit, kind=Kind.SOCKET_UNIT, content=content)
