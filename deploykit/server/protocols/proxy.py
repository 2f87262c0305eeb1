"""Proxy headers, sans-IO: which client and scheme a request really came from.

Headers are believed only when the immediate peer is trusted
(``--forwarded-allow-ips``: IPs, CIDR networks, ``*``, or ``unix:`` for a
unix-socket peer). Hops are read right to left and the first untrusted one is
the client, so a client cannot forge its address by prepending hops. RFC 7239
``Forwarded`` wins over ``X-Forwarded-For``/``-Proto`` when both are present.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Address = tuple[str, int] | None
_SCHEMES = {"http", "https", "ws", "wss"}


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    literals: frozenset[str] = frozenset()
    everyone: bool = False
    unix: bool = False

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        networks, literals = [], set()
        everyone = unix = False
        for raw in entries:
            entry = raw.strip()
            if entry == "*":
                everyone = True
            elif entry == "unix:":
                unix = True
            elif entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    literals.add(entry)
        return cls(tuple(networks), frozenset(literals), everyone, unix)

    def trusts(self, host: str | None) -> bool:
        return self._trusts(host)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - instances are few and live as long as the server
    def _trusts(self, host: str | None) -> bool:
        if self.everyone:
            return True
        if host is None:
            return self.unix
        if host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def resolve(
    trusted: TrustedProxies, client: Address, scheme: str, headers: Sequence[tuple[bytes, bytes]]
) -> tuple[Address, str]:
    """The (client, scheme) to put in the ASGI scope."""
    if not trusted.trusts(client[0] if client else None):
        return client, scheme
    return resolve_trusted(trusted, client, scheme, headers)


def resolve_trusted(
    trusted: TrustedProxies, client: Address, scheme: str, headers: Sequence[tuple[bytes, bytes]]
) -> tuple[Address, str]:
    """``resolve`` for a peer already known to be trusted (checked once per connection)."""
    forwarded: list[bytes] = []
    xff: list[bytes] = []
    xfp: list[bytes] = []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            xff.append(value)
        elif name == b"x-forwarded-proto":
            xfp.append(value)
    if not (forwarded or xff or xfp):
        return client, scheme
    if forwarded:
        hops, protos = _parse_forwarded(b",".join(forwarded).decode("latin-1"))
    else:
        hops = [h.strip() for h in b",".join(xff).decode("latin-1").split(",")] if xff else []
        protos = [p.strip() for p in b",".join(xfp).decode("latin-1").split(",")] if xfp else []
    return _client(trusted, client, hops), _scheme(scheme, protos)


def _client(trusted: TrustedProxies, client: Address, hops: list[str]) -> Address:
    chosen = None
    for hop in reversed(hops):
        if not hop:
            continue
        chosen = hop
        if not trusted.trusts(_host_only(hop)):
            break
    if chosen is None:
        return client
    host, port = _split_host_port(chosen)
    return (host, port)


def _scheme(scheme: str, protos: list[str]) -> str:
    if not protos:
        return scheme
    proto = protos[-1].lower()
    if proto not in _SCHEMES:
        return scheme
    if scheme in ("ws", "wss"):
        return "wss" if proto in ("https", "wss") else "ws"
    return "https" if proto in ("https", "wss") else "http"


def _host_only(hop: str) -> str:
    return _split_host_port(hop)[0]


def _split_host_port(hop: str) -> tuple[str, int]:
    hop = hop.strip().strip('"')
    if hop.startswith("["):
        host, _, rest = hop[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else 0
    if hop.count(":") == 1:
        host, _, port = hop.partition(":")
        return host, int(port) if port.isdigit() else 0
    return hop, 0


def _parse_forwarded(value: str) -> tuple[list[str], list[str]]:
    """RFC 7239: comma-separated elements of ;-separated pairs; quoted values."""
    hops: list[str] = []
    protos: list[str] = []
    for element in _split_outside_quotes(value, ","):
        for pair in _split_outside_quotes(element, ";"):
            key, sep, raw = pair.partition("=")
            if not sep:
                continue
            key, raw = key.strip().lower(), raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1].replace('\\"', '"')
            if key == "for":
                hops.append(raw)
            elif key == "proto":
                protos.append(raw)
    return hops, protos


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
