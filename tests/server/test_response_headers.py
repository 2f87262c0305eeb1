"""Server-added response headers (server, date, --header) and the scope the app receives (--root-path)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.server.harness import Pool, Serve, Server, Spec, assert_one_server_and_date, request

NO_DEFAULTS = ("--no-server-header", "--no-date-header")
EXTRAS = ("--root-path", "/api", "--header", "X-Extra:1")


@pytest.fixture(scope="module", autouse=True)
def _warm(pool: Pool) -> None:
    pool.warm([Spec(), Spec(NO_DEFAULTS), Spec(EXTRAS)])


def scope_of(server: Server, target: str, headers: tuple[str, ...] = ("Host: test",)) -> dict[str, Any]:
    response = server.exchange(request(target, headers=headers))
    assert response.status == 200, response.head
    data: dict[str, Any] = json.loads(response.body)
    return data


# --------------------------------------------------------------------------- 10. server / date


@pytest.mark.parametrize("target", ["/hello", "/streaming", "/no-such-route"])
def test_normal_response_has_exactly_one_server_and_one_date_header(server: Server, target: str) -> None:
    assert_one_server_and_date(server.exchange(request(target)))


def test_app_server_header_replaces_the_default_one(server: Server) -> None:
    response = server.exchange(request("/custom-server"))
    assert response.values("server") == ["my-app/1.0"], response.head
    assert len(response.values("date")) == 1


def test_no_server_header_and_no_date_header_flags_remove_them(serve: Serve) -> None:
    response = serve(*NO_DEFAULTS).exchange(request("/hello"))
    assert response.status == 200
    assert response.values("server") == [], response.head
    assert response.values("date") == [], response.head


SERVER_ERRORS = {
    "400": (b"GET /hello HTTP/1.1\r\n\r\n", 400),
    "431": (request("/hello", headers=("Host: a", "X-Big: " + "a" * 17_000)), 431),
    "414": (request("/hello?" + "a" * 9_000), 414),
    "500": (request("/raise-before"), 500),
}


@pytest.mark.parametrize("case", list(SERVER_ERRORS.values()), ids=list(SERVER_ERRORS))
def test_server_made_error_response_has_exactly_one_server_and_one_date_header(
    server: Server, case: tuple[bytes, int]
) -> None:
    data, status = case
    response = server.exchange(data)
    assert response.status == status, response.head
    assert_one_server_and_date(response)


# --------------------------------------------------------------------------- 18. --root-path, --header


def test_root_path_flag_sets_scope_root_path(serve: Serve) -> None:
    assert scope_of(serve(*EXTRAS), "/scope")["root_path"] == "/api"


def test_header_flag_adds_a_default_response_header(serve: Serve) -> None:
    response = serve(*EXTRAS).exchange(request("/hello"))
    assert response.status == 200
    assert response.values("x-extra") == ["1"], response.head
    assert_one_server_and_date(response)


def test_default_scope_fields(server: Server) -> None:
    scope = scope_of(server, "/scope/a%2Fb?x=1&y=%20", headers=("Host: example.test", "X-Dup: 1", "X-Dup: 2"))
    assert scope["type"] == "http"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["root_path"] == ""
    assert scope["path"] == "/scope/a/b"
    assert scope["raw_path"] == "/scope/a%2Fb"
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["client"][0] == "127.0.0.1"
    assert isinstance(scope["client"][1], int)
    assert ["host", "example.test"] in scope["headers"]
    assert [h for h in scope["headers"] if h[0] == "x-dup"] == [["x-dup", "1"], ["x-dup", "2"]]


def test_http10_request_scope_has_http_version_1_0(server: Server) -> None:
    response = server.exchange(b"GET /scope HTTP/1.0\r\n\r\n")
    assert json.loads(response.body)["http_version"] == "1.0"
