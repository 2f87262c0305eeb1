"""The `make bench` report: one markdown table, every server in the same run, ratios against uvicorn."""

import datetime
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    DEPLOYKIT,
    ECHO_SIZE,
    ROOT,
    RSS_REQUESTS,
    SCENARIOS,
    SIDES,
    STARTUP_RUNS,
    UVICORN,
    Config,
    ServerSpec,
    WrkResult,
    wrk_argv,
)
from bench.harness import SideResult, StartupResult

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
        "for name in ('uvicorn', 'granian', 'hypercorn', 'httptools', 'uvloop', 'h11', 'deploykit-asgi'):\n"
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


def _others(sides: Sequence[str]) -> list[str]:
    return [name for name in sides if name != UVICORN]


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
    python_path = cfg.python.replace(str(ROOT) + "/", "")

    def command(name: str) -> str:
        argv = " ".join(specs[name].argv("<app>", 0, "<http>"))
        return argv.replace("--port 0", "--port <port>").replace(":0 ", ":<port> ").replace(cfg.python, python_path)

    lines = ["# deploykit serve vs uvicorn, granian and hypercorn", ""]
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
        f"- Python {versions['python']}, uvicorn {versions.get('uvicorn')}, granian {versions.get('granian')}, "
        f"hypercorn {versions.get('hypercorn')}, httptools {versions.get('httptools')}, "
        f"uvloop {versions.get('uvloop')}, h11 {versions.get('h11')}, deploykit {versions.get('deploykit-asgi')} "
        f"(git {_git_revision()})",
        f"- wrk: `{wrk_get}`; echo adds `-s post.lua` (`{wrk_post}`), post.lua: "
        f'`wrk.method = "POST"; wrk.body = string.rep("x", {ECHO_SIZE}); '
        'wrk.headers["Content-Type"] = "application/octet-stream"`',
        f"- {cfg.rounds} round(s) of {cfg.duration} s per server and scenario, rounds rotate which server goes "
        f"first, after a {cfg.warmup} s warm-up each; req/s is the median round, p99 is that round's",
        *(f"- {name}: `{command(name)}`" for name in SIDES),
        "- parsers: deploykit and uvicorn use the row's parser (httptools or h11); granian always its own Rust "
        "HTTP/1 stack (it has no h11 mode, so it sits the h11 row out); hypercorn always h11",
        "- errors: wrk's non-2xx/3xx responses + socket errors (connect, read, write, timeout) over every run, "
        "warm-up included; anything but 0 fails the run",
        "",
        "| scenario | "
        + " | ".join(f"{name} req/s" for name in SIDES)
        + " | "
        + " | ".join(f"{name}/uvicorn" for name in _others(SIDES))
        + " | "
        + " | ".join(f"{name} p99" for name in SIDES)
        + f" | errors ({' / '.join(SIDES)}) |",
        "|---|" + "---:|" * (3 * len(SIDES)),
    ]
    for scenario in SCENARIOS:
        results = scenarios[scenario.key]
        rounds = {name: results[name].median_round if name in results else None for name in SIDES}

        def cell(name: str, value: str | None, results: dict[str, SideResult] = results) -> str:
            return _cell(results[name], value) if name in results else "n/a"

        errors = " / ".join(
            "n/a"
            if name not in results
            else ("—" if results[name].failure and not results[name].rounds else str(results[name].errors))
            for name in SIDES
        )
        rps = {name: (found.rps if (found := rounds[name]) else None) for name in SIDES}
        ratios = [_ratio(rps[name], rps[UVICORN]) for name in _others(SIDES)]
        lines.append(
            f"| {scenario.label} | "
            + " | ".join(cell(name, _fmt_rps(rounds[name])) for name in SIDES)
            + " | "
            + " | ".join(
                f"**{ratio}**" if name == DEPLOYKIT else ratio
                for name, ratio in zip(_others(SIDES), ratios, strict=True)
            )
            + " | "
            + " | ".join(cell(name, _fmt_p99(rounds[name])) for name in SIDES)
            + f" | {errors} |"
        )

    hello = scenarios[SCENARIOS[0].key]
    loaded_after = min(
        (hello[name].rss_requests for name in (DEPLOYKIT, UVICORN) if hello[name].rss_loaded_kib is not None),
        default=RSS_REQUESTS,
    )
    start_ms = {
        name: statistics.median(startup[name].seconds) * 1000
        if startup[name].seconds and not startup[name].failure
        else None
        for name in SIDES
    }

    def start_cell(name: str) -> str:
        failure, ms = startup[name].failure, start_ms[name]
        return failure if failure else (f"{ms:.0f} ms" if ms is not None else "—")

    def row(label: str, values: dict[str, str], ratios: list[str]) -> str:
        return f"| {label} | " + " | ".join(values[name] for name in SIDES) + " | " + " | ".join(ratios) + " |"

    def rss_row(label: str, attr: str) -> str:
        kib = {name: getattr(hello[name], attr) for name in SIDES}
        values = {name: _cell(hello[name], _fmt_mib(kib[name])) for name in SIDES}
        if attr == "rss_loaded_kib":  # a peer is not topped up: say after how many requests when fewer
            for name in SIDES:
                served = hello[name].rss_requests
                if kib[name] is not None and served < loaded_after:
                    values[name] += f" (after {served:,})"
        return row(label, values, [_ratio(kib[name], kib[UVICORN]) for name in _others(SIDES)])

    lines += [
        "",
        "| measurement | "
        + " | ".join(SIDES)
        + " | "
        + " | ".join(f"{name}/uvicorn" for name in _others(SIDES))
        + " |",
        "|---|" + "---:|" * (2 * len(SIDES) - 1),
        rss_row("RSS idle, after startup (hello)", "rss_idle_kib"),
        rss_row(f"RSS after ≥ {loaded_after:,} hello requests", "rss_loaded_kib"),
        row(
            f"startup, spawn → first HTTP 200 (median of {STARTUP_RUNS})",
            {name: start_cell(name) for name in SIDES},
            [_ratio(start_ms[name], start_ms[UVICORN]) for name in _others(SIDES)],
        ),
        "",
        "RSS is VmRSS summed over the server's process group (granian: its supervisor and its one worker). "
        "Startup includes `taskset` and interpreter start; it is polled with a raw `GET /` every 5 ms.",
        "",
        "Per-round req/s:",
        "",
    ]
    for scenario in SCENARIOS:
        per_side = []
        for name in scenario.sides:
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
        for name in scenario.sides:
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
