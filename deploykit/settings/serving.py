"""Where each ``[server]`` field acts in a deployment, per run mode.

Every ServerSettings field reaches the deployed process, or is refused when
set to anything but its default. The tables below are the one place that says
which; ``Settings`` calls ``refusals`` when it validates, ``render/`` reads
the same tables to build the serve command line, Gunicorn's conf.py and
``$DEPLOYKIT_SERVE_ARGS``, and the settings reference (docs/reference/settings.md) prints them.

- serve mode: every field not refused becomes a `deploykit serve` flag in
  ExecStart (non-default values only; the server's defaults are the model's).
- gunicorn mode: a field Gunicorn has a setting for is written as that conf.py
  key (``GUNICORN_KEYS``); a field a ``[gunicorn]`` setting already owns is
  refused, naming it (``GUNICORN_OWNS``); the rest become serve flags in
  ``$DEPLOYKIT_SERVE_ARGS`` (conf.py ``raw_env``), which the worker classes read.
"""

from __future__ import annotations

from typing import Any

from deploykit.settings.server import ServerSettings

#: The deployed app listens on paths.socket only: nginx's upstream, and the socket unit's ListenStream.
SOCKET_FIELDS = ("host", "port", "uds", "fd")
#: nginx terminates TLS and speaks plain HTTP to the app's unix socket.
TLS_FIELDS = (
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_ca_certs",
    "ssl_ciphers",
    "ssl_keyfile_password",
    "ssl_version",
    "ssl_cert_reqs",
)
#: Restart-on-change is a development tool; the reloader does not speak sd_notify (Type=notify would time out).
RELOAD_FIELDS = ("reload", "reload_dirs", "reload_includes", "reload_excludes", "reload_delay")

#: gunicorn mode: server field -> Gunicorn's conf.py setting that carries it to the worker.
GUNICORN_KEYS = {
    "forwarded_allow_ips": "forwarded_allow_ips",
    "access_log": "accesslog",
    "log_level": "loglevel",
    "limit_concurrency": "worker_connections",
    "root_path": "root_path",
    "lifespan": "asgi_lifespan",
}
#: gunicorn mode: server field -> the [gunicorn] setting that decides it instead.
GUNICORN_OWNS = {
    "workers": "gunicorn.workers",
    "backlog": "gunicorn.backlog",
    "timeout_keep_alive": "gunicorn.keepalive",
    "timeout_graceful_shutdown": "gunicorn.graceful_timeout",
    "timeout_worker_healthcheck": "gunicorn.timeout",
    "limit_max_requests": "gunicorn.max_requests",
    "limit_max_requests_jitter": "gunicorn.max_requests_jitter",
    "max_request_line": "gunicorn.limit_request_line",
    "max_header_size": "gunicorn.limit_request_field_size and gunicorn.limit_request_fields",
    "env_file": "app.env (the service's EnvironmentFile)",
}


def default(name: str) -> Any:
    return ServerSettings.model_fields[name].get_default(call_default_factory=True)


def changed(server: ServerSettings) -> dict[str, Any]:
    """The fields whose value is not the model's default, in model order."""
    return {
        name: getattr(server, name) for name in ServerSettings.model_fields if getattr(server, name) != default(name)
    }


def refusals(server: ServerSettings, run_mode: str, socket: str) -> dict[str, str]:
    """Field name -> why its [server] value cannot take effect in a deployment (empty: they all do)."""
    found = {}
    for name in changed(server):
        if name == "uds" and server.uds == socket:
            continue  # the same socket the deployment uses anyway (`deploykit up` sets both)
        why = refusal(name, run_mode)
        if why is not None:
            found[name] = why
    return found


def refusal(name: str, run_mode: str) -> str | None:
    """Why a non-default NAME is refused in RUN_MODE, or None when it takes effect."""
    if name in SOCKET_FIELDS:
        return (
            "a deployed app listens only on paths.socket, nginx's upstream (and the socket unit's, "
            "with systemd.socket_activation); set paths.socket, or nginx.listen for the public port"
        )
    if name in TLS_FIELDS:
        return "nginx terminates TLS and talks plain HTTP to the app's unix socket; configure nginx.tls instead"
    if name in RELOAD_FIELDS:
        return (
            "reloading on code changes is for development (`deploykit serve --reload`); "
            "a deployed app is restarted by `deploykit apply`"
        )
    if run_mode == "gunicorn" and name in GUNICORN_OWNS:
        return (
            f"in the gunicorn run mode this is set by {GUNICORN_OWNS[name]}; "
            f"set server.{name} back to its default ({default(name)!r}) or use the serve run mode"
        )
    return None


def where(name: str) -> str:
    """Where a [server] field acts, for the settings reference."""
    serve = refusal(name, "serve")
    gunicorn = refusal(name, "gunicorn")
    if serve is not None and serve == gunicorn:
        return "not deployed (refused unless default)"
    if name == "backlog":
        return "serve: socket unit Backlog= (a flag without socket activation); gunicorn: refused, use gunicorn.backlog"
    parts = ["serve: flag" if serve is None else "serve: refused"]
    if name in GUNICORN_KEYS:
        parts.append(f"gunicorn: conf.py `{GUNICORN_KEYS[name]}`")
    elif gunicorn is not None:
        parts.append(f"gunicorn: refused, use {GUNICORN_OWNS[name]}")
    else:
        parts.append("gunicorn: $DEPLOYKIT_SERVE_ARGS")
    return "; ".join(parts)
