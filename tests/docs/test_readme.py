"""README.md is a front page: short, the two commands, the install line, and links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move reference text to docs/"


def test_readme_names_the_two_commands_and_the_distribution() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
    assert "pip install deploykit-asgi" in text


def test_no_install_line_names_the_other_projects_distribution() -> None:
    """`deploykit` on PyPI is an unrelated project: no page may tell a reader to install it."""
    pages = [README, *(REPO / "docs").rglob("*.md")]
    wrong = [
        f"{page.relative_to(REPO)}: {line.strip()}"
        for page in pages
        for line in page.read_text().splitlines()
        # pip install/wheel, its options, placeholders and paths, then deploykit (with extras or a version)
        if re.search(r"pip (?:install|wheel)\s+(?:(?:-[-\w]+|[A-Z_]+|\S*/\S*)\s+)*['\"]?deploykit(?![-\w/.])", line)
    ]
    assert not wrong, "install deploykit-asgi, not deploykit:\n" + "\n".join(wrong)


def test_readme_links_resolve() -> None:
    targets = re.findall(r"\]\(((?!https?:|#)[^)#]+)(?:#[^)]*)?\)", README.read_text())
    assert targets, "the README links to the docs"
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README links to missing files: {missing}"
