"""`make bench`: wrk against `deploykit serve` and uvicorn, side by side, in one run.

Scenarios (one worker each, uvloop, access log off):
  hello/httptools  GET, 13-byte body
  echo/httptools   POST 64 KiB, echoed back
  hello/h11        GET, 13-byte body, pure-Python parser
plus RSS (idle, and after >= 200k hello requests) and startup time (spawn -> first HTTP 200, median of 5),
then bench/process.py (restarts, workers, Gunicorn) and bench/ws.py (WebSocket echo messages/s and RSS
per idle WebSocket, deploykit vs uvicorn on the same ws library).

Environment: BENCH_DURATION (seconds per wrk round, default 10), BENCH_ROUNDS (default 3).
BENCH_SELFTEST=1 runs uvicorn in the deploykit column too, to check the harness itself; its table goes to
bench/results/selftest.md so it can never be mistaken for a real result.

The table is printed and written to bench/results/latest.md. Exit status: 0 when every cell was measured with
zero wrk errors; 1 when a server failed to start, crashed, answered wrongly or wrk saw errors; 2 on bad
configuration (missing wrk, bad environment values).
"""

import ctypes
import datetime
import http.client
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
DEPLOYKIT = "deploykit"
UVICORN = "uvicorn"
SIDES = (DEPLOYKIT, UVICORN)

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
    side: str
    prefix: tuple[str, ...]

    def argv(self, app: str, port: int, http: str) -> list[str]:
        return [
            *self.prefix,
            f"bench.apps:{app}",
            *("--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", http),
            *("--no-access-log", "--log-level", "warning"),
        ]


def server_specs(cfg: Config) -> dict[str, ServerSpec]:
    uvicorn = (cfg.python, "-m", "uvicorn")
    deploykit = uvicorn if cfg.selftest else (cfg.python, "-m", "deploykit", "serve")
    return {DEPLOYKIT: ServerSpec(DEPLOYKIT, deploykit), UVICORN: ServerSpec(UVICORN, uvicorn)}


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    app: str
    http: str
    post: bool = False
    measure_rss: bool = False


