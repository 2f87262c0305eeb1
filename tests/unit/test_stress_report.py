"""make test-stress's report (tests/stress.py): failures read back from real pytest JUnit files, merged over rounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import stress
from tests.stress import Outcome, Pass

SAMPLE = """
def test_passes():
    assert True

def test_fails():
    assert False

def test_errors(missing_fixture):
    pass

def test_skipped():
    import pytest
    pytest.skip("not here")
"""


def junit(tmp_path: Path, name: str) -> Path:
    """A JUnit file written by a real pytest run over SAMPLE."""
    module = tmp_path / "test_sample.py"
    module.write_text(SAMPLE)
    report = tmp_path / name
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", str(module)]
    subprocess.run(argv, cwd=tmp_path, capture_output=True, check=False)
    return report


def test_a_report_names_every_failed_and_errored_test(tmp_path: Path) -> None:
    total, failed = stress.read_report(junit(tmp_path, "r.xml"))
    assert total == 4
    assert failed == {"test_sample.py::test_fails", "test_sample.py::test_errors"}


def test_the_summary_lists_each_failure_with_its_rounds_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = iter(
        [
            Outcome(3, frozenset({"a.py::t"}), None),
            Outcome(3, frozenset(), None),
            Outcome(3, frozenset({"a.py::t"}), None),
        ]
    )
    monkeypatch.setattr(stress, "PASSES", (Pass("one", ("tests/x",)),))
    monkeypatch.setattr(stress, "run_pass", lambda suite, report: next(outcomes))
    assert stress.main(["--rounds", "3", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "round 2: 3 tests, 0 failed" in out
    assert "FAILED in round 1, 3: one: a.py::t" in out


def test_a_crashed_pass_fails_the_run_even_without_a_failed_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stress, "PASSES", (Pass("one", ("tests/x",)),))
    monkeypatch.setattr(stress, "run_pass", lambda suite, report: Outcome(0, frozenset(), "pytest exited 4"))
    assert stress.main(["--rounds", "1", "--out", str(tmp_path)]) == 1
    assert "CRASHED round 1, one: pytest exited 4" in capsys.readouterr().out


def test_all_green_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress, "PASSES", (Pass("one", ("tests/x",)),))
    monkeypatch.setattr(stress, "run_pass", lambda suite, report: Outcome(5, frozenset(), None))
    assert stress.main(["--rounds", "2", "--out", str(tmp_path)]) == 0
