"""--proxy-headers with --forwarded-allow-ips: X-Forwarded-For/-Proto and RFC 7239 Forwarded,
honoured only from trusted peers (exact IPs, CIDR, `*`, and `unix:` for unix-socket peers)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.server.harness import Pool, Server, Spec, request


def proxy(allow: str) -> tuple[str, ...]:
    return ("--proxy-headers", "--forwarded-allow-ips", allow)


LOCAL = Spec(proxy("127.0.0.1"))
LOCAL_AND_HOP = Spec(proxy("127.0.0.1,5.6.7.8"))
OTHER_PEER = Spec(proxy("10.0.0.1"))
CIDR = Spec(proxy("127.0.0.0/8"))
EVERYONE = Spec(proxy("*"))
UNIX = Spec(proxy("unix:"), uds=True)
UNIX_UNTRUSTED = Spec(proxy("127.0.0.1"), uds=True)


@pytest.fixture(scope="module", autouse=True)
def _warm(pool: Pool) -> None:
    pool.warm([LOCAL, LOCAL_AND_HOP, OTHER_PEER, CIDR, EVERYONE, UNIX, UNIX_UNTRUSTED])


def scope_with(server: Server, *headers: str) -> dict[str, Any]:
    response = server.exchange(request("/scope", headers=("Host: test", *headers)))
    assert response.status == 200, response.head
    data: dict[str, Any] = json.loads(response.body)
    return data


def client_host(server: Server, *headers: str) -> str | None:
    client = scope_with(server, *headers)["client"]
    return None if client is None else str(client[0])


def test_x_forwarded_for_uses_rightmost_untrusted_hop(pool: Pool) -> None:
    assert client_host(pool.get(LOCAL), "X-Forwarded-For: 1.2.3.4, 5.6.7.8") == "5.6.7.8"


def test_x_forwarded_for_skips_trusted_hops(pool: Pool) -> None:
    assert client_host(pool.get(LOCAL_AND_HOP), "X-Forwarded-For: 1.2.3.4, 5.6.7.8") == "1.2.3.4"


def test_x_forwarded_proto_https_sets_scheme(pool: Pool) -> None:
    assert scope_with(pool.get(LOCAL), "X-Forwarded-Proto: https")["scheme"] == "https"


def test_invalid_x_forwarded_proto_is_ignored(pool: Pool) -> None:
    assert scope_with(pool.get(LOCAL), "X-Forwarded-Proto: javascript")["scheme"] == "http"


def test_rfc7239_forwarded_header_is_honoured(pool: Pool) -> None:
    scope = scope_with(pool.get(LOCAL), "Forwarded: for=9.9.9.9;proto=https")
    assert scope["client"] is not None and scope["client"][0] == "9.9.9.9", scope["client"]
    assert scope["scheme"] == "https"


def test_proxy_headers_from_untrusted_peer_are_ignored(pool: Pool) -> None:
    server = pool.get(OTHER_PEER)
    scope = scope_with(server, "X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https")
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"
    scope = scope_with(server, "Forwarded: for=9.9.9.9;proto=https")
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"


def test_cidr_in_forwarded_allow_ips(pool: Pool) -> None:
    assert client_host(pool.get(CIDR), "X-Forwarded-For: 1.2.3.4, 5.6.7.8") == "5.6.7.8"


def test_star_trusts_every_hop(pool: Pool) -> None:
    assert client_host(pool.get(EVERYONE), "X-Forwarded-For: 1.2.3.4, 5.6.7.8") == "1.2.3.4"


def test_unix_in_forwarded_allow_ips_trusts_unix_socket_peer(pool: Pool) -> None:
    scope = scope_with(pool.get(UNIX), "X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https")
    assert scope["client"] is not None and scope["client"][0] == "1.2.3.4", scope["client"]
    assert scope["scheme"] == "https"


def test_unix_socket_peer_not_in_allow_list_is_not_trusted(pool: Pool) -> None:
    server = pool.get(UNIX_UNTRUSTED)
    assert server.exchange(request("/hello")).body == b"Hello, world!"
    scope = scope_with(server, "X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https")
    assert scope["client"] is None or scope["client"][0] != "1.2.3.4", scope["client"]
    assert scope["scheme"] == "http"
