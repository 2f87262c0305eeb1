"""Validated string types for every value that reaches a rendered file.

Each type states the syntax of its *target* (an nginx token, a systemd value,
an environment-file value, an absolute path) and rejects anything outside it, so
a template can never be broken out of: no ``;``, braces, quotes or whitespace
in nginx tokens, no control characters anywhere, no ``%`` specifiers or spaces
in paths that systemd and nginx both read.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator


@dataclass(frozen=True)
class Syntax:
    """Names a validated type in the generated settings reference."""

    label: str


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NGINX_FORBIDDEN = re.compile(r"[\s;{}\"'\\#$]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain newlines or other control characters")
    return value


def _matches(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        _no_control(value)
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


def _nginx_token(value: str) -> str:
    _no_control(value)
    if not value:
        raise ValueError("must not be empty")
    bad = _NGINX_FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"contains {bad.group()!r}, which would end or break an nginx directive "
            "(whitespace, ; { } quotes \\ # $ are not allowed)"
        )
    return value


def _safe_path(value: str) -> str:
    _no_control(value)
    if not value.startswith("/"):
        raise ValueError("must be an absolute path (start with /)")
    if not re.fullmatch(r"/[A-Za-z0-9._/@+=,-]*", value):
        raise ValueError(
            "may only contain letters, digits and . _ / @ + = , - "
            "(spaces, quotes, ; % $ and braces would break nginx or systemd syntax)"
        )
    if any(part == ".." for part in value.split("/")):
        raise ValueError("must not contain '..' segments")
    return value


def _forwarded_ip(value: str) -> str:
    _no_control(value)
    if value in ("*", "unix:"):
        return value
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError("must be an IP address, a CIDR network, '*' or 'unix:'") from exc
    return value


#: A token that lands inside an nginx directive unquoted.
NginxToken = Annotated[str, AfterValidator(_nginx_token), Syntax("nginx token")]
#: An absolute path usable unquoted in nginx, systemd and gunicorn files.
SafePath = Annotated[str, AfterValidator(_safe_path), Syntax("absolute path")]
#: One line of a systemd unit value: anything printable, no newline.
SystemdValue = Annotated[str, AfterValidator(_no_control), Syntax("one-line text")]
#: A value for /etc/default/<app>: printable; the renderer quotes and escapes it.
EnvValue = Annotated[str, AfterValidator(_no_control), Syntax("one-line text")]
EnvKey = Annotated[
    str, _matches(r"[A-Za-z_][A-Za-z0-9_]*", "a variable name (letters, digits, _)"), Syntax("variable name")
]
AppName = Annotated[
    str,
    _matches(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "2-32 lowercase letters, digits or '-', starting with a letter"),
    Syntax("app name"),
]
UnixName = Annotated[
    str,
    _matches(r"[a-z_][a-z0-9_-]{0,31}", "a user or group name (lowercase letters, digits, _ -)"),
    Syntax("user/group name"),
]
ModuleRef = Annotated[
    str,
    _matches(
        r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*",
        "'module:attribute', e.g. 'myapp.main:app'",
    ),
    Syntax("module:attr"),
]
ServerName = Annotated[
    str,
    _matches(
        r"_|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
        "a host name such as 'example.com' or '*.example.com', or '_'",
    ),
    Syntax("host name"),
]
UrlPrefix = Annotated[
    str,
    _matches(r"/([A-Za-z0-9._~-]+/?)*", "a URL path such as '/static/' (letters, digits, . _ ~ - /)"),
    Syntax("URL path"),
]
Size = Annotated[str, _matches(r"[0-9]+[kKmMgG]?", "a size such as 512k, 16m or 1g"), Syntax("size (16m)")]
Rate = Annotated[str, _matches(r"[0-9]+r/[sm]", "a rate such as 10r/s or 30r/m"), Syntax("rate (10r/s)")]
Expires = Annotated[
    str,
    _matches(r"off|max|epoch|[0-9]+(ms|s|m|h|d|w|M|y)?", "an nginx time such as 7d, 1h, max or off"),
    Syntax("nginx time"),
]
Host = Annotated[str, _matches(r"[A-Za-z0-9.:_-]+", "an IP address or host name"), Syntax("host or IP")]
ForwardedIp = Annotated[str, AfterValidator(_forwarded_ip), Syntax("IP/CIDR, * or unix:")]
HeaderName = Annotated[
    str, _matches(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", "an HTTP header name (RFC 9110 token)"), Syntax("header name")
]
