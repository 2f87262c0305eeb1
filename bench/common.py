"""What the `make bench` harness is built from: configuration, the servers under test, wrk.

bench/run.py is the entry point; bench/harness.py runs the scenarios and bench/report.py writes the table.
"""

import ctypes
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
DEPLOYKIT = "deploykit"
UVICORN = "uvicorn"  # the baseline: every ratio is <server>/uvicorn
GRANIAN = "granian"  # peer: Rust HTTP stack (hyper), the app on Python's asyncio with uvloop
HYPERCORN = "hypercorn"  # peer: pure-Python h11 on uvloop
SIDES = (DEPLOYKIT, UVICORN, GRANIAN, HYPERCORN)
PEERS = (GRANIAN, HYPERCORN)

WRK_THREADS = 1
WRK_CONNECTIONS = 64
WARMUP_MAX_S = 2  # per server per scenario, before the measured rounds; capped at BENCH_DURATION
RSS_REQUESTS = 200_000  # RSS is read once a hello server has answered at least this many requests
RSS_TOPUP_S = 2  # length of the extra wrk runs that reach RSS_REQUESTS when the rounds fall short
RSS_TOPUP_MAX = 30  # bound on those extra runs
STARTUP_RUNS = 5
READY_TIMEOUT_S = 20.0
READY_POLL_S = 0.005
STOP_TIMEOUT_S = 5.0
ECHO_SIZE = 64 * 1024

POST_LUA = f"""-- bench/run.py: POST a {ECHO_SIZE}-byte body (the echo scenario)
wrk.method = "POST"
wrk.body = string.rep("x", {ECHO_SIZE})
wrk.headers["Content-Type"] = "application/octet-stream"
"""

FAILED_TO_START = "failed to start"
CRASHED = "crashed"
WRONG_RESPONSE = "wrong response"
WRK_FAILED = "wrk failed"


class ConfigError(Exception):
    """Bad environment or missing tool: nothing can be measured."""


class ServerFailed(Exception):
    """A server did not start, died, or answered wrongly; `cell` is what its table cells say."""

    def __init__(self, cell: str, detail: str) -> None:
        super().__init__(f"{cell}: {detail}")
        self.cell = cell
        self.detail = detail


class WrkFailed(Exception):
    """wrk exited non-zero or printed nothing parseable."""


# --------------------------------------------------------------------------- configuration


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r}: must be at least 1")
    return value


@dataclass(frozen=True)
class Pinning:
    server_cpu: int | None
    wrk_cpu: int | None
    note: str

    def prefix(self, cpu: int | None) -> list[str]:
        return [] if cpu is None else ["taskset", "-c", str(cpu)]


def _cpu_times() -> dict[str, tuple[int, int]]:
    """Per-CPU (busy, total) jiffies from /proc/stat; busy counts steal too (time the VM did not get)."""
    times: dict[str, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(value) for value in fields[:8]]
            idle = values[3] + values[4]  # idle + iowait
            times[name[3:]] = (sum(values) - idle, sum(values))
    return times


def machine_busy(cpus: Sequence[int], seconds: float = 1.0) -> dict[int, float]:
    """How busy each CPU is with nothing of ours running, in percent: other load makes every number noise."""
    try:
        before = _cpu_times()
        time.sleep(seconds)
        after = _cpu_times()
    except (OSError, ValueError):
        return {}
    busy: dict[int, float] = {}
    for cpu in cpus:
        if str(cpu) in before and str(cpu) in after:
            (busy0, total0), (busy1, total1) = before[str(cpu)], after[str(cpu)]
            busy[cpu] = 100.0 * (busy1 - busy0) / max(total1 - total0, 1)
    return busy


def detect_pinning() -> Pinning:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Pinning(None, None, f"only {len(cpus)} CPU available: NOT pinned, server and wrk share it")
    if shutil.which("taskset") is None:
        raise ConfigError("taskset not found (util-linux); it pins the server and wrk to separate CPUs")
    return Pinning(cpus[0], cpus[1], f"server pinned to CPU {cpus[0]}, wrk to CPU {cpus[1]} (taskset -c)")


