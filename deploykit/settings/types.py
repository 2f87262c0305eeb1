"""Validated string types for every value that reaches a rendered file.

Each type states the syntax of its *target* (an nginx token, a systemd value,
an environment-file value, an absolute path) and rejects anything outside it, so
a template can never be broken out of: no ``;``, braces, quotes or whitespace
in nginx tokens, no control characters anywhere, no ``%`` specifiers or spaces
in paths that systemd and nginx both read. The checks live in ``syntax.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, PlainValidator

from deploykit.settings.syntax import CHECKS


def _scalar_text(value: object) -> object:
    """TOML/--set scalars as the text a shell would see: true, 8000, 0.5."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


@dataclass(frozen=True)
class Syntax:
    """Names a validated type (a key of ``syntax.CHECKS``) in the settings reference."""

    label: str


#: A token that lands inside an nginx directive unquoted.
NginxToken = Annotated[str, AfterValidator(CHECKS["nginx token"]), Syntax("nginx token")]
#: An absolute path usable unquoted in nginx, systemd and gunicorn files.
SafePath = Annotated[str, AfterValidator(CHECKS["absolute path"]), Syntax("absolute path")]
#: A path in the project, relative to deploykit.toml (or absolute); only read on the machine running deploykit.
ProjectPath = Annotated[str, AfterValidator(CHECKS["project path"]), Syntax("project path")]
#: One line of a systemd unit value: anything printable, no newline.
SystemdValue = Annotated[str, AfterValidator(CHECKS["one-line text"]), Syntax("one-line text")]


def _command(value: object) -> str | tuple[str, ...]:
    """A command: a shell line (a string) or an argv (a list of strings), each part one line, none empty."""
    if isinstance(value, str):
        parts: tuple[object, ...] = (value,)
    elif isinstance(value, list | tuple):
        parts = tuple(value)
    else:
        raise ValueError(
            f"must be a command line (a string) or an argv (a list of strings), not {type(value).__name__}"
        )
    if not parts:
        raise ValueError("must not be an empty list")
    words: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(f"an argv holds strings only, not {part!r}")
        words.append(CHECKS["one-line text"](part))
    if not words[0].strip():
        raise ValueError("must not be empty")
    return words[0] if isinstance(value, str) else tuple(words)


#: A command a hook runs: a shell line (``/bin/sh -c``) or an argv list; one line each, no control characters.
Command = Annotated[
    str | tuple[str, ...],
    PlainValidator(_command),
    PlainSerializer(lambda value: value if isinstance(value, str) else list(value)),
    Syntax("command"),
]
#: A value for /etc/default/<app>: printable; the renderer quotes and escapes it.
#: Numbers and booleans (`PORT = 8000`, `--set app.env.DEBUG=true`) become their text, as a shell would see them.
EnvValue = Annotated[
    str, BeforeValidator(_scalar_text), AfterValidator(CHECKS["one-line text"]), Syntax("one-line text")
]
#: A folder below a systemd-managed directory (StateDirectory=<app>/<folder>).
FolderName = Annotated[str, AfterValidator(CHECKS["folder name"]), Syntax("folder name")]
EnvKey = Annotated[str, AfterValidator(CHECKS["variable name"]), Syntax("variable name")]
AppName = Annotated[str, AfterValidator(CHECKS["app name"]), Syntax("app name")]
UnixName = Annotated[str, AfterValidator(CHECKS["user/group name"]), Syntax("user/group name")]
ModuleRef = Annotated[str, AfterValidator(CHECKS["module:attr"]), Syntax("module:attr")]
ServerName = Annotated[str, AfterValidator(CHECKS["host name"]), Syntax("host name")]
UrlPrefix = Annotated[str, AfterValidator(CHECKS["URL path"]), Syntax("URL path")]
Size = Annotated[str, AfterValidator(CHECKS["size (16m)"]), Syntax("size (16m)")]
Rate = Annotated[str, AfterValidator(CHECKS["rate (10r/s)"]), Syntax("rate (10r/s)")]
Expires = Annotated[str, AfterValidator(CHECKS["nginx time"]), Syntax("nginx time")]
Host = Annotated[str, AfterValidator(CHECKS["host or IP"]), Syntax("host or IP")]
ForwardedIp = Annotated[str, AfterValidator(CHECKS["IP/CIDR, * or unix:"]), Syntax("IP/CIDR, * or unix:")]
HeaderName = Annotated[str, AfterValidator(CHECKS["header name"]), Syntax("header name")]
RealIpSource = Annotated[str, AfterValidator(CHECKS["IP/CIDR or unix:"]), Syntax("IP/CIDR or unix:")]
#: A header that nginx reads unquoted (real_ip_header): a stricter subset of the RFC 9110 token.
RequestHeader = Annotated[str, AfterValidator(CHECKS["request header name"]), Syntax("request header name")]
IpAddress = Annotated[str, AfterValidator(CHECKS["IP address"]), Syntax("IP address")]
