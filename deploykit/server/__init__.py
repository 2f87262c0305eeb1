"""The bundled ASGI server: ``deploykit serve`` and ``deploykit.server.run``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deploykit.errors import UsageError
from deploykit.server import logs
from deploykit.server.config import ServerConfig
from deploykit.server.loader import import_app, load_env_file
from deploykit.server.options import ServerOptions, validate
from deploykit.server.server import Server


def run(
    app: str | Callable[..., Any],
    *,
    factory: bool = False,
    app_dir: str | None = None,
    source: str = "options",
    **options: Any,
) -> int:
    """Serve APP until stopped; returns the process exit code (0, or 3 when startup failed)."""
    settings = validate(options, source)
    if settings.workers > 1:
        raise UsageError(
            "--workers > 1 needs the multi-worker supervisor, which is not built yet",
            hint="use Gunicorn with deploykit's worker class (run_mode = gunicorn) for several workers",
        )
    logs.configure(settings.log_level, settings.log_config, settings.use_colors, settings.access_log_format)
    if settings.env_file is not None:
        load_env_file(settings.env_file)
    asgi_app = import_app(app, factory=factory, app_dir=app_dir)
    return Server(ServerConfig.build(settings, asgi_app)).run()


__all__ = ["ServerConfig", "ServerOptions", "run", "validate"]