@dataclass
class Config:
    duration: int
    rounds: int
    selftest: bool
    python: str
    pinning: Pinning
    lua_script: Path
    busy_before: dict[int, float]
    busy_after: dict[int, float] = field(default_factory=dict)

    @property
    def warmup(self) -> int:
        return min(WARMUP_MAX_S, self.duration)

    @property
    def output(self) -> Path:
        return RESULTS / ("selftest.md" if self.selftest else "latest.md")


@dataclass(frozen=True)
class ServerSpec:
    """How one server is started: one worker, uvloop, access log off, warnings only."""

    side: str
    prefix: tuple[str, ...]
    style: str  # "uvicorn" (deploykit serve takes uvicorn's flags), "granian" or "hypercorn"

    def argv(self, app: str, port: int, http: str) -> list[str]:
        target = f"bench.apps:{app}"
        if self.style == GRANIAN:  # its own HTTP/1 parser: --http picks the protocol version, not a parser
            return [
                *self.prefix,
                *("--interface", "asgi", "--host", HOST, "--port", str(port), "--workers", "1"),
                *("--loop", "uvloop", "--http", "1", "--no-ws", "--no-access-log", "--log-level", "warning"),
                target,
            ]
        if self.style == HYPERCORN:  # h11 is its only HTTP/1 parser
            return [*self.prefix, *("--bind", f"{HOST}:{port}", "--workers", "1", "--worker-class", "uvloop"), target]
        return [
            *self.prefix,
            target,
            *("--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", http),
            *("--no-access-log", "--log-level", "warning"),
        ]


def server_specs(cfg: Config) -> dict[str, ServerSpec]:
    uvicorn = (cfg.python, "-m", "uvicorn")
    deploykit = uvicorn if cfg.selftest else (cfg.python, "-m", "deploykit", "serve")
    return {
        DEPLOYKIT: ServerSpec(DEPLOYKIT, deploykit, UVICORN),
        UVICORN: ServerSpec(UVICORN, uvicorn, UVICORN),
        GRANIAN: ServerSpec(GRANIAN, (cfg.python, "-m", "granian"), GRANIAN),
        HYPERCORN: ServerSpec(HYPERCORN, (cfg.python, "-m", "hypercorn", "--log-level", "warning"), HYPERCORN),
    }


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    app: str
    http: str
    post: bool = False
    measure_rss: bool = False
    sides: tuple[str, ...] = SIDES  # who runs it; granian has no h11 mode, so it sits the h11 row out


SCENARIOS = (
    Scenario("hello", "hello · GET, 13 B body · httptools", "hello", "httptools", measure_rss=True),
    Scenario("echo", "echo · POST 64 KiB, echoed · httptools", "echo", "httptools", post=True),
    Scenario("hello-h11", "hello · GET, 13 B body · h11", "hello", "h11", sides=(DEPLOYKIT, UVICORN, HYPERCORN)),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In a child before exec: SIGKILL it if the harness itself dies, even by SIGKILL (kept across exec)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def probe(port: int) -> str | None:
    """One raw `GET /`; the response's status line, or None when nothing answered."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data and len(data) < 1024:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    return data.split(b"\r\n", 1)[0].decode("latin-1") or None


def _status_is_200(status_line: str | None) -> bool:
    parts = (status_line or "").split()
    return len(parts) >= 2 and parts[0].startswith("HTTP/1.") and parts[1] == "200"


class Server:
    """One server process (its own process group), spawned pinned; `stop()` always ends the whole group."""

    def __init__(self, spec: ServerSpec, scenario: Scenario, cfg: Config) -> None:
        self.spec = spec
        self.port = free_port()
        self.argv = spec.argv(scenario.app, self.port, scenario.http)
        self._log: IO[bytes] = tempfile.TemporaryFile()
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [*cfg.pinning.prefix(cfg.pinning.server_cpu), *self.argv],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.requests_served = 0

    def exit_status(self) -> int | None:
        """The exit status once the leader has exited, without reaping it (so the group id stays reserved)."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return -1
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def output(self, tail_lines: int = 60) -> str:
        self._log.flush()
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-tail_lines:])

    def wait_ready(self) -> float:
        """Seconds from spawn to the first HTTP 200 on `GET /`, polling every 5 ms; ServerFailed otherwise."""
        deadline = self.spawned_at + READY_TIMEOUT_S
        last: str | None = None
        while True:
            status = self.exit_status()
            if status is not None:
                raise ServerFailed(FAILED_TO_START, f"exited with status {status} before answering")
            last = probe(self.port) or last
            if _status_is_200(last):
                return time.perf_counter() - self.spawned_at
            if time.perf_counter() > deadline:
                seen = f"last answer {last!r}" if last else "nothing answered"
                raise ServerFailed(FAILED_TO_START, f"no HTTP 200 within {READY_TIMEOUT_S:.0f} s ({seen})")
            time.sleep(READY_POLL_S)

    def check_alive(self) -> None:
        status = self.exit_status()
        if status is not None:
            raise ServerFailed(CRASHED, f"exited with status {status} during the benchmark")

    def rss_kib(self) -> int:
        """VmRSS summed over the server's process group (a supervisor and its workers, if it forks)."""
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                pgrp = int(stat.rsplit(")", 1)[1].split()[2])
                if pgrp != self.proc.pid:
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, IndexError, ValueError):
                continue
        return total

    def stop(self) -> None:
        if self.proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self.exit_status() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            # The leader is a zombie (or still alive) here, so its group id cannot have been reused:
            # this reaches its stragglers (forked workers) and nothing else.
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self._log.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def running(spec: ServerSpec, scenario: Scenario, cfg: Config) -> Iterator[Server]:
    server = Server(spec, scenario, cfg)
    try:
        yield server
    finally:
        server.stop()


