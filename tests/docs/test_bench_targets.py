"""README's speed table is the last `make bench` run's, copied by bench/targets.py: it cannot be
edited by hand or drift from bench/results/latest.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import targets
from bench.common import WrkResult
from bench.harness import SideResult

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_shows_the_targets_of_the_last_run() -> None:
    readme = targets.block((ROOT / "README.md").read_text())
    latest = targets.block((ROOT / "bench" / "results" / "latest.md").read_text())
    assert readme is not None, "README.md lost its bench-targets markers"
    assert latest is not None, "bench/results/latest.md has no targets table: rerun make bench"
    assert readme == latest


def test_sync_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{targets.START}\nold\n{targets.END}\nafter\n")
    new = targets.render([(targets.HELLO, 2.5), (targets.RSS, 0.9), (targets.ECHO, None)], "today")
    assert targets.sync_readme(readme, new)
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith("\nafter\n") and "old" not in text
    assert targets.block(text) == new
    assert "| 2.50× | ≥ 2.0× | yes |" in new and "| 0.90× | ≤ 0.8× | no |" in new and "not measured" in new
    readme.write_text("no markers\n")
    assert not targets.sync_readme(readme, new)


@pytest.mark.parametrize(("ours", "theirs", "shown"), [(300.0, 100.0, 3.0), (100.0, 0.0, None)])
def test_ratios_come_from_the_median_rounds(ours: float, theirs: float, shown: float | None) -> None:
    def side(rps: float) -> SideResult:
        return SideResult(rounds=[_wrk(rps * 0.5), _wrk(rps), _wrk(rps * 9)])

    results = dict(targets.measured({"hello": {"deploykit": side(ours), "uvicorn": side(theirs)}}, None))
    assert results[targets.HELLO] == shown
    assert results[targets.WS_ECHO] is None and results[targets.H11] is None


def _wrk(rps: float) -> WrkResult:
    return WrkResult(rps=rps, p99_ms=1.0, requests=int(rps), non_2xx=0, socket_errors=0)
