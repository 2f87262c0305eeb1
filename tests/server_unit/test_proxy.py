"""Proxy-header trust, sans-IO."""

from __future__ import annotations

import pytest

from deploykit.server.protocols.proxy import TrustedProxies, resolve

PEER = ("127.0.0.1", 5000)


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


def test_untrusted_peer_headers_are_ignored() -> None:
    trusted = TrustedProxies.parse(["10.0.0.1"])
    assert resolve(trusted, PEER, "http", headers(x_forwarded_for="1.2.3.4", x_forwarded_proto="https")) == (
        PEER,
        "http",
    )


def test_rightmost_untrusted_hop_is_the_client() -> None:
    trusted = TrustedProxies.parse(["127.0.0.1"])
    client, _ = resolve(trusted, PEER, "http", headers(x_forwarded_for="1.2.3.4, 5.6.7.8"))
    assert client == ("5.6.7.8", 0)
    trusted = TrustedProxies.parse(["127.0.0.1", "5.6.7.8"])
    assert resolve(trusted, PEER, "http", headers(x_forwarded_for="1.2.3.4, 5.6.7.8"))[0] == ("1.2.3.4", 0)


def test_all_hops_trusted_gives_the_leftmost() -> None:
    trusted = TrustedProxies.parse(["*"])
    assert resolve(trusted, PEER, "http", headers(x_forwarded_for="1.1.1.1, 2.2.2.2"))[0] == ("1.1.1.1", 0)


@pytest.mark.parametrize(
    ("proto", "scheme"), [("https", "https"), ("HTTP", "http"), ("javascript", "http"), ("", "http")]
)
def test_forwarded_proto_only_known_schemes(proto: str, scheme: str) -> None:
    trusted = TrustedProxies.parse(["127.0.0.0/8"])
    assert resolve(trusted, PEER, "http", headers(x_forwarded_proto=proto))[1] == scheme


def test_websocket_schemes_follow_the_proxy() -> None:
    trusted = TrustedProxies.parse(["127.0.0.1"])
    assert resolve(trusted, PEER, "ws", headers(x_forwarded_proto="https"))[1] == "wss"


def test_rfc7239_forwarded_wins_and_handles_quotes_and_ipv6() -> None:
    trusted = TrustedProxies.parse(["127.0.0.1"])
    value = 'for=9.9.9.9;proto=http, for="[2001:db8::1]:4711";proto=https'
    got = resolve(trusted, PEER, "http", headers(forwarded=value, x_forwarded_for="6.6.6.6"))
    assert got == (("2001:db8::1", 4711), "https")


def test_unix_peer_is_trusted_only_with_unix_entry() -> None:
    h = headers(x_forwarded_for="1.2.3.4")
    assert resolve(TrustedProxies.parse(["127.0.0.1"]), None, "http", h)[0] is None
    assert resolve(TrustedProxies.parse(["unix:"]), None, "http", h)[0] == ("1.2.3.4", 0)


def test_client_port_is_kept_when_given() -> None:
    trusted = TrustedProxies.parse(["127.0.0.1"])
    assert resolve(trusted, PEER, "http", headers(x_forwarded_for="1.2.3.4:8080"))[0] == ("1.2.3.4", 8080)
