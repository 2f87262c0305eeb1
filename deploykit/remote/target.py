"""Where a command works: ``--host`` (repeatable), ``$DEPLOYKIT_HOST`` or
``[deploy] hosts`` in deploykit.toml, parsed strictly before anything runs.

Rules:
- the first source that gives hosts wins: ``--host`` flags, then
  ``$DEPLOYKIT_HOST`` (one host, or several separated by commas), then
  ``deploy.hosts``; none means this machine;
- ``local`` and ``nsenter:PID`` stand alone (one host); several hosts must all
  be ``ssh://`` URLs, each named once;
- an ``ssh://`` URL is ``ssh://[user@]host[:port]`` and nothing else: no
  password, path, query or fragment; the host is a DNS name, an IPv4 address
  or a bracketed IPv6 address; the port is 1-65535. Anything a shell or ssh
  could read as something else (a space, ``;``, ``$``, a leading ``-``) is
  refused here, so no later step has to guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deploykit.errors import UsageError

ENV = "DEPLOYKIT_HOST"
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_HINT = "Write it as ssh://[user@]host[:port], e.g. ssh://deploy@web1.example.com:2222 (or local, nsenter:PID)."


@dataclass(frozen=True)
class SshTarget:
    """One parsed ``ssh://`` URL; ``host`` is the bare name or address (no brackets)."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"ssh://{user}{host}{port}"

    @property
    def login(self) -> str:
        """``user@host`` as messages name it (``host`` when ssh picks the user)."""
        return f"{self.user}@{self.host}" if self.user else self.host


def parse_ssh(url: str, source: str = "--host") -> SshTarget:
    """Parse one ``ssh://[user@]host[:port]`` URL, or raise UsageError naming SOURCE."""

    def refuse(why: str) -> UsageError:
        return UsageError(f"{source} {url!r}: {why}", hint=_HINT)

    if not url.startswith("ssh://"):
        raise refuse("not an ssh:// URL")
    rest = url.removeprefix("ssh://")
    bad = sorted({ch for ch in rest if not (ch.isascii() and (ch.isalnum() or ch in "@:.-_[]"))})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise refuse(f"contains {shown}: only user@host:port is allowed (no path, password or shell characters)")
    user: str | None = None
    if "@" in rest:
        user, _, rest = rest.rpartition("@")
        if not _USER.fullmatch(user):
            raise refuse(f"user {user!r} is not a valid login name")
    port: int | None = None
    if rest.startswith("["):
        inner, closed, after = rest[1:].partition("]")
        if not closed:
            raise refuse("an IPv6 address needs its closing ']'")
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise refuse(f"[{inner}] is not an IPv6 address") from None
        host, rest = inner, after
        if rest and not rest.startswith(":"):
            raise refuse(f"unexpected {rest!r} after the address")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = rest.partition(":")
        port_text = port_text_ if colon else None
        if "[" in host or "]" in host:
            raise refuse("brackets are only for an IPv6 address: ssh://[2001:db8::1]:22")
        if not host:
            raise refuse("no host name")
        if not all(_LABEL.fullmatch(label) for label in host.split(".")) or len(host) > 253:
            raise refuse(f"{host!r} is not a host name or IPv4 address")
    if port_text is not None:
        if not port_text.isdigit():
            raise refuse(f"port {port_text!r} is not a number")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise refuse(f"port {port} is out of range (1-65535)")
    return SshTarget(host, user, port)


def resolve(
    flags: Sequence[str] | None, environ: Mapping[str, str], configured: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """The hosts a command works on and the source that named them:
    ``("--host", [...])``, ``("$DEPLOYKIT_HOST", [...])``, ``("deploy.hosts", [...])`` or ``("", [])``."""
    if flags:
        return "--host", list(flags)
    raw = environ.get(ENV, "").strip()
    if raw:
        return f"${ENV}", [part.strip() for part in raw.split(",")]
    if configured:
        return "deploy.hosts", list(configured)
    return "", []


def ssh_targets(source: str, hosts: Sequence[str]) -> list[SshTarget]:
    """The ssh:// hosts among HOSTS, parsed; [] when HOSTS names this machine or a container."""
    if not hosts:
        return []
    if len(hosts) == 1 and not hosts[0].startswith("ssh://"):
        return []  # local or nsenter:PID, parsed by host.connect
    targets: list[SshTarget] = []
    for given in hosts:
        if not given.startswith("ssh://"):
            raise UsageError(
                f"{source} {given!r}: only ssh:// hosts can be combined",
                hint="Give one local or nsenter:PID host, or one or more ssh:// URLs.",
            )
        target = parse_ssh(given, source)
        if target in targets:
            raise UsageError(f"{source} names {target} twice", hint="Name each host once.")
        targets.append(target)
    return targets


def choose(
    flags: Sequence[str] | None, environ: Mapping[str, str], configured: Sequence[str], *, root_given: bool = False
) -> tuple[str | None, list[SshTarget]]:
    """``(local_target, [])`` for this machine, a --root tree or a container (``host.connect`` takes
    the first), or ``(None, targets)`` for ssh:// hosts. With --root, only --host flags can conflict."""
    if root_given and not flags:
        return None, []
    source, hosts = resolve(flags, environ, configured)
    targets = ssh_targets(source, hosts)
    if not targets:
        return (hosts[0] if hosts else None), []
    if root_given:
        raise UsageError("--root and an ssh:// --host cannot be used together", hint="Pick one of them.")
    return None, targets
