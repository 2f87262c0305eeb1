"""`make test-stress`: the timing-sensitive suites several rounds in a row, then every test that failed.

Run by the Makefile while `stress-ng --cpu 2` competes for the cores (the Makefile owns the hog and
its trap). Each pass of each round writes a JUnit XML file; the report reads them all back, so a test
that failed, errored or hung into a crash in any round is listed with the rounds it failed in.
Exit status: 0 when every test passed in every round, 1 otherwise.

    python -m tests.stress --rounds 3 --out .stress
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Pass:
    name: str
    paths: tuple[str, ...]
    target: str | None = None  # SERVE_TEST_TARGET, as `make unit` / `make workers` set it


PASSES = (
    Pass("server", ("tests/server",)),
    Pass("server[deploykit-workers]", ("tests/server",), "deploykit-workers"),
    Pass("server[gunicorn]", ("tests/server",), "gunicorn"),
    Pass("processes", ("tests/server_workers", "tests/server_ws", "tests/apply", "tests/up")),
)


@dataclass(frozen=True)
class Outcome:
    tests: int
    failed: frozenset[str]  # test ids that failed or errored
    crashed: str | None  # why the pass produced no usable report (pytest exit status 2-5, no XML)


def read_report(report: Path) -> tuple[int, set[str]]:
    """(number of test cases, ids of those that failed or errored) from one JUnit XML report."""
    tree = ET.parse(report)
    total, failed = 0, set()
    for case in tree.iter("testcase"):
        total += 1
        module = case.get("classname", "").replace(".", "/")
        test_id = f"{module}.py::{case.get('name', '?')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(test_id)
    return total, failed


def run_pass(suite: Pass, report: Path) -> Outcome:
    env = {key: value for key, value in os.environ.items() if key != "SERVE_TEST_TARGET"}
    if suite.target is not None:
        env["SERVE_TEST_TARGET"] = suite.target
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *suite.paths]
    code = subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode
    if not report.exists():
        return Outcome(0, frozenset(), f"pytest exited {code} without a report")
    total, failed = read_report(report)
    crashed = None if code in (0, 1) else f"pytest exited {code}"
    return Outcome(total, frozenset(failed), crashed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the timing-sensitive suites, several rounds under load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(".stress"), help="folder for the JUnit reports")
    args = parser.parse_args(argv)
    out: Path = args.out if args.out.is_absolute() else ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("round-*.xml"):
        old.unlink()

    failures: dict[str, list[int]] = defaultdict(list)  # "pass: test id" -> rounds it failed in
    per_round: list[tuple[int, int, float]] = []  # (tests, failures, seconds)
    crashes: list[str] = []
    for round_no in range(1, args.rounds + 1):
        started, tests, failed_here = time.monotonic(), 0, 0
        for suite in PASSES:
            print(f"\n=== stress round {round_no}/{args.rounds}: {suite.name} ===", flush=True)
            safe = suite.name.replace("[", "-").replace("]", "")
            outcome = run_pass(suite, out / f"round-{round_no}-{safe}.xml")
            tests += outcome.tests
            failed_here += len(outcome.failed)
            for test_id in outcome.failed:
                failures[f"{suite.name}: {test_id}"].append(round_no)
            if outcome.crashed is not None:
                crashes.append(f"round {round_no}, {suite.name}: {outcome.crashed}")
        per_round.append((tests, failed_here, time.monotonic() - started))

    print("\n=== stress summary ===")
    for round_no, (tests, failed_here, seconds) in enumerate(per_round, 1):
        print(f"round {round_no}: {tests} tests, {failed_here} failed ({seconds:.0f}s)")
    for crash in crashes:
        print(f"CRASHED {crash}")
    for name, rounds in sorted(failures.items()):
        print(f"FAILED in round {', '.join(map(str, rounds))}: {name}")
    if not failures and not crashes:
        print(f"every test passed in all {args.rounds} rounds")
        return 0
    print(f"{len(failures)} test(s) failed at least once; reports in {out}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
