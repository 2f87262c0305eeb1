"""`deploykit serve`: uvicorn's flags, validated by the shared settings model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deploykit.errors import DeployKitError, UsageError

Opt = typer.Option


def serve(
    app: Annotated[str, typer.Argument(help="The ASGI app as module:attribute.")],
    factory: Annotated[bool, Opt(help="APP is a factory: call it to get the app.")] = False,
    app_dir: Annotated[Path | None, Opt(help="Import the app from this directory [default: .]")] = None,
    host: Annotated[str | None, Opt(help="Bind address [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, Opt(help="Bind port [default: 8000].")] = None,
    uds: Annotated[str | None, Opt(help="Bind to this unix socket path.")] = None,
    fd: Annotated[int | None, Opt(help="Serve on an inherited socket file descriptor (e.g. 3 from systemd).")] = None,
    backlog: Annotated[int | None, Opt(help="Listen backlog [default: 2048].")] = None,
    loop: Annotated[str | None, Opt(help="auto, uvloop or asyncio.")] = None,
    http: Annotated[str | None, Opt(help="auto, httptools or h11.")] = None,
    ws: Annotated[str | None, Opt(help="auto, websockets, wsproto or none.")] = None,
    lifespan: Annotated[str | None, Opt(help="auto, on or off.")] = None,
    env_file: Annotated[str | None, Opt(help="Load KEY=VALUE lines into the environment first.")] = None,
    workers: Annotated[int | None, Opt(help="Worker processes [default: $WEB_CONCURRENCY or 1].")] = None,
    root_path: Annotated[str | None, Opt(help="ASGI root_path, when mounted below a prefix.")] = None,
    limit_concurrency: Annotated[int | None, Opt(help="Answer 503 beyond this many requests in flight.")] = None,
    limit_max_requests: Annotated[int | None, Opt(help="Exit after this many requests.")] = None,
    timeout_keep_alive: Annotated[float | None, Opt(help="Close idle keep-alive connections after [5] s.")] = None,
    timeout_header_read: Annotated[float | None, Opt(help="Total seconds to receive a request head [10].")] = None,
    timeout_graceful_shutdown: Annotated[float | None, Opt(help="Seconds to drain on stop [30].")] = None,
    proxy_headers: Annotated[bool | None, Opt(help="Trust X-Forwarded-*/Forwarded from allowed IPs.")] = None,
    forwarded_allow_ips: Annotated[str | None, Opt(help="Comma-separated IPs, CIDRs, * or unix:.")] = None,
    server_header: Annotated[bool | None, Opt(help="Send 'server: deploykit'.")] = None,
    date_header: Annotated[bool | None, Opt(help="Send a Date header.")] = None,
    header: Annotated[list[str] | None, Opt(help="Default response header NAME:VALUE (repeat).")] = None,
    max_header_size: Annotated[int | None, Opt(help="Header section limit in bytes, else 431 [16384].")] = None,
    max_request_line: Annotated[int | None, Opt(help="Request-target limit in bytes, else 414 [8190].")] = None,
    h11_max_incomplete_event_size: Annotated[int | None, Opt(help="h11 buffer limit in bytes.")] = None,
    ssl_keyfile: Annotated[str | None, Opt(help="TLS key file.")] = None,
    ssl_certfile: Annotated[str | None, Opt(help="TLS certificate file.")] = None,
    ssl_keyfile_password: Annotated[str | None, Opt(help="Password of the key file.")] = None,
    ssl_version: Annotated[int | None, Opt(help="ssl protocol constant [17].")] = None,
    ssl_cert_reqs: Annotated[int | None, Opt(help="Client certs: 0 none, 1 optional, 2 required.")] = None,
    ssl_ca_certs: Annotated[str | None, Opt(help="CA file for client certificates.")] = None,
    ssl_ciphers: Annotated[str | None, Opt(help="Cipher string [TLSv1].")] = None,
    log_level: Annotated[str | None, Opt(help="critical, error, warning, info, debug or trace.")] = None,
    log_config: Annotated[str | None, Opt(help="Logging config: .json/.yaml dictConfig or .ini fileConfig.")] = None,
    access_log: Annotated[bool | None, Opt(help="Log one line per request.")] = None,
    access_log_format: Annotated[str | None, Opt(help="text or json.")] = None,
    use_colors: Annotated[bool | None, Opt(help="Colour log output [default: when a terminal].")] = None,
    reload: Annotated[bool | None, Opt(help="Restart on code changes (development).")] = None,
    reload_dir: Annotated[list[str] | None, Opt(help="Directory to watch (repeat).")] = None,
    reload_delay: Annotated[float | None, Opt(help="Seconds between reload checks.")] = None,
) -> None:
    """Run an ASGI app (uvicorn-compatible flags)."""
    from deploykit.server import run

    given: dict[str, Any] = {k: v for k, v in locals().items() if v is not None and k not in _NOT_SETTINGS}
    if forwarded_allow_ips is not None:
        given["forwarded_allow_ips"] = [ip.strip() for ip in forwarded_allow_ips.split(",") if ip.strip()]
    if header:
        given["headers"] = dict(_header(h) for h in header)
    if reload_dir:
        given["reload_dirs"] = [str(Path(d).resolve()) for d in reload_dir]
    given.pop("header", None)
    given.pop("reload_dir", None)
    if given.get("reload"):
        raise UsageError("--reload is not built yet (issue 6)", hint="restart the server by hand for now")
    code = run(app, factory=factory, app_dir=str(app_dir) if app_dir else None, source="command line", **given)
    if code:
        raise DeployKitError(f"the server stopped with exit code {code}") if code != 3 else _StartupFailed()


_NOT_SETTINGS = {"app", "factory", "app_dir", "run"}


class _StartupFailed(DeployKitError):
    exit_code = 3

    def __init__(self) -> None:
        super().__init__("application startup failed (see the log above)")


def _header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"--header {raw!r}: expected NAME:VALUE")
    return name.strip(), value.strip()
