"""Logging for the server: levels, --log-config, and the access log.

Values from the request reach the access log escaped: control characters
and non-ASCII bytes become ``\\xNN``, so a request can never write raw escape
sequences to a terminal or forge log lines. The JSON format gets the same
protection from ``json.dumps``.
"""

from __future__ import annotations

import logging
import sys
import time
from time import perf_counter
from typing import Any

from deploykit.errors import DeployKitError

TRACE = 5
access_logger = logging.getLogger("deploykit.access")
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F, 0x22, 0x5C]}


def escape(text: str) -> str:
    """Printable ASCII stays; everything else is escaped."""
    out = text.translate(_ESCAPES)
    if not out.isascii():
        out = out.encode("ascii", "backslashreplace").decode("ascii")
    return out


def utc_time(now: float) -> str:
    """NOW in ISO 8601, UTC, to the millisecond: ``2026-11-30T06:50:00.123+00:00`` (what
    ``datetime.isoformat(timespec="milliseconds")`` writes, without importing datetime at start-up)."""
    seconds = int(now)
    micros = round((now - seconds) * 1e6)  # to the microsecond first, as datetime does, then cut
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros // 1000:03d}+00:00"


def target(scope: dict[str, Any]) -> str:
    """The request-target as it came on the wire (raw path and query), for the access log."""
    text: str = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        text += "?" + scope["query_string"].decode("latin-1")
    return text


def access(
    fmt: str,
    client: tuple[str, int] | None,
    request: tuple[str, str, str] | None,
    status: int,
    sent: int,
    start: float | None,
    error: str | None = None,
) -> None:
    """Write one access-log line: the only writer of ``deploykit.access``.

    Every exchange comes through here — an HTTP response, a WebSocket accepted
    or refused, a request the server rejected, a request head that timed out —
    so every value from the request is escaped (text and templates) or JSON
    encoded, and each record is exactly one line. REQUEST is (method, target,
    HTTP version), None when the head was never parsed; START is the
    perf_counter() of the request's start, None when unknown; ERROR says why
    the server answered by itself."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    millis = None if start is None else round((perf_counter() - start) * 1000, 3)
    peer = f"{client[0]}:{client[1]}" if client else "unix"
    method, path, version = request if request is not None else ("-", "-", "-")
    if fmt == "text":
        line = f"{method} {path} HTTP/{version}" if request is not None else f"({error})"
        duration = "-" if millis is None else f"{millis:.2f}ms"
        access_logger.info('%s - "%s" %d %d %s', escape(peer), escape(line), status, sent, duration)
        return
    fields: dict[str, Any] = {
        "time": utc_time(time.time()),
        "client": peer,
        "method": method,
        "path": path,
        "http_version": version,
        "status": status,
        "bytes": sent,
        "duration_ms": millis,
    }
    if error is not None:
        fields["error"] = error
    if fmt == "json":
        import json  # not at start-up: only this format and --log-config use it

        access_logger.info("%s", json.dumps(fields))
    else:
        access_logger.info("%s", fmt.format_map({k: "-" if v is None else escape(str(v)) for k, v in fields.items()}))


def configure(level: str, log_config: str | None, use_colors: bool | None, access_format: str = "text") -> None:
    """Plain stderr logging at LEVEL, or the user's --log-config (JSON, YAML or INI).
    With the JSON or a template access-log format each line is exactly that record."""
    logging.addLevelName(TRACE, "TRACE")
    if log_config is not None:
        _load_config(log_config)
    else:
        colors = use_colors if use_colors is not None else sys.stderr.isatty()
        fmt = "%(asctime)s %(levelname)s %(message)s"
        if colors:
            fmt = "\x1b[2m%(asctime)s\x1b[0m %(levelname)s %(message)s"
        _handle("deploykit.error", fmt)
        _handle("deploykit.access", fmt if access_format == "text" else "%(message)s")
    numeric = TRACE if level == "trace" else getattr(logging, level.upper())
    logging.getLogger("deploykit.error").setLevel(numeric)
    logging.getLogger("deploykit.access").setLevel(numeric)


def _handle(name: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False


def _load_config(path: str) -> None:
    import configparser
    import json
    import logging.config

    try:
        if path.endswith(".json"):
            logging.config.dictConfig(json.loads(_read(path)))
        elif path.endswith((".yaml", ".yml")):
            logging.config.dictConfig(_yaml(path))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except (OSError, ValueError, KeyError, TypeError, configparser.Error) as exc:
        raise DeployKitError(f"--log-config {path}: {exc}") from exc


def _yaml(path: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]  # optional: only for YAML log configs
    except ImportError as exc:
        raise DeployKitError(f"--log-config {path}: YAML needs PyYAML (pip install pyyaml)") from exc
    return yaml.safe_load(_read(path))


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()
