"""The syntax checks behind every validated settings string, keyed by label.

Pure functions with no pydantic import: ``types.py`` wraps them as pydantic
types for the settings model, and the server's option validator calls them
directly, so `deploykit serve` starts without pydantic while both apply the
very same rules.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

# C0 controls, DEL, C1 controls (U+0085 among them) and the Unicode line and paragraph separators:
# everything str.splitlines breaks on except "\n" is in here, so a validated value is one line for
# every reader (sh, systemd, Python), and prints nothing a terminal would interpret.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMES = {
    "\n": "a newline",
    "\r": "a carriage return",
    "\u2028": "U+2028 LINE SEPARATOR",
    "\u2029": "U+2029 PARAGRAPH SEPARATOR",
}


def lines(text: str) -> list[str]:
    """TEXT's lines, each with its "\\n": the one line rule of deploykit's files, env files above
    all — written (render), read (`serve --env-file`) and masked (secrets on screen) by it alike.
    Only "\\n" ends a line, as for sh and systemd; str.splitlines also breaks on \\r, \\v, \\f,
    \\x1c-\\x1e, U+0085, U+2028 and U+2029, which would make Python see lines no other reader sees."""
    parts = text.split("\n")
    out = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def control_character(value: str) -> str | None:
    """A description of the first control character or line separator in VALUE, or None."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    char = found.group()
    return _NAMES.get(char, f"the control character U+{ord(char):04X}")


_NGINX_FORBIDDEN = re.compile(r"[\s;{}\"'\\#$]")
_PATH = re.compile(r"/[A-Za-z0-9._/@+=,-]*")


def no_control(value: str) -> str:
    found = control_character(value)
    if found is not None:
        raise ValueError(f"contains {found}: must not contain newlines, line separators or other control characters")
    return value


def nginx_token(value: str) -> str:
    no_control(value)
    if not value:
        raise ValueError("must not be empty")
    bad = _NGINX_FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"contains {bad.group()!r}, which would end or break an nginx directive "
            "(whitespace, ; { } quotes \\ # $ are not allowed)"
        )
    return value


def safe_path(value: str) -> str:
    no_control(value)
    if not value.startswith("/"):
        raise ValueError("must be an absolute path (start with /)")
    if not _PATH.fullmatch(value):
        raise ValueError(
            "may only contain letters, digits and . _ / @ + = , - "
            "(spaces, quotes, ; % $ and braces would break nginx or systemd syntax)"
        )
    if any(part == ".." for part in value.split("/")):
        raise ValueError("must not contain '..' segments")
    return value


def _network_or(value: str, words: tuple[str, ...]) -> str:
    """An IP address, a CIDR network, or one of WORDS."""
    no_control(value)
    if value in words:
        return value
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"must be an IP address, a CIDR network or {' or '.join(map(repr, words))}") from exc
    return value


def forwarded_ip(value: str) -> str:
    return _network_or(value, ("*", "unix:"))


def ip_address(value: str) -> str:
    no_control(value)
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise ValueError("must be an IP address") from exc
    return value


def real_ip_source(value: str) -> str:
    """What nginx's set_real_ip_from takes: an address, a CIDR network, or unix:."""
    return _network_or(value, ("unix:",))


ACCESS_FIELDS = ("client", "method", "path", "http_version", "status", "bytes", "duration_ms", "time")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def access_log_format(value: str) -> str:
    """'text', 'json', or a template of {placeholders} from ACCESS_FIELDS."""
    no_control(value)
    if value in ("text", "json"):
        return value
    names = _PLACEHOLDER.findall(value)
    unknown = sorted(set(names) - set(ACCESS_FIELDS))
    if not names or unknown or "{" in _PLACEHOLDER.sub("", value) or "}" in _PLACEHOLDER.sub("", value):
        raise ValueError(f"must be 'text', 'json' or a template using {{{'}, {'.join(ACCESS_FIELDS)}}}")
    return value


def matching(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        no_control(value)
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return check


#: label -> check; the label also names the type in the settings reference (docs/reference/settings.md).
CHECKS: dict[str, Callable[[str], str]] = {
    "nginx token": nginx_token,
    "absolute path": safe_path,
    "project path": matching(
        r"[A-Za-z0-9._/@+=,-]+", "a path relative to deploykit.toml, or absolute (letters, digits and . _ / @ + = , -)"
    ),
    "one-line text": no_control,
    "folder name": matching(
        r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*",
        "a relative folder such as 'media' or 'media/uploads' (letters, digits, . _ -; no leading dot)",
    ),
    "IP/CIDR, * or unix:": forwarded_ip,
    "IP/CIDR or unix:": real_ip_source,
    "IP address": ip_address,
    "variable name": matching(r"[A-Za-z_][A-Za-z0-9_]*", "a variable name (letters, digits, _)"),
    "app name": matching(
        r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "2-32 lowercase letters, digits or '-', starting with a letter"
    ),
    "user/group name": matching(r"[a-z_][a-z0-9_-]{0,31}", "a user or group name (lowercase letters, digits, _ -)"),
    "module:attr": matching(
        r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", "'module:attribute', e.g. 'myapp.main:app'"
    ),
    "host name": matching(
        r"_|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
        "a host name such as 'example.com' or '*.example.com', or '_'",
    ),
    "URL path": matching(r"/([A-Za-z0-9._~-]+/?)*", "a URL path such as '/static/' (letters, digits, . _ ~ - /)"),
    "size (16m)": matching(r"[0-9]+[kKmMgG]?", "a size such as 512k, 16m or 1g"),
    "rate (10r/s)": matching(r"[0-9]+r/[sm]", "a rate such as 10r/s or 30r/m"),
    "nginx time": matching(r"off|max|epoch|[0-9]+(ms|s|m|h|d|w|M|y)?", "an nginx time such as 7d, 1h, max or off"),
    "host or IP": matching(r"[A-Za-z0-9.:_-]+", "an IP address or host name"),
    "access log format": access_log_format,
    "request header name": matching(
        r"[A-Za-z][A-Za-z0-9-]*", "a request header name such as X-Forwarded-For (letters, digits, -)"
    ),
    "header name": matching(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", "an HTTP header name (RFC 9110 token)"),
}
