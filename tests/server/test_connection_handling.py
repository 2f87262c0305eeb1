"""Connection reuse and response framing: pipelining, Connection: close, HEAD, 100-continue,
HTTP/1.0 streaming, apps that get Content-Length wrong, and apps that raise or send bad headers."""

from __future__ import annotations

import uuid

from tests.server.harness import Server, request, status_lines

# --------------------------------------------------------------------------- 6. pipelining, close, HEAD


def test_three_pipelined_requests_get_three_responses_in_order(server: Server) -> None:
    data = (
        request("/echo", "POST", body=b"one")
        + request("/echo", "POST", body=b"two")
        + request("/echo", "POST", body=b"three")
    )
    with server.connect() as conn:
        conn.send(data)
        bodies = [conn.read_response().body for _ in range(3)]
        assert bodies == [b"one", b"two", b"three"]
        # Still usable afterwards: keep-alive is the HTTP/1.1 default.
        conn.send(request("/hello"))
        assert conn.read_response().body == b"Hello, world!"


def test_connection_close_request_gets_response_then_close(server: Server) -> None:
    with server.connect() as conn:
        conn.send(request("/hello", headers=("Host: a", "Connection: close")))
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b"Hello, world!"
        conn.wait_closed(timeout=2.0)
        assert conn.buf == b"", f"bytes after the response: {bytes(conn.buf)!r}"


def test_head_keeps_content_length_and_sends_no_body(server: Server) -> None:
    with server.connect() as conn:
        conn.send(request("/hello", "HEAD") + request("/hello", headers=("Host: a", "Connection: close")))
        responses = conn.read_responses_until_closed(head_requests=[True])
    assert len(responses) == 2, responses
    head, get = responses
    assert head.status == 200
    assert head.header("content-length") == "13"
    assert head.body == b""
    # Had HEAD sent body bytes, they would sit where the second status line must start.
    assert get.status == 200
    assert get.body == b"Hello, world!"


def test_expect_100_continue_is_sent_only_when_the_app_reads_the_body(server: Server) -> None:
    with server.connect() as conn:
        conn.send(request("/expect-read", "POST", headers=("Host: a", "Expect: 100-continue", "Content-Length: 5")))
        interim = conn.read_response(timeout=2.0)
        assert interim.status == 100, f"expected 100 Continue first, got {interim.head!r}"
        assert interim.head.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.head
        conn.send(b"hello")
        final = conn.read_response()
        assert final.status == 200
        assert final.body == b"read:hello"


def test_expect_100_continue_is_not_sent_when_the_app_ignores_the_body(server: Server) -> None:
    smuggled = f"/expect-smuggled-{uuid.uuid4().hex}"
    body = f"GET {smuggled} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    head = request(
        "/expect-ignore", "POST", headers=("Host: a", "Expect: 100-continue", f"Content-Length: {len(body)}")
    )
    with server.connect() as conn:
        conn.send(head)
        response = conn.read_response(timeout=2.0)
        assert response.status == 200, f"expected the app's 200 with no 100 Continue before it: {response.head!r}"
        assert response.body == b"ignored"
        # The client now sends the body it had announced; it must be discarded or the connection closed,
        # never parsed as a request.
        conn.try_send(body)
        after = conn.read_quiet(1.0)
        assert status_lines(after) == [], f"the unread body was answered as a request: {after!r}"
    hits = server.exchange(request(f"/hits?p={smuggled}"))
    assert hits.body == b"0", "the body of the ignored request was dispatched as a request"


# --------------------------------------------------------------------------- 7. HTTP/1.0 streaming


def test_http10_streaming_response_is_close_delimited_never_chunked(server: Server) -> None:
    with server.connect() as conn:
        conn.send(b"GET /streaming HTTP/1.0\r\n\r\n")
        responses = conn.read_responses_until_closed()
    assert len(responses) == 1
    response = responses[0]
    assert response.status == 200
    assert response.header("transfer-encoding") is None, response.head
    assert response.body == b"chunk1-chunk2"


def test_http11_streaming_response_is_chunked_and_keeps_the_connection(server: Server) -> None:
    with server.connect() as conn:
        conn.send(request("/streaming"))
        response = conn.read_response()
        assert response.header("transfer-encoding") == "chunked", response.head
        assert response.header("content-length") is None
        assert response.body == b"chunk1-chunk2"
        conn.send(request("/hello"))
        assert conn.read_response().body == b"Hello, world!"


# --------------------------------------------------------------------------- 8. wrong Content-Length from the app


def _one_response_then_close(server: Server, target: str) -> tuple[bytes, bytes]:
    """Request `target` with a second request pipelined behind it; returns (head, body bytes on the wire)."""
    with server.connect() as conn:
        conn.send(request(target) + request("/hello"))
        data = conn.read_until_closed(timeout=3.0)
    assert len(status_lines(data)) == 1, f"connection reused after a mis-framed response: {data!r}"
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete header section: {data!r}"
    return head, body


def test_short_body_sends_declared_prefix_and_closes(server: Server) -> None:
    head, body = _one_response_then_close(server, "/short")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert len(body) <= 10
    assert b"Hello" not in body


def test_long_body_never_sends_more_than_declared_and_closes(server: Server) -> None:
    head, body = _one_response_then_close(server, "/long")
    assert len(body) <= 5, f"more than the declared 5 bytes went out: {body!r}"
    assert b"56789" not in body


# --------------------------------------------------------------------------- 9. app errors and bad headers


def test_exception_before_response_start_is_500_with_server_and_date(server: Server) -> None:
    response = server.exchange(request("/raise-before"))
    assert response.status == 500
    assert len(response.values("server")) == 1, response.head
    assert len(response.values("date")) == 1, response.head


def test_exception_after_response_start_drops_the_connection(server: Server) -> None:
    with server.connect() as conn:
        conn.send(request("/raise-after") + request("/hello"))
        data = conn.read_until_closed(timeout=3.0)
    assert len(status_lines(data)) == 1, f"expected only the started 200, no second status line: {data!r}"
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert len(data.partition(b"\r\n\r\n")[2]) < 20, "the response must stay visibly incomplete"


def test_header_name_with_crlf_never_reaches_the_wire(server: Server) -> None:
    with server.connect() as conn:
        conn.send(request("/bad-header-name"))
        response = conn.read_response()
        rest = conn.read_quiet(0.3)
    assert response.status == 500, response.head
    assert response.values("set-cookie") == []
    assert b"evil" not in response.head + response.body + rest


def test_header_value_with_crlf_never_reaches_the_wire(server: Server) -> None:
    with server.connect() as conn:
        conn.send(request("/bad-header-value"))
        response = conn.read_response()
        rest = conn.read_quiet(0.3)
    assert response.status == 500, response.head
    assert response.values("set-cookie") == []
    assert b"evil" not in response.head + response.body + rest
