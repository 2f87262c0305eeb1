"""Three RFC 9110/9112 message rules, from outside, with both parsers:

1. an HTTP/1.0 request with Transfer-Encoding has faulty framing (RFC 9112 §6.1): 400, then close, and
   nothing after it on the connection is read as a request; a transfer coding other than one final
   ``chunked`` is refused too (§6.3), so the app never gets undecoded bytes;
2. an absolute-form request-target (RFC 9112 §3.2.2) gives the app the path and query of the target, and
   the target's authority replaces Host (§3.3);
3. a field value reaches the app without the whitespace around it (RFC 9110 §5.5).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.server.harness import Pool, Server, Spec, request, status_lines

CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"


@pytest.fixture(scope="module", autouse=True)
def _warm(pool: Pool) -> None:
    pool.warm([Spec()])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def hits(server: Server, path: str) -> int:
    """How many requests for raw path PATH the app was handed."""
    response = server.exchange(request(f"/hits?p={path}"))
    assert response.status == 200
    return int(response.body)


def refused_alone(server: Server, data: bytes) -> bytes:
    """Send DATA on one connection; exactly one response, a 400 (or 501), then the server closes."""
    with server.connect() as conn:
        conn.send(data)
        everything = conn.read_until_closed(timeout=3.0)
    assert len(status_lines(everything)) == 1, f"expected exactly one response, then a close: {everything!r}"
    assert everything.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 501 ")), everything
    return everything


def scope_of(server: Server, data: bytes) -> dict[str, Any]:
    response = server.exchange(data)
    assert response.status == 200, response.head + response.body
    scope: dict[str, Any] = json.loads(response.body)
    return scope


# --------------------------------------------------------------------------- 1. HTTP/1.0 + Transfer-Encoding


@pytest.mark.parametrize("connection", ["Connection: keep-alive", ""], ids=["keep-alive", "no-connection-header"])
def test_http10_chunked_request_is_400_and_closed_and_nothing_after_it_is_served(
    server: Server, connection: str
) -> None:
    framed, smuggled = f"/echo/{unique('te10')}", f"/hello/{unique('smuggled')}"
    headers = [h for h in (connection, "Transfer-Encoding: chunked") if h]
    following = request(smuggled, headers=("Connection: keep-alive",), version="HTTP/1.0")
    refused_alone(server, request(framed, "POST", headers, version="HTTP/1.0") + CHUNKED_HELLO + following)
    assert hits(server, framed) == 0, "the app was handed a request whose framing is faulty"
    assert hits(server, smuggled) == 0, "bytes after an HTTP/1.0 chunked request were served as a request"


def test_http10_chunked_request_with_content_length_is_still_400_and_closed(server: Server) -> None:
    framed, smuggled = f"/echo/{unique('te10cl')}", f"/hello/{unique('smuggled')}"
    headers = ("Connection: keep-alive", "Content-Length: 15", "Transfer-Encoding: chunked")
    following = request(smuggled, headers=("Connection: keep-alive",), version="HTTP/1.0")
    refused_alone(server, request(framed, "POST", headers, version="HTTP/1.0") + CHUNKED_HELLO + following)
    assert hits(server, framed) == 0
    assert hits(server, smuggled) == 0


def test_http10_request_answered_before_a_chunked_one_is_kept_and_then_the_connection_closes(
    server: Server,
) -> None:
    """Pipelined: the good HTTP/1.0 keep-alive request is answered, the faulty one gets the 400, then close."""
    good, framed = f"/hello/{unique('good')}", f"/echo/{unique('te10')}"
    data = request(good, headers=("Connection: keep-alive",), version="HTTP/1.0") + request(
        framed, "POST", ("Connection: keep-alive", "Transfer-Encoding: chunked"), version="HTTP/1.0"
    )
    with server.connect() as conn:
        conn.send(data + CHUNKED_HELLO)
        responses = conn.read_responses_until_closed(timeout=3.0)
    assert [r.status for r in responses] == [200, 400]
    assert responses[0].body == b"Hello, world!"
    assert hits(server, framed) == 0


CODINGS = {
    "chunked_then_gzip_one_line": ("Transfer-Encoding: chunked, gzip",),
    "chunked_then_gzip_two_lines": ("Transfer-Encoding: chunked", "Transfer-Encoding: gzip"),
    "gzip_then_chunked_two_lines": ("Transfer-Encoding: gzip", "Transfer-Encoding: chunked"),
    "gzip_then_chunked_one_line": ("Transfer-Encoding: gzip, chunked",),
    "gzip_alone": ("Transfer-Encoding: gzip",),
}


@pytest.mark.parametrize("codings", list(CODINGS.values()), ids=list(CODINGS))
def test_transfer_coding_other_than_one_final_chunked_is_refused_and_closed(
    server: Server, codings: tuple[str, ...]
) -> None:
    framed, smuggled = f"/echo/{unique('coding')}", f"/hello/{unique('smuggled')}"
    data = request(framed, "POST", ("Host: a", *codings)) + CHUNKED_HELLO + request(smuggled)
    refused_alone(server, data)
    assert hits(server, framed) == 0, "the app was handed a body it cannot decode"
    assert hits(server, smuggled) == 0


# --------------------------------------------------------------------------- 2. absolute-form targets


def test_absolute_form_target_gives_the_app_its_path_and_query(server: Server) -> None:
    scope = scope_of(server, request("http://example.test/scope/items?q=1", headers=("Host: example.test",)))
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope/items", "/scope/items", "q=1")
    assert [value for name, value in scope["headers"] if name == "host"] == ["example.test"]


def test_absolute_form_authority_replaces_a_disagreeing_host(server: Server) -> None:
    """RFC 9112 §3.2.2/§3.3: the target's authority wins; the app sees one host header, holding it."""
    data = request("http://example.test:8443/scope?x=2", headers=("X-Before: 1", "Host: attacker.test", "X-After: 2"))
    scope = scope_of(server, data)
    assert scope["path"] == "/scope" and scope["query_string"] == "x=2"
    assert scope["headers"] == [["x-before", "1"], ["host", "example.test:8443"], ["x-after", "2"]]