SCENARIOS = (
    Scenario("hello", "hello · GET, 13 B body · httptools", "hello", "httptools", measure_rss=True),
    Scenario("echo", "echo · POST 64 KiB, echoed · httptools", "echo", "httptools", post=True),
    Scenario("hello-h11", "hello · GET, 13 B body · h11", "hello", "h11"),
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


# --------------------------------------------------------------------------- measuring


@dataclass
class SideResult:
    rounds: list[WrkResult] = field(default_factory=list)
    errors: int = 0  # non-2xx + socket errors over every wrk run against it in this scenario, warm-up included
    failure: str | None = None
    rss_idle_kib: int | None = None
    rss_loaded_kib: int | None = None
    rss_requests: int = 0

    @property
    def median_round(self) -> WrkResult | None:
        """The round with the median req/s (the lower middle one for an even count)."""
        if self.failure is not None or not self.rounds:
            return None
        ordered = sorted(self.rounds, key=lambda result: result.rps)
        return ordered[(len(ordered) - 1) // 2]


@dataclass
class StartupResult:
    seconds: list[float] = field(default_factory=list)
    failure: str | None = None


def _fail(side: SideResult, server: Server, exc: ServerFailed | WrkFailed) -> None:
    side.failure = exc.cell if isinstance(exc, ServerFailed) else WRK_FAILED
    log(f"  !! {server.spec.side}: {exc}")
    log(f"  !! command: {' '.join(server.argv)}")
    log(f"  !! its output (last lines):\n{_indent(server.output() or '(nothing)')}")


def _indent(text: str) -> str:
    return "\n".join(f"     | {line}" for line in text.splitlines())


def run_scenario(scenario: Scenario, specs: dict[str, ServerSpec], cfg: Config) -> dict[str, SideResult]:
    log(f"\n== {scenario.label}")
    results = {name: SideResult() for name in SIDES}
    live: dict[str, Server] = {}
    with ExitStack() as stack:
        for name in SIDES:
            server = stack.enter_context(running(specs[name], scenario, cfg))
            try:
                took = server.wait_ready()
                check_response(server, scenario)
            except ServerFailed as exc:
                _fail(results[name], server, exc)
                continue
            log(f"   {name}: up on port {server.port} after {took * 1000:.0f} ms")
            if scenario.measure_rss:
                results[name].rss_idle_kib = server.rss_kib()
            live[name] = server

        def measure(name: str, duration: int) -> WrkResult | None:
            server, side = live[name], results[name]
            try:
                result = run_wrk(cfg, server, duration, scenario.post)
                server.check_alive()
            except (ServerFailed, WrkFailed) as exc:
                _fail(side, server, exc)
                del live[name]
                return None
            side.errors += result.errors
            return result

        for name in SIDES:
            if name in live:
                log(f"   {name}: warm-up {cfg.warmup} s")
                measure(name, cfg.warmup)

        for index in range(cfg.rounds):
            order = SIDES if index % 2 == 0 else SIDES[::-1]  # alternate who goes first
            for name in order:
                if name not in live:
                    continue
                result = measure(name, cfg.duration)
                if result is not None:
                    results[name].rounds.append(result)
                    log(
                        f"   round {index + 1}/{cfg.rounds} {name:9} {result.rps:>11,.0f} req/s"
                        f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
                    )

        if scenario.measure_rss:
            for name in SIDES:
                topups = 0
                while name in live and live[name].requests_served < RSS_REQUESTS and topups < RSS_TOPUP_MAX:
                    measure(name, RSS_TOPUP_S)
                    topups += 1
                if name in live:
                    server = live[name]
                    rss = results[name].rss_loaded_kib = server.rss_kib()
                    results[name].rss_requests = server.requests_served
                    log(f"   {name}: RSS {rss / 1024:.1f} MiB after {server.requests_served:,} requests")
    return results


def measure_startup(specs: dict[str, ServerSpec], cfg: Config) -> dict[str, StartupResult]:
    scenario = SCENARIOS[0]
    log(f"\n== startup: spawn -> first HTTP 200 ({scenario.app}, {scenario.http}), median of {STARTUP_RUNS}")
    results = {name: StartupResult() for name in SIDES}
    for index in range(STARTUP_RUNS):
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for name in order:
            result = results[name]
            if result.failure is not None:
                continue
            with running(specs[name], scenario, cfg) as server:
                try:
                    result.seconds.append(server.wait_ready())
                except ServerFailed as exc:
                    result.failure = exc.cell
                    log(f"  !! {name}: {exc}\n{_indent(server.output() or '(nothing)')}")
                    continue
            log(f"   start {index + 1}/{STARTUP_RUNS} {name:9} {result.seconds[-1] * 1000:7.1f} ms")
    return results


# --------------------------------------------------------------------------- report


BUSY_WARN_PERCENT = 10.0


def _busy_note(busy: dict[int, float]) -> str:
    if not busy:
        return "not measured"
    return ", ".join(f"CPU {cpu} {percent:.0f} %" for cpu, percent in sorted(busy.items()))


def _busy_warning(cfg: Config) -> str | None:
    for when, busy in (("before", cfg.busy_before), ("after", cfg.busy_after)):
        if any(percent > BUSY_WARN_PERCENT for percent in busy.values()):
            note = _busy_note(busy)
            return f"other processes kept the machine busy {when} the run ({note}): treat the numbers as noise"
    return None


def _ratio(deploykit: float | None, uvicorn: float | None) -> str:
    if deploykit is None or uvicorn is None or uvicorn == 0:
        return "—"
    return f"{deploykit / uvicorn:.2f}"


def _cell(side: SideResult, value: str | None) -> str:
    return side.failure if side.failure is not None else (value or "—")


def _tool_versions(cfg: Config) -> dict[str, str]:
    code = (
        "import importlib.metadata as m\n"
        "for name in ('uvicorn', 'httptools', 'uvloop', 'h11', 'deploykit-asgi'):\n"
        "    try: print(name, m.version(name))\n"
        "    except m.PackageNotFoundError: print(name, 'not installed')\n"
    )
    versions: dict[str, str] = {}
    for line in _stdout([cfg.python, "-c", code]).splitlines():
        name, _, version = line.partition(" ")
        versions[name] = version
    python = _stdout([cfg.python, "-c", "import platform; print(platform.python_version())"])
    versions["python"] = python or platform.python_version()
    return versions


def _stdout(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _git_revision() -> str:
    head = _stdout(["git", "rev-parse", "--short", "HEAD"])
    if not head:
        return "unknown"
    dirty = _stdout(["git", "status", "--porcelain"])
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "cpu model", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _fmt_rps(result: WrkResult | None) -> str | None:
    return f"{result.rps:,.0f}" if result else None


def _fmt_p99(result: WrkResult | None) -> str | None:
    return f"{result.p99_ms:.2f} ms" if result else None


def _fmt_mib(kib: int | None) -> str | None:
    return f"{kib / 1024:.1f} MiB" if kib is not None else None


def render(
    cfg: Config,
    specs: dict[str, ServerSpec],
    scenarios: dict[str, dict[str, SideResult]],
    startup: dict[str, StartupResult],
    problems: Sequence[str],
) -> str:
    versions = _tool_versions(cfg)
    wrk_get = " ".join(wrk_argv(cfg, cfg.duration, "<port>", post=False))
    wrk_post = " ".join(wrk_argv(cfg, cfg.duration, "<port>", post=True)).replace(str(cfg.lua_script), "post.lua")
    deploykit_cmd = " ".join(specs[DEPLOYKIT].argv("<app>", 0, "<http>")).replace("--port 0", "--port <port>")
    uvicorn_cmd = " ".join(specs[UVICORN].argv("<app>", 0, "<http>")).replace("--port 0", "--port <port>")
    python_path = cfg.python.replace(str(ROOT) + "/", "")
    lines = [
        "# deploykit serve vs uvicorn",
        "",
    ]
    if cfg.selftest:
        lines += ["**SELFTEST (BENCH_SELFTEST=1): the deploykit column is uvicorn. Not a result.**", ""]
    warning = _busy_warning(cfg)
    if warning:
        lines += [f"**WARNING: {warning}.**", ""]
    lines += [
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {_cpu_model()}; {len(os.sched_getaffinity(0))} CPUs available; {cfg.pinning.note}",
        f"- other load, 1 s sampled with nothing of ours running (busy incl. steal): before the run "
        f"{_busy_note(cfg.busy_before)}; after {_busy_note(cfg.busy_after)}",
        f"- Python {versions['python']}, uvicorn {versions.get('uvicorn')}, httptools {versions.get('httptools')}, "
        f"uvloop {versions.get('uvloop')}, h11 {versions.get('h11')}, deploykit {versions.get('deploykit-asgi')} "
        f"(git {_git_revision()})",
        f"- wrk: `{wrk_get}`; echo adds `-s post.lua` (`{wrk_post}`), post.lua: "
        f'`wrk.method = "POST"; wrk.body = string.rep("x", {ECHO_SIZE}); '
        'wrk.headers["Content-Type"] = "application/octet-stream"`',
        f"- {cfg.rounds} round(s) of {cfg.duration} s per server and scenario, rounds alternate which server goes "
        f"first, after a {cfg.warmup} s warm-up each; req/s is the median round, p99 is that round's",
        f"- deploykit: `{deploykit_cmd.replace(cfg.python, python_path)}`",
        f"- uvicorn: `{uvicorn_cmd.replace(cfg.python, python_path)}`",
        "- errors: wrk's non-2xx/3xx responses + socket errors (connect, read, write, timeout) over every run, "
        "warm-up included; anything but 0 fails the run",
        "",
        "| scenario | deploykit req/s | uvicorn req/s | ratio (deploykit/uvicorn) | deploykit p99 | uvicorn p99 "
        "| errors (deploykit / uvicorn) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        dk, uv = scenarios[scenario.key][DEPLOYKIT], scenarios[scenario.key][UVICORN]
        dk_round, uv_round = dk.median_round, uv.median_round
        errors = " / ".join("—" if side.failure and not side.rounds else str(side.errors) for side in (dk, uv))
        lines.append(
            f"| {scenario.label} | {_cell(dk, _fmt_rps(dk_round))} | {_cell(uv, _fmt_rps(uv_round))} "
            f"| {_ratio(dk_round.rps if dk_round else None, uv_round.rps if uv_round else None)} "
            f"| {_cell(dk, _fmt_p99(dk_round))} | {_cell(uv, _fmt_p99(uv_round))} | {errors} |"
        )

    hello = scenarios[SCENARIOS[0].key]
    dk, uv = hello[DEPLOYKIT], hello[UVICORN]
    loaded_after = min((s.rss_requests for s in (dk, uv) if s.rss_loaded_kib is not None), default=RSS_REQUESTS)
    dk_start, uv_start = startup[DEPLOYKIT], startup[UVICORN]
    dk_ms = statistics.median(dk_start.seconds) * 1000 if dk_start.seconds and not dk_start.failure else None
    uv_ms = statistics.median(uv_start.seconds) * 1000 if uv_start.seconds and not uv_start.failure else None

    def start_cell(result: StartupResult, ms: float | None) -> str:
        return result.failure if result.failure else (f"{ms:.0f} ms" if ms is not None else "—")

    lines += [
        "",
        "| measurement | deploykit | uvicorn | ratio (deploykit/uvicorn) |",
        "|---|---:|---:|---:|",
        f"| RSS idle, after startup (hello, httptools) | {_cell(dk, _fmt_mib(dk.rss_idle_kib))} "
        f"| {_cell(uv, _fmt_mib(uv.rss_idle_kib))} | {_ratio(dk.rss_idle_kib, uv.rss_idle_kib)} |",
        f"| RSS after ≥ {loaded_after:,} hello requests (httptools) | {_cell(dk, _fmt_mib(dk.rss_loaded_kib))} "
        f"| {_cell(uv, _fmt_mib(uv.rss_loaded_kib))} | {_ratio(dk.rss_loaded_kib, uv.rss_loaded_kib)} |",
        f"| startup, spawn → first HTTP 200 (median of {STARTUP_RUNS}) | {start_cell(dk_start, dk_ms)} "
        f"| {start_cell(uv_start, uv_ms)} | {_ratio(dk_ms, uv_ms)} |",
        "",
        "RSS is VmRSS summed over the server's process group. Startup includes `taskset` and interpreter start; "
        "it is polled with a raw `GET /` every 5 ms.",
        "",
        "Per-round req/s:",
        "",
    ]
    for scenario in SCENARIOS:
        per_side = []
        for name in SIDES:
            side = scenarios[scenario.key][name]
            values = ", ".join(f"{r.rps:,.0f}" for r in side.rounds) or "—"
            per_side.append(f"{name} [{values}]" + (f" ({side.failure})" if side.failure else ""))
        lines.append(f"- {scenario.label}: {'; '.join(per_side)}")
    if problems:
        lines += ["", "**Incomplete or failed:**", "", *(f"- {problem}" for problem in problems)]
    return "\n".join(lines) + "\n"


def collect_problems(scenarios: dict[str, dict[str, SideResult]], startup: dict[str, StartupResult]) -> list[str]:
    problems: list[str] = []
    for scenario in SCENARIOS:
        for name in SIDES:
            side = scenarios[scenario.key][name]
            if side.failure:
                problems.append(f"{scenario.label}: {name} {side.failure}")
            elif side.errors:
                problems.append(f"{scenario.label}: {name} had {side.errors} wrk errors (must be 0)")
    for name in SIDES:
        if startup[name].failure:
            problems.append(f"startup: {name} {startup[name].failure}")
    return problems


# --------------------------------------------------------------------------- main


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`, so servers are stopped


def configure(workdir: Path) -> Config:
    duration = _env_int("BENCH_DURATION", 10)
    rounds = _env_int("BENCH_ROUNDS", 3)
    selftest = os.environ.get("BENCH_SELFTEST", "").strip() not in ("", "0")
    if shutil.which("wrk") is None:
        raise ConfigError("wrk not found on PATH (apt-get install wrk)")
    venv_python = ROOT / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    lua_script = workdir / "post.lua"
    lua_script.write_text(POST_LUA)
    pinning = detect_pinning()
    used = [cpu for cpu in (pinning.server_cpu, pinning.wrk_cpu) if cpu is not None]
    busy = machine_busy(used or sorted(os.sched_getaffinity(0)))
    return Config(duration, rounds, selftest, python, pinning, lua_script, busy)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    with tempfile.TemporaryDirectory(prefix="deploykit-bench-") as workdir:
        try:
            cfg = configure(Path(workdir))
        except ConfigError as exc:
            log(f"make bench: {exc}")
            return 2
        specs = server_specs(cfg)
        log(f"make bench: {cfg.rounds} round(s) x {cfg.duration} s per server and scenario; {cfg.pinning.note}")
        if cfg.selftest:
            log("make bench: SELFTEST, the deploykit column runs uvicorn")
        if warning := _busy_warning(cfg):
            log(f"make bench: WARNING {warning}")
        scenarios = {scenario.key: run_scenario(scenario, specs, cfg) for scenario in SCENARIOS}
        startup = measure_startup(specs, cfg)
        cfg.busy_after = machine_busy(list(cfg.busy_before) or sorted(os.sched_getaffinity(0)))
        problems = collect_problems(scenarios, startup)
        report = render(cfg, specs, scenarios, startup, problems)
        if not cfg.selftest:
            sys.path.insert(0, str(ROOT))
            from bench import process  # restarts under load, workers, Gunicorn

            log("make bench: process model (HUP and max-requests under load, workers, Gunicorn)")
            runs = process.run_all()
            report += "\n" + process.render(runs)
            problems += process.failures(runs)

            from bench import ws  # WebSocket echo and idle memory

            log("make bench: WebSockets (echo messages/s, RSS per idle connection)")
            sides = ws.run_all(cfg.python, cfg.pinning.server_cpu, cfg.pinning.wrk_cpu)
            report += "\n" + ws.render(sides)
            problems += ws.failures(sides)

            from bench import wsgi  # WSGI hello: deploykit and uvicorn --interface wsgi, gunicorn -k gthread

            log("make bench: WSGI hello (deploykit, uvicorn, gunicorn gthread)")
            wsgi_sides = wsgi.run_all(cfg.python, cfg.pinning.server_cpu, cfg.pinning.wrk_cpu)
            report += "\n" + wsgi.render(wsgi_sides)
            problems += wsgi.failures(wsgi_sides)
    print()
    print(report, end="")
    RESULTS.mkdir(parents=True, exist_ok=True)
    cfg.output.write_text(report)
    log(f"\nwritten to {cfg.output.relative_to(ROOT)}")
    if warning := _busy_warning(cfg):
        log(f"make bench: WARNING {warning}")
    if problems:
        log("make bench: FAILED\n" + "\n".join(f"  - {problem}" for problem in problems))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("\nmake bench: interrupted; servers stopped")
        sys.exit(130)
