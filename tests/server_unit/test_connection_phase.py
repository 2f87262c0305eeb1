"""An HTTP connection's life is one phase (cycle.ConnPhase), and write-side flow control is one
helper (flow.WriteFlow) shared with the WebSocket. Driven through both parsers with a recording
transport: no sockets, so each transition is checked on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from deploykit.server.config import ServerConfig
from deploykit.server.options import validate
from deploykit.server.protocols.connection import HTTPConnection
from deploykit.server.protocols.cycle import ConnPhase
from deploykit.server.protocols.http_h11 import H11Connection
from deploykit.server.protocols.http_httptools import HttpToolsConnection
from deploykit.server.state import ServerState

GET = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def writelines(self, data: Any) -> None:
        self.written.extend(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(params=[HttpToolsConnection, H11Connection], ids=["httptools", "h11"])
def conn(request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop) -> tuple[HTTPConnection, Transport]:
    config = ServerConfig.build(validate({"access_log": False}), hello)
    connection: HTTPConnection = request.param(config, ServerState(config), loop)
    transport = Transport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return connection, transport


def settle(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(asyncio.sleep(0))


def paused_sender(connection: HTTPConnection, loop: asyncio.AbstractEventLoop) -> asyncio.Task[None]:
    """A sender waiting in drain() behind a paused transport."""
    connection.pause_writing()
    waiting = loop.create_task(connection.drain())
    settle(loop)
    assert not waiting.done()
    return waiting


def test_a_connection_goes_active_idle_active_and_the_deadline_follows(
    conn: tuple[HTTPConnection, Transport], loop: asyncio.AbstractEventLoop
) -> None:
    connection, transport = conn
    assert connection.phase is ConnPhase.ACTIVE  # the header-read deadline runs from the connect
    connection.data_received(GET)
    settle(loop)
    assert b"".join(transport.written).endswith(b"\r\n\r\nok")
    assert connection.phase is ConnPhase.IDLE
    idle_deadline = connection.deadline
    assert idle_deadline == pytest.approx(loop.time() + connection.keep_alive_timeout, abs=0.5)
    connection.data_received(b"GET / HT")  # the next head begins: the header-read deadline starts
    assert connection.phase is ConnPhase.ACTIVE
    assert connection.deadline == pytest.approx(loop.time() + connection.header_timeout, abs=0.5)


def test_draining_never_goes_back_and_makes_the_next_response_the_last(
    conn: tuple[HTTPConnection, Transport], loop: asyncio.AbstractEventLoop
) -> None:
    connection, transport = conn
    connection.data_received(GET)
    settle(loop)
    connection.shutdown()
    assert connection.phase is ConnPhase.DRAINING
    grace = connection.deadline
    connection.data_received(GET)  # a request already on its way is answered, with close
    assert connection.phase is ConnPhase.DRAINING and connection.deadline in (grace, 0.0)
    settle(loop)
    last = transport.written[-1]
    assert b"connection: close\r\n" in last and last.endswith(b"ok")
    assert connection.phase is ConnPhase.CLOSED and transport.closed
    connection.shutdown()  # a stop after the close changes nothing
    assert connection.phase is ConnPhase.CLOSED


def test_a_lost_connection_is_closed_and_releases_a_paused_writer(
    conn: tuple[HTTPConnection, Transport], loop: asyncio.AbstractEventLoop
) -> None:
    connection, _ = conn
    waiting = paused_sender(connection, loop)
    connection.connection_lost(None)
    settle(loop)
    assert waiting.done() and connection.phase is ConnPhase.CLOSED
    loop.run_until_complete(asyncio.wait_for(connection.drain(), 1))  # closed: never waits again


def test_resume_writing_releases_the_sender(
    conn: tuple[HTTPConnection, Transport], loop: asyncio.AbstractEventLoop
) -> None:
    connection, _ = conn
    waiting = paused_sender(connection, loop)
    connection.resume_writing()
    settle(loop)
    assert waiting.done() and not connection.write_paused


def test_a_head_arriving_in_the_stop_grace_keeps_the_grace_deadline(
    conn: tuple[HTTPConnection, Transport], loop: asyncio.AbstractEventLoop
) -> None:
    """A stopping server answers a request already on its way, but does not wait a whole
    header-read timeout for a head that trickles in: the grace deadline stays."""
    connection, transport = conn
    connection.data_received(GET)
    settle(loop)
    connection.shutdown()
    grace = connection.deadline
    assert grace < loop.time() + 1 < loop.time() + connection.header_timeout
    connection.data_received(b"GET / HTTP/1.1\r\nhost")
    assert connection.deadline == grace and connection.phase is ConnPhase.DRAINING
    connection.expire()  # the ticker, at the grace deadline
    assert transport.closed and connection.phase is ConnPhase.CLOSED
