"""The bundled ASGI server: ``deploykit serve`` and ``deploykit.server.run``."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

from deploykit.server import logs
from deploykit.server.config import ServerConfig, tls_context
from deploykit.server.interface import adapt
from deploykit.server.loader import import_app, load_env_file
from deploykit.server.options import ServerOptions, validate
from deploykit.server.server import Server, bind, systemd_socket


def run(
    app: str | Callable[..., Any],
    *,
    factory: bool = False,
    app_dir: str | None = None,
    interface: str = "auto",
    source: str = "options",
    **options: Any,
) -> int:
    """Serve APP until stopped; returns the process exit code (0, or 3 when startup failed).

    One process by default; with ``workers > 1``, or under systemd (NOTIFY_SOCKET
    set, so HUP, READY=1 and the watchdog work), a supervisor forks the workers."""
    settings = validate(options, source)
    logs.configure(settings.log_level, settings.log_config, settings.use_colors, settings.access_log_format)
    if settings.env_file is not None:
        load_env_file(settings.env_file)
    tls_context(settings)  # a bad --ssl-* file fails here, in one line, before the app is imported
    if settings.fd is None and settings.uds is None:
        inherited = systemd_socket()
        if inherited is not None:
            settings = dataclasses.replace(settings, fd=inherited)

    def build() -> ServerConfig:
        loaded = import_app(app, factory=factory, app_dir=app_dir)
        return ServerConfig.build(settings, adapt(loaded, interface, settings))

    if settings.reload:
        from deploykit.server.reload import Reloader

        if settings.workers > 1:  # as uvicorn does: reloading serves from one process
            logging.getLogger("deploykit.error").warning(
                "deploykit serve: --workers %d is ignored with --reload, which serves from one process",
                settings.workers,
            )

        return Reloader(settings, build, bind(settings)).run()
    if settings.workers > 1 or os.environ.get("NOTIFY_SOCKET"):
        from deploykit.server.supervisor import Supervisor  # only multi-process servers pay for it

        return Supervisor(settings, build, bind(settings)).run()
    return Server(build()).run()


__all__ = ["ServerConfig", "ServerOptions", "run", "validate"]
