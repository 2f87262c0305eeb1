"""RFC 9110/9112 rules for a request head, shared by both parsers (sans-IO).

The parsers already reject malformed syntax; this adds what they let through
or disagree on: exactly one Host (HTTP/1.1), Content-Length xor
Transfer-Encoding, Transfer-Encoding exactly ``chunked`` and only in HTTP/1.1,
and a plain-digits Content-Length. It also reads the connection-management
headers (and whether this is a WebSocket upgrade) in the same single pass,
because this runs for every request. ``absolute_target`` splits an
absolute-form request-target (RFC 9112 §3.2.2) into what ASGI needs.
"""

from __future__ import annotations

from typing import NamedTuple

BAD_REQUEST = 400
_PROXY_HEADERS = frozenset((b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"))  # proxy.resolve_trusted's


class Head(NamedTuple):
    keep_alive: bool
    expect_continue: bool
    has_body: bool
    websocket: bool = False  # `Upgrade: websocket` with `Connection: upgrade`
    proxied: bool = False  # Forwarded, X-Forwarded-For or X-Forwarded-Proto is present


class RequestRejected(Exception):
    """A request the server answers itself (400, 414, 426, 431, …) and then closes.
    HEADERS are extra header lines (``name: value\r\n`` each) for the answer."""

    def __init__(self, status: int, reason: str, headers: bytes = b"") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


def inspect_head(headers: list[tuple[bytes, bytes]], http_11: bool) -> Head:
    """Validate the head; raise RequestRejected, or say how to handle the connection."""
    hosts = 0
    lengths: list[bytes] = []
    encodings: list[bytes] = []
    connection = b""
    expect = False
    upgrade = b""
    proxied = False
    for name, value in headers:
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            encodings.append(value)
        elif name == b"connection":
            connection = connection + b"," + value.lower() if connection else value.lower()
        elif name == b"expect":
            expect = value.lower() == b"100-continue"
        elif name == b"upgrade":
            upgrade = value
        elif name in _PROXY_HEADERS:
            proxied = True
    if hosts > 1 or (hosts == 0 and http_11):
        raise RequestRejected(BAD_REQUEST, "exactly one Host header is required" if hosts else "missing Host header")
    if encodings:
        if not http_11:
            # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means its framing is faulty (an
            # HTTP/1.0 hop in between does not know chunked, so it may have framed the body otherwise and
            # will send the rest as "the next request"). The RFC asks for a close after processing; a
            # message whose framing is faulty cannot be processed safely, so it is refused before any of
            # its body is read: 400, then close (nginx does the same). With a Content-Length too, the
            # answer is the same 400.
            raise RequestRejected(BAD_REQUEST, "Transfer-Encoding in an HTTP/1.0 request")
        if lengths:
            raise RequestRejected(BAD_REQUEST, "Content-Length together with Transfer-Encoding")
        if len(encodings) != 1 or encodings[0].strip().lower() != b"chunked":
            raise RequestRejected(BAD_REQUEST, "Transfer-Encoding other than chunked")
    has_body = bool(encodings)
    if lengths:
        if any(v != lengths[0] for v in lengths) or not lengths[0].isdigit():
            raise RequestRejected(BAD_REQUEST, "invalid Content-Length")
        has_body = lengths[0].lstrip(b"0") != b""
    websocket = False
    if connection:
        tokens = {t.strip() for t in connection.split(b",")}
        keep_alive = b"close" not in tokens and (http_11 or b"keep-alive" in tokens)
        if upgrade and b"upgrade" in tokens:
            websocket = b"websocket" in {t.strip() for t in upgrade.lower().split(b",")}
    else:
        keep_alive = http_11
    return Head(keep_alive, expect and http_11 and has_body, has_body, websocket, proxied)


def absolute_target(target: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """TARGET in absolute-form (``http://host/path?query``, RFC 9112 §3.2.2), as its origin-form
    part (path, ``/`` when empty, plus query) and HEADERS with Host set to the target's authority.

    RFC 9112 §3.2.2 and §3.3: the target URI is then the request-target itself, and a server ignores
    the Host field (which HTTP/1.1 still requires, so ``inspect_head`` has checked there is one) in
    favour of the target's authority. The app sees exactly one ``host`` header, holding that authority,
    so an app that builds URLs from Host agrees with the URI the client asked for. The scheme in the
    target is not believed: ``scope["scheme"]`` says what the connection is (or what a trusted proxy
    said), so writing ``https://`` in a request line cannot make a plain connection look secure.
    Only ``http`` and ``https`` are accepted; an empty host or userinfo (RFC 9110 §4.2.1, §4.2.4) is 400.
    """
    scheme, _, rest = target.partition(b"://")
    if scheme.lower() not in (b"http", b"https"):
        raise RequestRejected(BAD_REQUEST, "request target: only http and https absolute URIs are served")
    cut = len(rest)
    for mark in (b"/", b"?"):
        found = rest.find(mark)
        if 0 <= found < cut:
            cut = found
    authority, origin = rest[:cut], rest[cut:]
    if not authority or authority.startswith(b":") or b"@" in authority:
        raise RequestRejected(BAD_REQUEST, "request target: invalid authority")
    if not origin.startswith(b"/"):
        origin = b"/" + origin
    replaced: list[tuple[bytes, bytes]] = []
    has_host = False
    for name, value in headers:
        if name == b"host":  # at most one (inspect_head); it keeps its place in the list
            has_host = True
            value = authority
        replaced.append((name, value))
    if not has_host:  # HTTP/1.0 may omit Host
        replaced.append((b"host", authority))
    return origin, replaced
