"""The console examples in README.md and docs/ are what the commands print today
(deploykit/docs/examples.py runs them; timings and release ids are masked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploykit.docs import examples
from deploykit.docs.pages import REGENERATE, example_pages

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shown() -> dict[str, str]:
    return examples.run_examples()


@pytest.mark.tools
def test_every_example_on_every_page_matches_a_fresh_run(shown: dict[str, str]) -> None:
    stale = []
    for page in example_pages(REPO):
        for name, text in examples.blocks(page.read_text()):
            assert name in shown, f"{page.name}: no example named {name!r} in deploykit/docs/examples.py"
            if examples.normalise(text) != examples.normalise(shown[name]):
                stale.append(f"{page.relative_to(REPO)}: {name}")
    assert not stale, f"stale examples (run: {REGENERATE}):\n" + "\n".join(stale)


@pytest.mark.tools
def test_the_examples_show_real_results(shown: dict[str, str]) -> None:
    assert "wrote deploykit.toml" in shown["init"]
    assert "all checks passed" in shown["check"]
    assert shown["check-bad-value"].endswith("$ echo $?\n1\n")
    assert "applied release" in shown["apply-staging"]
    assert '+GREETING="hello"' in shown["plan-staging"] and shown["plan-staging"].endswith("$ echo $?\n3\n")
    assert "echo $?" not in shown["plan-clean"]
    assert "gunicorn config          │ ok" in shown["django-check"]
    assert "ping interval" in shown["ws-check-ping"]


def test_every_example_is_shown_somewhere_and_the_tutorial_steps_are_produced() -> None:
    used: dict[str, set[str]] = {}
    for page in example_pages(REPO):
        for name, _ in examples.blocks(page.read_text()):
            used.setdefault(name, set()).add(page.relative_to(REPO).as_posix())
    assert {e.name for e in examples.EXAMPLES} == set(used)
    for step in ("init", "render", "check", "plan-staging", "apply-staging"):
        assert "docs/tutorial.md" in used[step], step
    for step in ("init", "check", "apply-staging"):
        assert "README.md" in used[step], step


def test_normalise_masks_only_what_changes_between_runs() -> None:
    a = "│ nginx -t │ ok │ 17 ms    │\n  ✓ write files (0.07s)\napplied release 20261130T004740889Z\n"
    b = "│ nginx -t │ ok │ 1234 ms  │\n  ✓ write files (12.30s)\napplied release 20261201T000000000Z\n"
    assert examples.normalise(a) == examples.normalise(b)
    assert examples.normalise(a) != examples.normalise(a.replace("ok", "FAIL"))


def test_fill_replaces_a_marked_block_and_refuses_an_unknown_name() -> None:
    page = "x\n<!-- example: init -->\n```console\nold\n```\n<!-- /example -->\ny\n"
    assert examples.fill(page, {"init": "$ new\n"}) == page.replace("old\n", "$ new\n")
    with pytest.raises(KeyError, match="no example named 'init'"):
        examples.fill(page, {})
