"""Gunicorn worker classes: ``gunicorn -k deploykit.server.workers.Worker``
(httptools) or ``deploykit.server.workers.H11Worker`` (pure Python).

Gunicorn's arbiter owns the sockets, the worker count, HUP/TTIN/TTOU and the
heartbeat timeout; each worker runs deploykit's server on those sockets with
Gunicorn's settings mapped onto the server options (``worker_connections`` is
``--limit-concurrency``). Options Gunicorn has no setting for go in
``$DEPLOYKIT_SERVE_ARGS`` as `deploykit serve` flags, e.g.
``DEPLOYKIT_SERVE_ARGS="--timeout-header-read 5 --no-server-header"``. The heartbeat
(``self.notify()``) is sent from the event loop's own ticker, so Gunicorn's
``timeout`` detects a worker whose loop is blocked — its "WORKER TIMEOUT" is
then a real finding, not a thread that kept answering.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker as GunicornWorker

from deploykit.errors import DeployKitError
from deploykit.server import logs
from deploykit.server.command import flag_interface, flag_options
from deploykit.server.config import ServerConfig
from deploykit.server.interface import adapt
from deploykit.server.options import ServerOptions, validate
from deploykit.server.server import Server

_UNLIMITED_LINE = 1_048_576


def options_from(cfg: Any, max_requests: int, http: str, extra: str = "") -> ServerOptions:
    """Gunicorn's settings, as deploykit server options; EXTRA holds `deploykit serve`
    flags for what Gunicorn has no setting for (from $DEPLOYKIT_SERVE_ARGS), and wins."""
    line = cfg.limit_request_line or _UNLIMITED_LINE
    # Gunicorn limits each field and their count; deploykit limits the whole section. The
    # total allowed is the product, but no more than 16 KiB unless one field may be larger.
    field = max(cfg.limit_request_field_size or 8190, 256)
    header_size = min(field * max(cfg.limit_request_fields, 1), max(16384, field), 1_048_576)
    given: dict[str, Any] = {
        "http": http,
        "timeout_keep_alive": cfg.keepalive,
        "timeout_graceful_shutdown": cfg.graceful_timeout,
        "max_request_line": min(max(line, 32), _UNLIMITED_LINE),
        "max_header_size": header_size,
        "forwarded_allow_ips": [*_allow_list(cfg.forwarded_allow_ips), "unix:"],  # as Gunicorn: unix peers trusted
        "access_log": bool(cfg.accesslog),
        "log_level": cfg.loglevel.lower() if cfg.loglevel.lower() != "warn" else "warning",
        "backlog": cfg.backlog,
        "limit_concurrency": cfg.worker_connections,
        "root_path": cfg.root_path or "",
        "lifespan": getattr(cfg, "asgi_lifespan", "auto"),
    }
    if max_requests < sys.maxsize:
        given["limit_max_requests"] = max_requests
    if extra:
        given.update(flag_options(shlex.split(extra)))
    return validate(given, source="gunicorn config and $DEPLOYKIT_SERVE_ARGS")


def _allow_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


class Worker(GunicornWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    http = "httptools"
    alive: bool

    def init_process(self) -> None:
        # Sockets the arbiter made are blocking; the event loop needs them non-blocking.
        for listener in self.sockets:
            listener.sock.setblocking(False)
        super().init_process()

    def run(self) -> None:
        extra = os.environ.get("DEPLOYKIT_SERVE_ARGS", "")
        options = options_from(self.cfg, self.max_requests, self.http, extra)
        logs.configure(options.log_level, options.log_config, options.use_colors, options.access_log_format)
        ssl_context = None
        if self.cfg.is_ssl:
            from gunicorn.sock import ssl_context as gunicorn_ssl_context

            ssl_context = gunicorn_ssl_context(self.cfg)
        # Gunicorn loaded the app (wsgi_app); --interface in $DEPLOYKIT_SERVE_ARGS says its kind
        # (auto: detected here), so a Flask or Django-WSGI app runs in this worker too.
        try:
            app = adapt(self.wsgi, flag_interface(shlex.split(extra)), options)
        except DeployKitError as exc:
            self.log.error("%s", exc)
            sys.exit(Arbiter.APP_LOAD_ERROR)  # the arbiter stops instead of restarting workers that would fail alike
        config = ServerConfig.build(options, app, tls=ssl_context)
        server = Server(config, heartbeat=self._heartbeat)
        self.server = server
        code = server.run_sockets([listener.sock for listener in self.sockets])
        sys.exit(code)

    def _heartbeat(self, count: int) -> None:
        self.notify()
        if self.ppid != os.getppid():  # the arbiter died: stop instead of lingering
            self.log.info("Parent changed, shutting down: %s", self)
            os.kill(os.getpid(), signal.SIGTERM)
        elif not self.alive:
            # A TERM that arrived while booting met Gunicorn's handler (which only
            # clears `alive`), not the server's: pass it on to the server, once.
            self.alive = True
            os.kill(os.getpid(), signal.SIGTERM)


class H11Worker(Worker):
    http = "h11"
