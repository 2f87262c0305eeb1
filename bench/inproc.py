"""Per-request Python cost of the HTTP path, without sockets: `python -m bench.inproc [hello|echo] [httptools|h11]`.

A fake transport takes the writes; each request is fed with ``data_received`` and the loop is turned once
(``await asyncio.sleep(0)``), so what is measured is the parser callbacks, the scope, the cycle and the
response framing: the part of a request that is deploykit's own code. Add ``--profile`` for a cProfile
summary (tottime) instead of the timing. It guides optimisation on a shared machine, where wrk numbers are
noise; `make bench` remains the measure.
"""

import asyncio
import cProfile
import io
import pstats
import sys
import time
from typing import Any

from bench import apps
from deploykit.server.config import ServerConfig
from deploykit.server.options import validate
from deploykit.server.protocols.http_h11 import H11Connection
from deploykit.server.protocols.http_httptools import HttpToolsConnection
from deploykit.server.state import ServerState

HELLO = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
ECHO = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: 65536\r\n\r\n" + b"x" * 65536
)


class FakeTransport:
    """Takes writes and counts them; never pauses."""

    def __init__(self) -> None:
        self.writes = 0
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes += 1

    def writelines(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def drive(kind: str, parser: str, n: int) -> float:
    loop = asyncio.get_running_loop()
    app = apps.hello if kind == "hello" else apps.echo
    config = ServerConfig.build(validate({"access_log": False}), app)
    state = ServerState(config)
    cls = HttpToolsConnection if parser == "httptools" else H11Connection
    conn = cls(config, state, loop)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    request = HELLO if kind == "hello" else ECHO
    feed = conn.data_received
    start = time.perf_counter()
    for _ in range(n):
        feed(request)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    if transport.writes != n or transport.closed:
        raise SystemExit(f"expected {n} responses on an open connection, got {transport.writes}")
    return elapsed / n * 1e6


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    kind = args[0] if args else "hello"
    parser = args[1] if len(args) > 1 else "httptools"
    import uvloop

    n = 20_000 if kind == "hello" else 5_000
    for arg in sys.argv[1:]:
        if arg.startswith("--n="):
            n = int(arg[4:])
    if "--profile" in sys.argv:
        profiler = cProfile.Profile()
        profiler.enable()
        uvloop.run(drive(kind, parser, n))
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
        return
    best = min(uvloop.run(drive(kind, parser, n)) for _ in range(1 if "--once" in sys.argv else 5))
    print(f"{kind}/{parser}: {best:.2f} us per request (best of 5 x {n})")


if __name__ == "__main__":
    main()
