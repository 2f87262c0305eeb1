"""WSGI hello for `make bench`: one WSGI app (bench.apps:wsgi_hello) under three servers,
one process each, pinned to the same CPU, wrk on the other:

- deploykit: `deploykit serve --interface wsgi` (uvloop, httptools, a thread pool);
- uvicorn: `uvicorn --interface wsgi` (uvloop, httptools, its WSGI middleware's pool);
- gunicorn: `gunicorn -k gthread` (Gunicorn's threaded worker, the usual way to serve WSGI).

deploykit and Gunicorn get the same THREADS; uvicorn's WSGI middleware has its own fixed
pool and no flag for it. Rounds alternate the order of the servers; the row is the median.
Run alone with `python bench/wsgi.py`, or as part of `make bench`.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root is not on sys.path yet
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import rounds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
APP = "bench.apps:wsgi_hello"
#: deploykit's default for one pinned CPU (4 per CPU), given to Gunicorn too.
THREADS = 4
CONNECTIONS = 64
DURATION = int(os.environ.get("BENCH_WSGI_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_WSGI_ROUNDS", "3"))
SIDES = ("deploykit", "uvicorn", "gunicorn")


Side = rounds.Side


def _argv(python: str, side: str, port: int) -> list[str]:
    asgi = ["--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--interface", "wsgi"]
    asgi += ["--no-access-log", "--log-level", "warning"]
    if side == "deploykit":
        return [python, "-m", "deploykit", "serve", APP, *asgi, "--wsgi-threads", str(THREADS)]
    if side == "uvicorn":
        return [python, "-m", "uvicorn", APP, *asgi]
    return [python, "-m", "gunicorn", "-k", "gthread", "--threads", str(THREADS), "-w", "1", "-b", f"{HOST}:{port}",
            "--log-level", "warning", "--no-control-socket", APP]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _pin(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def _start(argv: list[str], port: int, cpu: int | None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*_pin(cpu), *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError("no HTTP 200 within 30 s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wrk(port: int, cpu: int | None, seconds: int) -> float:
    argv = [*_pin(cpu), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", f"http://{HOST}:{port}/"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise RuntimeError(f"wrk saw errors:\n{done.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"could not parse wrk output:\n{done.stdout}")
    return float(match.group(1))


def run_all(python: str, server_cpu: int | None, client_cpu: int | None) -> list[Side]:
    sides = [Side(name) for name in SIDES]
    for index in range(ROUNDS):
        for side in sides[index % len(sides) :] + sides[: index % len(sides)]:
            if side.failure:
                continue
            port = _free_port()
            try:
                proc = _start(_argv(python, side.name, port), port, server_cpu)
            except RuntimeError as exc:
                side.failure = f"failed to start: {exc}"
                continue
            try:
                _wrk(port, client_cpu, 1)  # warm-up
                side.rates.append(_wrk(port, client_cpu, DURATION))
            except (RuntimeError, subprocess.SubprocessError) as exc:
                side.failure = f"failed: {exc}"
            finally:
                _stop(proc)
            rate = side.rates[-1] if side.rates else 0
            print(f"   wsgi round {index + 1}/{ROUNDS} {side.name:9} {rate:>9,.0f} req/s", file=sys.stderr, flush=True)
    return sides


def render(sides: list[Side]) -> str:
    median = rounds.medians(sides)
    dk = median["deploykit"]

    def cell(side: Side) -> str:
        value = median[side.name]
        return side.failure or (f"{value:,.0f}" if value else "—")

    def ratio(other: float | None) -> str:
        return f"{dk / other:.2f}×" if dk and other else "—"

    lines = [
        "## WSGI hello (deploykit `--interface wsgi` vs uvicorn `--interface wsgi` vs gunicorn `-k gthread`)",
        "",
        f"bench.apps:wsgi_hello (13 B body), one process each on the same CPU, wrk (1 thread, {CONNECTIONS} "
        f"connections) on the other, {DURATION} s per round after a 1 s warm-up, median of {ROUNDS} rounds "
        f"(rounds rotate which server goes first). deploykit and Gunicorn run {THREADS} threads; uvicorn's WSGI "
        "middleware has its own fixed pool.",
        "",
        "| requests/s | deploykit | uvicorn | gunicorn gthread | deploykit/uvicorn | deploykit/gunicorn |",
        "|---|---:|---:|---:|---:|---:|",
        f"| GET, 13 B body | {' | '.join(cell(s) for s in sides)} | {ratio(median['uvicorn'])} "
        f"| {ratio(median['gunicorn'])} |",
        "",
        rounds.per_round("requests/s", sides),
    ]
    return "\n".join(lines) + "\n"


def failures(sides: list[Side]) -> list[str]:
    return rounds.failed("wsgi", sides)


if __name__ == "__main__":
    sys.exit(rounds.standalone(run_all, render, failures))
