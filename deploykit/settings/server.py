"""ServerSettings: the options of `deploykit serve`, in their own module so
the server imports (and pydantic builds) only this model at start-up."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator

from deploykit.settings import rules
from deploykit.settings.base import Model, conflict
from deploykit.settings.syntax import CHECKS
from deploykit.settings.types import (
    ForwardedIp,
    HeaderName,
    Host,
    NginxToken,
    SafePath,
    Syntax,
    SystemdValue,
    UrlPrefix,
)


class ServerSettings(Model):
    """Options of `deploykit serve`, named after uvicorn's flags."""

    host: Host = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    uds: SafePath | None = None
    fd: int | None = Field(default=None, ge=0)
    backlog: int = Field(default=2048, ge=1)
    loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    http: Literal["auto", "httptools", "h11"] = "auto"
    ws: Literal["auto", "websockets", "websockets-sansio", "wsproto", "none"] = Field(
        default="auto", description="websockets-sansio is an alias of websockets (uvicorn's name for it)"
    )
    lifespan: Literal["auto", "on", "off"] = "auto"
    env_file: SafePath | None = None
    root_path: Literal[""] | UrlPrefix = ""
    workers: int = Field(default=1, ge=1, le=512)
    limit_concurrency: int | None = Field(default=None, ge=1)
    limit_max_requests: int | None = Field(default=None, ge=1)
    limit_max_requests_jitter: int = Field(default=0, ge=0)
    timeout_keep_alive: float = Field(default=5, gt=0)
    timeout_header_read: float = Field(
        default=10, gt=0, le=300, description="total time to receive a request head (slowloris)"
    )
    timeout_graceful_shutdown: float = Field(default=30, gt=0)
    timeout_worker_healthcheck: float = Field(default=10, gt=0)
    proxy_headers: bool = True
    forwarded_allow_ips: tuple[ForwardedIp, ...] = Field(
        default=("127.0.0.1", "::1", "unix:"),
        description="unix: trusts a unix-socket peer (nginx); only processes the socket's mode admits can connect",
    )
    server_header: bool = True
    date_header: bool = True
    headers: dict[HeaderName, SystemdValue] = Field(default_factory=dict)
    max_header_size: int = Field(default=16384, ge=256, le=1048576)
    max_request_line: int = Field(default=8190, ge=32, le=1048576)
    h11_max_incomplete_event_size: int = Field(default=16384, ge=1024)
    ws_max_size: int = Field(default=16 * 1024 * 1024, ge=1)
    ws_max_queue: int = Field(default=32, ge=1)
    ws_ping_interval: float | None = Field(default=20.0, gt=0)
    ws_ping_timeout: float | None = Field(default=20.0, gt=0)
    ws_per_message_deflate: bool = True
    wsgi_threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="threads per process running a WSGI app (app.interface wsgi); none: 4 per CPU shared "
        "among the workers, at least 2 (Gunicorn's gthread guidance of 2-4 x cores; WSGI apps mostly wait on I/O)",
    )
    reset_contextvars: bool = Field(
        default=False,
        description="each request and WebSocket session runs in a new, empty contextvars.Context",
    )
    ssl_keyfile: SafePath | None = None
    ssl_certfile: SafePath | None = None
    ssl_ca_certs: SafePath | None = None
    ssl_ciphers: NginxToken = "TLSv1"
    ssl_keyfile_password: SecretStr | None = None
    ssl_version: int = Field(default=17, ge=0, description="ssl module protocol constant (17 = PROTOCOL_TLS_SERVER)")
    ssl_cert_reqs: int = Field(default=0, ge=0, le=2, description="0 none, 1 optional, 2 required client certs")
    reload: bool = False
    reload_dirs: tuple[SafePath, ...] = ()
    reload_includes: tuple[SystemdValue, ...] = ("*.py",)
    reload_excludes: tuple[SystemdValue, ...] = (".*", ".py[cod]", ".sw.*", "~*")
    reload_delay: float = Field(default=0.25, ge=0)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    log_config: SafePath | None = None
    access_log: bool = True
    access_log_format: Annotated[str, AfterValidator(CHECKS["access log format"]), Syntax("access log format")] = Field(
        default="text", description="text, json, or a template such as '{client} {status} {duration_ms}'"
    )
    use_colors: bool | None = None

    @model_validator(mode="after")
    def _set_together(self) -> ServerSettings:
        """settings/rules.py's SET_TOGETHER, the table `deploykit serve` checks too (server/options.py)."""
        if broken := rules.set_in_part(dict(self)):
            raise conflict(rules.together(broken[0]), *broken[0])  # pydantic's after-validator reports one
        return self
