"""Settings -> Gunicorn's conf.py: plain assignments of real Gunicorn settings.

Gunicorn silently skips names it does not know, so the names rendered here
are tested against Gunicorn's own registry and re-checked by `deploykit check`.
"""

from __future__ import annotations

import shlex
from typing import Any

from deploykit.render.bundle import Kind, RenderedFile
from deploykit.render.jinja import render_template
from deploykit.server.command import flags_for
from deploykit.settings import serving
from deploykit.settings.model import Settings

#: The worker classes read the [server] values Gunicorn has no setting for from here (server/workers.py).
SERVE_ARGS = "DEPLOYKIT_SERVE_ARGS"


def gunicorn_values(settings: Settings) -> dict[str, Any]:
    """The settings, by Gunicorn name, in the order they are written."""
    g = settings.gunicorn
    values: dict[str, Any] = {
        # Gunicorn calls a factory written as module:create_app() (util.import_app).
        "wsgi_app": settings.app.module + ("()" if settings.app.factory else ""),
        # Under socket activation Gunicorn takes the inherited socket from
        # LISTEN_FDS; bind names the same path so a manual start agrees.
        "bind": [f"unix:{settings.paths.socket}"],
        "umask": 0o007,
        "proc_name": settings.app.name,
        "workers": g.workers,
        "worker_class": g.worker_class,
        "timeout": g.timeout,
        "graceful_timeout": g.graceful_timeout,
        "keepalive": g.keepalive,
        "max_requests": g.max_requests,
        "max_requests_jitter": g.max_requests_jitter,
        "limit_request_line": g.limit_request_line,
        "limit_request_fields": g.limit_request_fields,
        "limit_request_field_size": g.limit_request_field_size,
        "backlog": g.backlog,
        "worker_tmp_dir": g.worker_tmp_dir,
        # Gunicorn trusts unix-socket peers by itself and has no "unix:" entry.
        "forwarded_allow_ips": ",".join(ip for ip in settings.server.forwarded_allow_ips if ip != "unix:"),
        "preload_app": g.preload_app,
        "accesslog": "-" if settings.server.access_log else None,
        "errorlog": "-",
        "loglevel": "debug" if settings.server.log_level == "trace" else settings.server.log_level,
    }
    server = serving.changed(settings.server)
    if settings.server.limit_concurrency is not None:
        values["worker_connections"] = settings.server.limit_concurrency
    for name in ("root_path", "lifespan"):
        if name in server:
            values[serving.GUNICORN_KEYS[name]] = server[name]
    if not g.control_socket:
        values["control_socket_disable"] = True
    flags = serve_args(settings)
    if settings.app.interface != "auto":  # the worker class adapts the app Gunicorn loaded
        flags += ["--interface", settings.app.interface]
    if flags:
        # Gunicorn's arbiter puts raw_env into its environment before forking the workers.
        values["raw_env"] = [f"{SERVE_ARGS}={shlex.join(flags)}"]
    return values


def serve_args(settings: Settings) -> list[str]:
    """`deploykit serve` flags for the changed [server] values that neither a conf.py key
    nor a [gunicorn] setting carries (the latter are refused by the model)."""
    values = serving.changed(settings.server)
    for name in (*serving.GUNICORN_KEYS, *serving.SOCKET_FIELDS):
        values.pop(name, None)
    return flags_for(values)


def render_conf(settings: Settings) -> RenderedFile:
    content = render_template("gunicorn.conf.py.j2", app=settings.app.name, values=gunicorn_values(settings))
    return RenderedFile(path=settings.paths.gunicorn_conf, kind=Kind.GUNICORN_CONF, content=content)
