"""Binding, serving and stopping one server process.

Stopping (SIGTERM/SIGINT): the listening sockets close at once (new
connections are refused), idle keep-alive connections close at once, busy
ones close after their current response, open WebSockets get a close frame
(1012 on SIGTERM, 1001 on SIGINT), and whatever is still running when
``--timeout-graceful-shutdown`` expires is cancelled — so the process always
exits in bounded time. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import os
import signal
import socket
import stat
from collections.abc import Callable
from typing import Any

from deploykit.errors import DeployKitError
from deploykit.server.config import ServerConfig
from deploykit.server.fdlimit import raise_nofile_limit
from deploykit.server.options import ServerOptions
from deploykit.server.protocols.connection import HTTPConnection
from deploykit.server.protocols.lifespan import Lifespan
from deploykit.server.state import GOING_AWAY, ServerState

logger = logging.getLogger("deploykit.error")
EXIT_STARTUP_FAILED = 3
SD_LISTEN_FDS_START = 3

# Parsers by --http name, imported only when chosen (h11 costs start-up time).
PROTOCOLS = {
    "httptools": ("deploykit.server.protocols.http_httptools", "HttpToolsConnection"),
    "h11": ("deploykit.server.protocols.http_h11", "H11Connection"),
}


def protocol_class(name: str) -> type[HTTPConnection]:
    """`auto` is httptools when it is installed, else h11."""
    if name == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:
            name = "h11"
        else:
            name = "httptools"
    module, attr = PROTOCOLS[name]
    cls: type[HTTPConnection] = getattr(importlib.import_module(module), attr)
    return cls


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError as exc:
            if name == "uvloop":
                raise DeployKitError("--loop uvloop: uvloop is not installed") from exc
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def bind(settings: ServerOptions) -> socket.socket:
    """The listening socket: an inherited fd, a unix socket path, or host:port."""
    try:
        if settings.fd is not None:
            sock = socket.socket(fileno=settings.fd)
        elif settings.uds is not None:
            sock = _bind_unix(settings.uds)
        else:
            family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((settings.host, settings.port))
        sock.listen(settings.backlog)
    except OSError as exc:
        where = f"fd {settings.fd}" if settings.fd is not None else settings.uds or f"{settings.host}:{settings.port}"
        raise DeployKitError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def _bind_unix(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from an earlier run
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o666)
    return sock


def systemd_socket() -> int | None:
    """The first socket systemd passed (socket activation), if it was meant for us."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or not os.environ.get("LISTEN_FDS", "").isdigit():
        return None
    count = int(os.environ.pop("LISTEN_FDS"))
    os.environ.pop("LISTEN_PID", None)
    os.environ.pop("LISTEN_FDNAMES", None)
    return SD_LISTEN_FDS_START if count >= 1 else None


def describe(sock: socket.socket, tls: bool) -> str:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
    return f"{'https' if tls else 'http'}://{host}:{name[1]}"


class Server:
    def __init__(self, config: ServerConfig, heartbeat: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.heartbeat = heartbeat
        self.state = ServerState(config)
        self.stop = asyncio.Event()
        self.force = asyncio.Event()

    def run(self, sock: socket.socket | None = None) -> int:
        """Serve on SOCK (shared with other workers), or on a socket bound from the options."""
        return self.run_sockets([sock] if sock is not None else [])

    def run_sockets(self, socks: list[socket.socket]) -> int:
        with asyncio.Runner(loop_factory=loop_factory(self.config.settings.loop)) as runner:
            return runner.run(self.serve(socks))

    def request_stop(self, force: bool = False) -> None:
        self.state.should_exit = True
        if self.stop.is_set() or force:
            self.force.set()
        self.stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        if sig == signal.SIGINT and not self.stop.is_set():
            self.state.ws_close_code = GOING_AWAY  # Ctrl-C: going away, not restarting
        self.request_stop()

    async def serve(self, socks: list[socket.socket]) -> int:
        loop = asyncio.get_running_loop()
        limit = raise_nofile_limit()
        self.stop, self.force = asyncio.Event(), asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        lifespan = Lifespan(self.config, self.state.lifespan_state)
        if not await lifespan.startup():
            logger.error("Application startup failed: %s", lifespan.failed)
            return EXIT_STARTUP_FAILED
        servers = [await self._listen(loop, s) for s in socks or [bind(self.config.settings)]]
        self.state.guard_fds(limit)
        loop.set_exception_handler(self._loop_error)
        if self.heartbeat is not None:
            self.heartbeat(0)  # accepting: ready
        ticker = loop.create_task(self.state.tick_forever(self.heartbeat))
        max_requests = self.config.settings.limit_max_requests
        if max_requests is not None:
            self.state.on_request_limit(max_requests, self.request_stop)
        try:
            await self.stop.wait()
            for server in servers:
                server.close()
            await self._drain(loop)
            if not self.force.is_set():
                await lifespan.shutdown(self.config.settings.timeout_graceful_shutdown)
        finally:
            ticker.cancel()
            if not socks and self.config.settings.uds is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.config.settings.uds)
        return 0

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's accept() ran out of descriptors (it retries in a second): free some now."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            self.state.shed(exhausted=True)
            return
        loop.default_exception_handler(context)

    async def _listen(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> asyncio.AbstractServer:
        cls = protocol_class(self.config.settings.http)
        config, state = self.config, self.state
        ssl = config.ssl_context()

        def factory() -> HTTPConnection:
            return cls(config, state, loop)

        backlog = config.settings.backlog
        if sock.family == socket.AF_UNIX:
            server = await loop.create_unix_server(factory, sock=sock, ssl=ssl, backlog=backlog)
        else:
            server = await loop.create_server(factory, sock=sock, ssl=ssl, backlog=backlog)
        logger.info("deploykit serve: listening on %s (%s parser)", describe(sock, ssl is not None), cls.__name__)
        return server

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close idle connections now; give busy ones the graceful timeout."""
        state = self.state
        for conn in list(state.connections):
            conn.shutdown()
        deadline = loop.time() + self.config.settings.timeout_graceful_shutdown
        while state.connections and not self.force.is_set() and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.force.wait(), min(0.05, max(0.0, deadline - loop.time())))
        for conn in list(state.connections):
            if conn.task is not None:
                conn.task.cancel()
            conn.transport.abort()
        if state.connections:
            await asyncio.sleep(0)
