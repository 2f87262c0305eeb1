"""RequestCycle's response head through the CycleOwner seam, with a recording owner (no connection, no
socket): the validated-line cache must never change what reaches the wire, whatever shape the app's
header pairs take."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from deploykit.server.protocols import cycle as cycle_module
from deploykit.server.protocols.cycle import ConnPhase, CycleOwner, RequestCycle
from deploykit.server.protocols.wire import ResponseError


class Lines:
    server_line = b"server: deploykit\r\n"
    date_line = b"date: Mon, 30 Nov 2026 00:00:00 GMT\r\n"


class Recorder:
    """Everything a cycle may touch of its owner, and nothing else."""

    def __init__(self, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.written: list[bytes] = []
        self.transport = self
        self.loop = asyncio.new_event_loop()
        self.state = Lines()
        self.extra_headers = extra
        self.write_paused = False
        self.phase = ConnPhase.ACTIVE
        self.done: list[RequestCycle] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    async def drain(self) -> None:
        raise AssertionError("never paused here")

    def body_consumed(self) -> None:
        pass

    def response_done(self, cycle: RequestCycle) -> None:
        self.done.append(cycle)

    def app_failed(self, cycle: RequestCycle, exc: BaseException | None) -> None:
        raise AssertionError(f"app failed: {exc!r}")


def respond(headers: Any, body: bytes = b"hi", owner: Recorder | None = None) -> bytes:
    owner = owner or Recorder()
    seam: CycleOwner = owner  # type: ignore[assignment]  # Lines stands in for ServerState's two lines
    scope = {"http_version": "1.1", "method": "GET"}
    cycle = RequestCycle(seam, None, scope, True, False, True, False, False)
    try:
        owner.loop.run_until_complete(cycle.send({"type": "http.response.start", "status": 200, "headers": headers}))
        owner.loop.run_until_complete(cycle.send({"type": "http.response.body", "body": body}))
    finally:
        owner.loop.close()
    assert owner.done == [cycle]
    return b"".join(owner.written)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cycle_module._LINES.clear()
    cycle_module._LENGTHS.clear()


def test_the_same_headers_twice_give_the_same_bytes_and_the_second_time_from_the_cache() -> None:
    headers = [(b"Content-Type", b"text/plain"), (b"content-length", b"2"), (b"x-a", b"1")]
    first = respond(headers)
    assert (b"Content-Type", b"text/plain") in cycle_module._LINES
    assert cycle_module._LENGTHS[(b"content-length", b"2")] == 2
    assert respond(headers) == first
    assert first.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nx-a: 1\r\ncontent-length: 2\r\n")
    assert first.endswith(b"\r\n\r\nhi")


def test_list_pairs_are_served_and_not_cached() -> None:
    tuples = respond([(b"x-a", b"1"), (b"content-length", b"2")])
    cycle_module._LINES.clear()
    cycle_module._LENGTHS.clear()
    assert respond([[b"x-a", b"1"], [b"content-length", b"2"]]) == tuples
    assert respond([[b"x-a", b"1"], [b"content-length", b"2"]]) == tuples  # the lookup of a list is no error


def test_a_cached_name_does_not_let_a_bad_value_through() -> None:
    respond([(b"x-a", b"1")])
    with pytest.raises(ResponseError, match="invalid value"):
        respond([(b"x-a", b"1\r\nset-cookie: evil=1")])


def test_framing_headers_are_never_cached_as_lines() -> None:
    headers = [(b"Connection", b"close"), (b"Transfer-Encoding", b"chunked"), (b"Server", b"app"), (b"Date", b"x")]
    for _ in range(2):
        out = respond([*headers, (b"Content-Length", b"2")])
        assert b"Transfer-Encoding" not in out and b"Connection: close" not in out
        assert out.count(b"connection: close\r\n") == 1  # the app asked to close: every time, not only the first
        assert b"Server: app\r\n" in out and b"server: deploykit" not in out
    assert cycle_module._LINES == {}
    assert cycle_module._LENGTHS == {}  # Content-Length spelled in capitals is checked every time


def test_extra_headers_still_yield_to_the_apps_own_once_its_lines_are_cached() -> None:
    respond([(b"x-a", b"1")])  # cached
    out = respond([(b"x-a", b"1")], owner=Recorder(extra=((b"x-a", b"server"), (b"x-b", b"2"))))
    assert b"x-a: 1\r\n" in out and b"x-a: server" not in out and b"x-b: 2\r\n" in out


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cycle_module, "_MAX_LINES", 3)
    for index in range(10):
        respond([(b"x-id", b"%d" % index)])
        assert len(cycle_module._LINES) <= 3
