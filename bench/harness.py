"""Running the scenarios: every server of a scenario up at once, warmed up, then measured in interleaved
rounds (each server goes first in turn), so slow drift in the machine's load hits every column alike."""

from contextlib import ExitStack
from dataclasses import dataclass, field

from bench.common import (
    DEPLOYKIT,
    RSS_REQUESTS,
    RSS_TOPUP_MAX,
    RSS_TOPUP_S,
    SCENARIOS,
    SIDES,
    STARTUP_RUNS,
    UVICORN,
    WRK_FAILED,
    Config,
    Scenario,
    Server,
    ServerFailed,
    ServerSpec,
    WrkFailed,
    WrkResult,
    check_response,
    log,
    run_wrk,
    running,
)


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


def _rotated(sides: tuple[str, ...], index: int) -> tuple[str, ...]:
    shift = index % len(sides)
    return sides[shift:] + sides[:shift]


def run_scenario(scenario: Scenario, specs: dict[str, ServerSpec], cfg: Config) -> dict[str, SideResult]:
    log(f"\n== {scenario.label}")
    sides = scenario.sides
    results = {name: SideResult() for name in sides}
    live: dict[str, Server] = {}
    with ExitStack() as stack:
        for name in sides:
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

        for name in sides:
            if name in live:
                log(f"   {name}: warm-up {cfg.warmup} s")
                measure(name, cfg.warmup)

        for index in range(cfg.rounds):
            order = _rotated(sides, index)  # each server goes first in turn
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
            for name in sides:
                # Only deploykit and uvicorn are topped up to RSS_REQUESTS (the RSS target is their ratio);
                # a peer's RSS is read after what it served in the rounds (the report says how many).
                topups = 0 if name in (DEPLOYKIT, UVICORN) else RSS_TOPUP_MAX
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
        order = _rotated(SIDES, index)
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
