"""`make bench`: wrk against `deploykit serve`, uvicorn (the baseline), granian and hypercorn (peers), side by
side, in one run. The parts: bench/common.py (configuration, servers, wrk), bench/harness.py (the interleaved
rounds), bench/report.py (the table); this file is the entry point.

Scenarios (one worker each, uvloop, access log off):
  hello/httptools  GET, 13-byte body
  echo/httptools   POST 64 KiB, echoed back
  hello/h11        GET, 13-byte body, pure-Python parser (granian has none: it sits this one out)
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

import datetime
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script (make bench): the repository root is not on sys.path yet
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import targets  # noqa: E402
from bench.common import (  # noqa: E402
    POST_LUA,
    RESULTS,
    ROOT,
    SCENARIOS,  # noqa: E402
    Config,
    ConfigError,
    _env_int,
    detect_pinning,
    log,
    machine_busy,
    server_specs,
)
from bench.harness import measure_startup, run_scenario  # noqa: E402
from bench.report import _busy_warning, _git_revision, collect_problems, render  # noqa: E402


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
        sides = None
        if not cfg.selftest:
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
    when = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, git {_git_revision()}"
    summary = targets.render(targets.measured(scenarios, sides), when)
    report += "\n## Issue 17's targets\n\n" + summary + "\n"
    print()
    print(report, end="")
    RESULTS.mkdir(parents=True, exist_ok=True)
    cfg.output.write_text(report)
    log(f"\nwritten to {cfg.output.relative_to(ROOT)}")
    if not cfg.selftest and targets.sync_readme(ROOT / "README.md", summary):
        log("the targets table is copied into README.md (commit it with bench/results/latest.md)")
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
