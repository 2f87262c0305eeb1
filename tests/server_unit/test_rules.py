"""Request-head rules shared by both parsers."""

from __future__ import annotations

import pytest

from deploykit.server.protocols.rules import RequestRejected, absolute_target, inspect_head

HOST = (b"host", b"a")


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [HOST, HOST],
        [HOST, (b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
        [HOST, (b"transfer-encoding", b"gzip, chunked")],
        [HOST, (b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")],
        [HOST, (b"content-length", b"+10")],
        [HOST, (b"content-length", b"5, 5")],
        [HOST, (b"content-length", b"5"), (b"content-length", b"6")],
    ],
)
def test_bad_heads_are_400(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(RequestRejected) as info:
        inspect_head(headers, True)
    assert info.value.status == 400


def test_http10_needs_no_host_and_closes_by_default() -> None:
    assert inspect_head([], False).keep_alive is False
    assert inspect_head([(b"connection", b"Keep-Alive")], False).keep_alive is True


def test_connection_close_and_expect_continue() -> None:
    head = inspect_head([HOST, (b"connection", b"close")], True)
    assert head.keep_alive is False
    head = inspect_head([HOST, (b"expect", b"100-continue"), (b"content-length", b"3")], True)
    assert head.expect_continue and head.has_body
    assert not inspect_head([HOST, (b"expect", b"100-continue")], True).expect_continue  # no body, nothing to wait for


def test_identical_duplicate_lengths_are_one_length() -> None:
    assert inspect_head([HOST, (b"content-length", b"0"), (b"content-length", b"0")], True).has_body is False


@pytest.mark.parametrize(
    "headers",
    [[(b"transfer-encoding", b"chunked")], [(b"transfer-encoding", b"chunked"), (b"content-length", b"5")]],
)
def test_http10_with_transfer_encoding_is_400(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(RequestRejected) as info:
        inspect_head([(b"connection", b"keep-alive"), *headers], False)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("target", "origin", "host"),
    [
        (b"http://example.test/items?q=1", b"/items?q=1", b"example.test"),
        (b"https://example.test:8443/a/b", b"/a/b", b"example.test:8443"),
        (b"HTTP://Example.Test", b"/", b"Example.Test"),
        (b"http://example.test?q=/x", b"/?q=/x", b"example.test"),
        (b"http://[::1]:8080/", b"/", b"[::1]:8080"),
        (b"http://example.test/p?u=http://other.test/", b"/p?u=http://other.test/", b"example.test"),
    ],
)
def test_absolute_target_splits_origin_and_authority(target: bytes, origin: bytes, host: bytes) -> None:
    headers = [(b"x-a", b"1"), HOST, (b"x-b", b"2")]
    assert absolute_target(target, headers) == (origin, [(b"x-a", b"1"), (b"host", host), (b"x-b", b"2")])
    assert headers[1] == HOST  # the parser's list is not changed in place


def test_absolute_target_adds_host_when_http10_sent_none() -> None:
    assert absolute_target(b"http://example.test/", []) == (b"/", [(b"host", b"example.test")])


@pytest.mark.parametrize(
    "target", [b"ftp://example.test/", b"ws://example.test/", b"http://u:p@example.test/", b"http:///x", b"http://:80/"]
)
def test_absolute_target_without_an_http_origin_is_400(target: bytes) -> None:
    with pytest.raises(RequestRejected) as info:
        absolute_target(target, [HOST])
    assert info.value.status == 400
