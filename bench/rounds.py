"""What the side-by-side modules run on their own (`python bench/ws.py`, `python bench/wsgi.py`) share:
a server's measured rounds, their one-line summary, and the standalone entry point. Standard library
only: bench/ws.py's load client imports it too."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Side:
    """One server's rounds in a side-by-side comparison (messages/s or requests/s)."""

    name: str
    rates: list[float] = field(default_factory=list)
    failure: str | None = None


S = TypeVar("S", bound=Side)


def medians(sides: Sequence[Side]) -> dict[str, float | None]:
    """Each side's median rate, None for a side that failed or measured nothing."""
    return {s.name: statistics.median(s.rates) if s.rates and not s.failure else None for s in sides}


def per_round(unit: str, sides: Sequence[Side]) -> str:
    """``Per-round requests/s: a [1, 2]; b [3]``: every round of every side, for the report."""
    return f"Per-round {unit}: " + "; ".join(
        f"{s.name} [{', '.join(f'{r:,.0f}' for r in s.rates) or '—'}]" for s in sides
    )


def failed(label: str, sides: Sequence[Side]) -> list[str]:
    return [f"{label}: {side.name} {side.failure}" for side in sides if side.failure]


def standalone(
    run_all: Callable[[str, int | None, int | None], list[S]],
    render: Callable[[list[S]], str],
    failures: Callable[[list[S]], list[str]],
) -> int:
    """Run one comparison outside `make bench`: servers on the first CPU, the load on the second
    (unpinned on one CPU), the repository's .venv when there is one; print its table."""
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    venv = ROOT / ".venv" / "bin" / "python"
    sides = run_all(str(venv) if venv.exists() else sys.executable, server_cpu, client_cpu)
    print(render(sides), end="")
    return 1 if failures(sides) else 0
