"""Request-side strictness: Host rules, framing ambiguities (smuggling), malformed syntax, size limits.

Every rejection must be a 400/414/431 followed by the server closing the connection,
so nothing after the bad bytes can be read as a request.
"""

from __future__ import annotations

import uuid

import pytest

from tests.server.harness import Pool, Serve, Server, Spec, request, status_lines

LIMITS = ("--max-header-size", "1024", "--max-request-line", "100")


@pytest.fixture(scope="module", autouse=True)
def _warm(pool: Pool) -> None:
    pool.warm([Spec(), Spec(LIMITS)])


def assert_rejected(server: Server, data: bytes, status: int = 400) -> None:
    """Exactly one response with `status`, then the connection is closed."""
    with server.connect() as conn:
        conn.send(data)
        response = conn.read_response()
        assert response.status == status, f"expected {status}, got {response.status}: {response.head!r}"
        trailing = conn.read_until_closed(timeout=2.0)
        assert status_lines(trailing) == [], f"a second response followed the {status}: {trailing!r}"


def hits(server: Server, path: str) -> int:
    response = server.exchange(request(f"/hits?p={path}"))
    assert response.status == 200
    return int(response.body)


# --------------------------------------------------------------------------- 1. Host


def test_http11_request_without_host_is_400_and_closed(server: Server) -> None:
    assert_rejected(server, b"GET /hello HTTP/1.1\r\n\r\n")


def test_http11_request_with_two_host_headers_is_400_and_closed(server: Server) -> None:
    assert_rejected(server, b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")


def test_http10_request_without_host_is_allowed(server: Server) -> None:
    response = server.exchange(b"GET /hello HTTP/1.0\r\n\r\n")
    assert response.status == 200
    assert response.body == b"Hello, world!"


# --------------------------------------------------------------------------- 2. CL + TE


def test_content_length_with_transfer_encoding_is_400_and_pipelined_request_never_dispatched(server: Server) -> None:
    smuggled = f"/smuggled-{uuid.uuid4().hex}"
    data = (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + f"GET {smuggled} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    )
    with server.connect() as conn:
        conn.send(data)
        everything = conn.read_until_closed(timeout=2.0)
    assert len(status_lines(everything)) == 1, f"expected exactly one response: {everything!r}"
    assert everything.startswith(b"HTTP/1.1 400 "), everything
    assert hits(server, smuggled) == 0, "the request pipelined after the ambiguous one reached the app"


# --------------------------------------------------------------------------- 3. malformed framing and syntax

CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"

MALFORMED = {
    "differing_duplicate_content_length": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    ),
    "content_length_with_plus_sign": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +10\r\n\r\n0123456789",
    "content_length_list_form": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    "transfer_encoding_gzip_chunked": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + CHUNKED_HELLO
    ),
    "transfer_encoding_chunked_chunked": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n" + CHUNKED_HELLO
    ),
    "transfer_encoding_identity": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
    "chunk_size_overflow": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk_data_not_followed_by_crlf": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"
    ),
    "bare_lf_in_chunk_extension": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=a\nb\r\nhello\r\n0\r\n\r\n"
    ),
    "bare_cr_in_header_line": b"GET /hello HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
    "whitespace_before_colon_in_host": b"GET /hello HTTP/1.1\r\nHost : a\r\n\r\n",
    "whitespace_before_colon_in_other_header": b"GET /hello HTTP/1.1\r\nHost: a\r\nX-Foo : b\r\n\r\n",
}


@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_request_is_400_and_closed(server: Server, data: bytes) -> None:
    assert_rejected(server, data)


# --------------------------------------------------------------------------- 4. size limits


def test_header_section_over_default_16k_is_431_and_closed(server: Server) -> None:
    assert_rejected(server, request("/hello", headers=("Host: a", "X-Big: " + "a" * 17_000)), 431)


def test_header_section_under_default_16k_is_accepted(server: Server) -> None:
    assert server.exchange(request("/hello", headers=("Host: a", "X-Big: " + "a" * 12_000))).status == 200


def test_request_target_over_default_8190_is_414_and_closed(server: Server) -> None:
    assert_rejected(server, request("/hello?" + "a" * 9_000), 414)


def test_request_target_under_default_limit_is_accepted(server: Server) -> None:
    assert server.exchange(request("/hello?" + "a" * 6_000)).status == 200


def test_max_header_size_flag_sets_the_431_limit(serve: Serve) -> None:
    server = serve(*LIMITS)
    assert server.exchange(request("/hello", headers=("Host: a", "X-Big: " + "a" * 300))).status == 200
    assert_rejected(server, request("/hello", headers=("Host: a", "X-Big: " + "a" * 2_000)), 431)


def test_max_request_line_flag_sets_the_414_limit(serve: Serve) -> None:
    server = serve(*LIMITS)
    assert server.exchange(request("/hello?" + "a" * 40)).status == 200
    assert_rejected(server, request("/hello?" + "a" * 300), 414)