def test_absolute_form_percent_encoding_scheme_case_and_http10_without_host(server: Server) -> None:
    scope = scope_of(server, request("HTTP://Example.Test/scope/a%20b%2Fc", headers=("Host: x",)))
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope/a b/c", "/scope/a%20b%2Fc", "")
    assert scope["scheme"] == "http"
    scope = scope_of(server, request("https://example.test/scope", headers=(), version="HTTP/1.0"))
    assert scope["path"] == "/scope"
    assert scope["scheme"] == "http", "a target's https:// must not make a plain connection look secure"
    assert [value for name, value in scope["headers"] if name == "host"] == ["example.test"]


def test_absolute_form_with_empty_path_is_the_root(server: Server) -> None:
    mark = unique("q")
    response = server.exchange(request(f"http://example.test?{mark}=1", headers=("Host: example.test",)))
    assert response.status == 404 and response.body == b"no route"  # the router has no "/"
    lines = [line for line in server.wait_for_stderr(mark).splitlines() if mark in line]
    assert len(lines) == 1 and f"GET /?{mark}=1 HTTP/1.1" in lines[0], lines


@pytest.mark.parametrize(
    "target",
    ["ftp://example.test/scope", "http://user@example.test/scope", "http:///scope", "http://:80/scope"],
    ids=["other-scheme", "userinfo", "empty-authority", "empty-host"],
)
def test_absolute_form_that_names_no_http_origin_is_400_and_closed(server: Server, target: str) -> None:
    refused_alone(server, request(target) + request("/hello"))


def test_absolute_form_http11_without_host_is_still_400(server: Server) -> None:
    """RFC 9112 §3.2: an HTTP/1.1 request needs its Host field even with an absolute-form target."""
    refused_alone(server, request("http://example.test/hello", headers=()))


@pytest.mark.parametrize("line", [b"GET  HTTP/1.1", b"GET HTTP/1.1", b"GET "], ids=["two-spaces", "no-target", "bare"])
def test_empty_request_target_is_400_and_closed(server: Server, line: bytes) -> None:
    """The target check reads target[0]: both parsers must refuse an empty target first."""
    refused_alone(server, line + b"\r\nHost: a\r\n\r\n" + request("/hello"))


def test_access_log_shows_the_path_of_an_absolute_form_target(server: Server) -> None:
    mark = unique("logged")
    response = server.exchange(request(f"http://example.test/hello/{mark}?q=1"))
    assert response.status == 200
    text = server.wait_for_stderr(mark)
    lines = [line for line in text.splitlines() if mark in line]
    assert len(lines) == 1 and f"GET /hello/{mark}?q=1 HTTP/1.1" in lines[0], lines


# --------------------------------------------------------------------------- 3. whitespace around field values


def test_whitespace_around_field_values_is_stripped(server: Server) -> None:
    sent = ("Host: a", "X-Spaced:   spaced value \t ", "X-Tabs:\t\tinner  \t  kept\t", "X-Blank: \t ", "X-Plain: v")
    data = request("/scope", headers=sent)
    headers = scope_of(server, data)["headers"]
    assert headers == [
        ["host", "a"],
        ["x-spaced", "spaced value"],
        ["x-tabs", "inner  \t  kept"],
        ["x-blank", ""],
        ["x-plain", "v"],
    ]
