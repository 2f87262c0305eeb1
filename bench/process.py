"""Process-model benchmarks for `make bench`: restarts under load, workers, Gunicorn.

- rolling restarts: wrk runs through two HUPs of `deploykit serve --workers 2`,
  and through `--limit-max-requests` recycling; every failed request counts;
- workers: requests/s with 1 and 2 workers (on a 2-core machine wrk shares
  the cores, so this is not a scaling-efficiency figure; see the README);
- Gunicorn: `-k deploykit.server.workers.Worker` vs uvicorn's worker class.

Run alone with `python bench/process.py` or as part of `make bench`.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DURATION = int(os.environ.get("BENCH_PROCESS_DURATION", "8"))


@dataclass
class Run:
    label: str
    requests: int = 0
    rps: float = 0.0
    errors: int = 0
    note: str = ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ready(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    time.sleep(0.5)  # let every worker come up
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not answer")


def _wrk(port: int, during: Callable[[], None] | None = None) -> tuple[int, float, int]:
    argv = ["wrk", "-t1", "-c64", f"-d{DURATION}s", f"http://127.0.0.1:{port}/"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if during is not None:
        threading.Thread(target=during, daemon=True).start()
    out, _ = proc.communicate(timeout=DURATION + 60)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, rps, errors + (int(non2xx.group(1)) if non2xx else 0)


def _serve(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=out, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _measure(label: str, argv: list[str], tmp: Path, during: Callable[[subprocess.Popen[bytes]], None] | None = None,
             note: Callable[[str], str] | None = None) -> Run:  # fmt: skip
    port = _free_port()
    log = tmp / f"{label.replace(' ', '_')}.log"
    proc = _serve([part.replace("PORT", str(port)) for part in argv], log)
    try:
        _ready(port)
        requests, rps, errors = _wrk(port, (lambda: during(proc)) if during else None)
    finally:
        _stop(proc)
    text = log.read_text(errors="replace")
    return Run(label, requests, rps, errors, note(text) if note else "")


def _hup_twice(proc: subprocess.Popen[bytes]) -> None:
    for delay in (DURATION * 0.25, DURATION * 0.35):
        time.sleep(delay)
        proc.send_signal(signal.SIGHUP)


SERVE = [PYTHON, "-m", "deploykit", "serve", "bench.apps:hello", "--port", "PORT", "--no-access-log",
         "--log-level", "info"]  # fmt: skip
GUNICORN = [PYTHON, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:PORT", "--no-control-socket", "bench.apps:hello"]


def run_all() -> list[Run]:
    with tempfile.TemporaryDirectory(prefix="deploykit-bench-process-") as tmp_dir:
        tmp = Path(tmp_dir)
        return [
            _measure("serve --workers 1", [*SERVE, "--workers", "1"], tmp),
            _measure("serve --workers 2", [*SERVE, "--workers", "2"], tmp),
            _measure(
                "serve --workers 2, HUP twice under load",
                [*SERVE, "--workers", "2"],
                tmp,
                _hup_twice,
                lambda log: f"{log.count('rolling restart')} rolling restarts",
            ),  # fmt: skip
            _measure(
                "serve --workers 2 --limit-max-requests 5000",
                [*SERVE, "--workers", "2", "--limit-max-requests", "5000", "--limit-max-requests-jitter", "500"],
                tmp,
                None,
                lambda log: f"{log.count('request limit')} workers recycled",
            ),  # fmt: skip
            _measure(
                "gunicorn -w 2 -k deploykit.server.workers.Worker",
                [*GUNICORN, "-k", "deploykit.server.workers.Worker"],
                tmp,
            ),  # fmt: skip
            _measure(
                "gunicorn -w 2 -k uvicorn.workers.UvicornWorker",
                [*GUNICORN, "-k", "uvicorn.workers.UvicornWorker"],
                tmp,
            ),  # fmt: skip
        ]


def render(runs: list[Run]) -> str:
    lines = [
        "## Process model (wrk -t1 -c64, unpinned: server workers and wrk share the cores)",
        "",
        "| run | requests | req/s | failed requests | notes |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {r.label} | {r.requests:,} | {r.rps:,.0f} | {r.errors} | {r.note} |" for r in runs]
    by_label = {r.label: r for r in runs}
    ours = by_label.get("gunicorn -w 2 -k deploykit.server.workers.Worker")
    theirs = by_label.get("gunicorn -w 2 -k uvicorn.workers.UvicornWorker")
    if ours and theirs and theirs.rps:
        lines += ["", f"Gunicorn worker class, deploykit / uvicorn: **{ours.rps / theirs.rps:.2f}×**."]
    return "\n".join(lines) + "\n"


def failures(runs: list[Run]) -> list[str]:
    return [f"{r.label}: {r.errors} failed requests" for r in runs if r.errors]


if __name__ == "__main__":
    results = run_all()
    print(render(results), end="")
    sys.exit(1 if failures(results) else 0)