def check_response(server: Server, scenario: Scenario) -> None:
    """One real request before measuring: a server that answers wrongly gets no numbers."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        if scenario.post:
            sent = bytes(range(256)) * (ECHO_SIZE // 256)
            conn.request("POST", "/", body=sent, headers={"Content-Type": "application/octet-stream"})
            expected = sent
        else:
            conn.request("GET", "/")
            expected = b"Hello, world!"
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ServerFailed(WRONG_RESPONSE, f"check request failed: {exc!r}") from None
    finally:
        conn.close()
    if response.status != 200 or body != expected:
        got = f"status {response.status}, {len(body)}-byte body {body[:40]!r}"
        raise ServerFailed(WRONG_RESPONSE, f"expected 200 with {len(expected)}-byte body; got {got}")


# --------------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


_LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _duration_ms(text: str) -> float:
    number = text.rstrip("usmh")
    return float(number) * _LATENCY_UNITS_MS[text[len(number) :]]


def parse_wrk(output: str) -> WrkResult:
    rps: float | None = None
    p99: float | None = None
    requests: int | None = None
    non_2xx = socket_errors = 0
    for raw in output.splitlines():
        line = raw.strip()
        words = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(words[1])
        elif line.startswith("99%") and len(words) == 2:
            p99 = _duration_ms(words[1])
        elif " requests in " in line:
            requests = int(words[0])
        elif line.startswith("Non-2xx or 3xx responses:"):
            non_2xx = int(words[-1])
        elif line.startswith("Socket errors:"):
            # "Socket errors: connect 0, read 0, write 0, timeout 0"
            socket_errors = sum(int(word.rstrip(",")) for word in words[3::2])
    if rps is None or p99 is None or requests is None:
        raise WrkFailed(f"could not parse wrk output:\n{output}")
    return WrkResult(rps, p99, requests, non_2xx, socket_errors)


def wrk_argv(cfg: Config, duration: int, port: int | str, post: bool) -> list[str]:
    return [
        *cfg.pinning.prefix(cfg.pinning.wrk_cpu),
        *("wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration}s", "--latency"),
        *(("-s", str(cfg.lua_script)) if post else ()),
        f"http://{HOST}:{port}/",
    ]


def run_wrk(cfg: Config, server: Server, duration: int, post: bool) -> WrkResult:
    argv = wrk_argv(cfg, duration, server.port, post)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=False,
            preexec_fn=_die_with_parent,
        )
    except subprocess.TimeoutExpired:
        raise WrkFailed(f"wrk did not finish within {duration + 60} s") from None
    if done.returncode != 0:
        raise WrkFailed(f"wrk exited with status {done.returncode}:\n{done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    server.requests_served += result.requests
    return result
