"""WebSocket benchmarks for `make bench`: deploykit vs uvicorn with the same ws library.

- echo: 64 connections, each sends a 1 KiB text message and waits for its echo, again
  and again, for BENCH_WS_DURATION seconds; messages/s is echoes received per second.
  The client is a raw asyncio/uvloop protocol in its own process, pinned to the other
  CPU: its frame is built (and masked) once and an echo is counted by its byte length,
  so it needs far less CPU per message than either server and the server is what is
  measured. It offers no extensions: the row measures the server, not zlib.
- idle memory: 1,000 WebSocket connections that offer permessage-deflate (as browsers
  and the `websockets` client do) are opened and left idle; the row is the server's RSS
  growth divided by 1,000. Both servers have answered one WebSocket before the baseline
  is read, so imports made on the first upgrade are not counted.

deploykit runs `--ws websockets`; uvicorn `--ws websockets-sansio` (its implementation
on the same sans-IO library) when the installed uvicorn has it, else `--ws websockets`.
Run alone with `python bench/ws.py`, or as part of `make bench`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root is not on sys.path yet
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import rounds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CONNECTIONS = 64
MESSAGE_SIZE = 1024
IDLE_CONNECTIONS = 1000
DURATION = int(os.environ.get("BENCH_WS_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_WS_ROUNDS", "3"))
_MASK = b"\x37\xfa\x21\x3d"
_PAYLOAD = (b"0123456789abcdef" * 64)[:MESSAGE_SIZE]
_ECHO = b"\x81\x7e" + struct.pack("!H", MESSAGE_SIZE) + _PAYLOAD  # what the server sends back


def _masked_frame() -> bytes:
    masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(_PAYLOAD))
    return b"\x81\xfe" + struct.pack("!H", MESSAGE_SIZE) + _MASK + masked


def _handshake(port: int, deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------- the client (own process)


class _Client(asyncio.Protocol):
    def __init__(self, port: int, deflate: bool, echo: bool, stats: list[int], opened: asyncio.Future[None]) -> None:
        self.request = _handshake(port, deflate)
        self.echo = echo
        self.stats = stats
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.pending = 0
        self.frame = _masked_frame()
        self.checked = False

    def itself(self) -> _Client:
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(f"handshake refused: {self.head[:200]!r}"))
                return
            self.opened.set_result(None)
            rest = self.head.partition(b"\r\n\r\n")[2]
            self.head = rest
            if self.echo:
                self.transport.write(self.frame)  # type: ignore[union-attr]
            return
        if not self.checked:  # the first echo is compared byte for byte
            self.head += data
            if len(self.head) < len(_ECHO):
                return
            if self.head[: len(_ECHO)] != _ECHO:
                raise SystemExit(f"wrong echo: {self.head[:64]!r}")
            self.checked = True
            data, self.head = self.head, b""
        self.pending += len(data)
        while self.pending >= len(_ECHO):
            self.pending -= len(_ECHO)
            self.stats[0] += 1
            self.transport.write(self.frame)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))


async def _open(port: int, count: int, deflate: bool, echo: bool, stats: list[int]) -> list[asyncio.Transport]:
    loop = asyncio.get_running_loop()
    transports = []
    for start in range(0, count, 100):  # in batches, so the listen backlog never overflows
        futures = []
        for _ in range(min(100, count - start)):
            opened: asyncio.Future[None] = loop.create_future()
            client = _Client(port, deflate, echo, stats, opened)
            transport, _proto = await loop.create_connection(client.itself, HOST, port)
            transports.append(transport)
            futures.append(opened)
        await asyncio.wait_for(asyncio.gather(*futures), 30)
    return transports


async def _echo_client(port: int, seconds: float) -> None:
    stats = [0]
    await _open(port, CONNECTIONS, False, True, stats)
    await asyncio.sleep(1.0)  # warm-up
    before, started = stats[0], time.perf_counter()
    await asyncio.sleep(seconds)
    print(f"{(stats[0] - before) / (time.perf_counter() - started):.1f}", flush=True)


async def _idle_client(port: int, count: int) -> None:
    transports = await _open(port, count, True, False, [0])
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # hold until told
    for transport in transports:
        transport.abort()


def client_main(argv: list[str]) -> None:
    try:
        import uvloop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    else:
        loop_factory = uvloop.new_event_loop
    mode, port = argv[0], int(argv[1])
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_echo_client(port, float(argv[2])) if mode == "echo" else _idle_client(port, int(argv[2])))


# --------------------------------------------------------------------------- the harness


@dataclass
class Side(rounds.Side):
    argv: list[str] = field(default_factory=list)
    idle_kib_per_conn: float | None = None


def _uvicorn_ws() -> str:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return "websockets"
    return "websockets-sansio"


def _argv(python: str, side: str, port: int) -> list[str]:
    common = ["bench.apps:ws_echo", "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    common += ["--no-access-log", "--log-level", "warning"]
    if side == "deploykit":
        return [python, "-m", "deploykit", "serve", *common, "--ws", "websockets"]
    return [python, "-m", "uvicorn", *common, "--ws", _uvicorn_ws()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _pin(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class _Server:
    def __init__(self, argv: list[str], cpu: int | None) -> None:
        self.port = int(argv[argv.index("--port") + 1])
        self.proc = subprocess.Popen(
            [*_pin(cpu), *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("did not listen within 20 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _client(python: str, cpu: int | None, *args: str) -> subprocess.Popen[str]:
    argv = [*_pin(cpu), python, str(Path(__file__).resolve()), "client", *args]
    return subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _echo_rate(python: str, port: int, cpu: int | None) -> float:
    proc = _client(python, cpu, "echo", str(port), str(DURATION))
    out, _ = proc.communicate(timeout=DURATION + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"echo client failed ({proc.returncode}): {out!r}")
    return float(out.strip().splitlines()[-1])


def _idle_per_connection(python: str, server: _Server, cpu: int | None) -> float:
    warm = _client(python, cpu, "idle", str(server.port), "1")  # one upgrade first: lazy imports
    assert warm.stdout is not None and warm.stdin is not None
    warm.stdout.readline()
    warm.communicate("\n", timeout=30)
    time.sleep(1.0)
    before = _rss_kib(server.proc.pid)
    proc = _client(python, cpu, "idle", str(server.port), str(IDLE_CONNECTIONS))
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "open":
        raise RuntimeError("idle client did not open its connections")
    time.sleep(2.0)
    after = _rss_kib(server.proc.pid)
    proc.communicate("\n", timeout=30)
    return (after - before) / IDLE_CONNECTIONS


def run_all(python: str, server_cpu: int | None, client_cpu: int | None) -> list[Side]:
    sides = [Side(name) for name in ("deploykit", "uvicorn")]
    for index in range(ROUNDS):
        for side in sides if index % 2 == 0 else sides[::-1]:
            if side.failure:
                continue
            side.argv = _argv(python, side.name, _free_port())
            try:
                server = _Server(side.argv, server_cpu)
            except RuntimeError as exc:
                side.failure = f"failed to start: {exc}"
                continue
            try:
                side.rates.append(_echo_rate(python, server.port, client_cpu))
                if side.idle_kib_per_conn is None:
                    side.idle_kib_per_conn = _idle_per_connection(python, server, client_cpu)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                side.failure = f"failed: {exc}"
            finally:
                server.stop()
            print(f"   ws round {index + 1}/{ROUNDS} {side.name:9} {side.rates[-1] if side.rates else 0:>9,.0f} msg/s",
                  file=sys.stderr, flush=True)  # fmt: skip
    return sides


def render(sides: list[Side]) -> str:
    dk, uv = sides
    median = rounds.medians(sides)

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}×" if a and b else "—"

    def cell(side: Side, value: str | None) -> str:
        return side.failure or value or "—"

    dk_rate, uv_rate = median["deploykit"], median["uvicorn"]
    dk_mem, uv_mem = dk.idle_kib_per_conn, uv.idle_kib_per_conn
    lines = [
        f"## WebSockets (deploykit `--ws websockets` vs uvicorn `--ws {_uvicorn_ws()}`, one worker each, uvloop)",
        "",
        f"Echo: {CONNECTIONS} connections, each sending a {MESSAGE_SIZE} B text message and awaiting its echo, "
        f"{DURATION} s per round after a 1 s warm-up, median of {ROUNDS} rounds (rounds alternate which server "
        "goes first); the raw asyncio client (bench/ws.py) runs in its own process on the other CPU and offers no "
        f"extensions. Idle: {IDLE_CONNECTIONS:,} connections offering permessage-deflate, RSS growth / "
        f"{IDLE_CONNECTIONS:,}.",
        "",
        "| measurement | deploykit | uvicorn | ratio (deploykit/uvicorn) |",
        "|---|---:|---:|---:|",
        f"| ws echo, 1 KiB text, {CONNECTIONS} connections, messages/s | "
        f"{cell(dk, f'{dk_rate:,.0f}' if dk_rate else None)} | {cell(uv, f'{uv_rate:,.0f}' if uv_rate else None)} "
        f"| {ratio(dk_rate, uv_rate)} |",
        f"| RSS per idle WebSocket ({IDLE_CONNECTIONS:,} open) | "
        f"{cell(dk, f'{dk_mem:.1f} KiB' if dk_mem is not None else None)} "
        f"| {cell(uv, f'{uv_mem:.1f} KiB' if uv_mem is not None else None)} | {ratio(dk_mem, uv_mem)} |",
        "",
        rounds.per_round("messages/s", sides),
    ]
    return "\n".join(lines) + "\n"


def failures(sides: list[Side]) -> list[str]:
    return rounds.failed("websockets", sides)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2:])
    else:
        sys.exit(rounds.standalone(run_all, render, failures))
