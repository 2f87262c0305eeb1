from __future__ import annotations

from pathlib import Path

from deploykit.settings.reference import reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_reference_matches_the_model() -> None:
    text = README.read_text()
    start = text.index("<!-- settings-reference:start -->\n") + len("<!-- settings-reference:start -->\n")
    end = text.index("<!-- settings-reference:end -->")
    assert text[start:end] == reference_markdown(), "run: python -m deploykit.settings.reference"


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
