"""The generated reference pages and the pages with produced examples, and where they live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from deploykit.docs import examples
from deploykit.docs.commands import commands_markdown
from deploykit.docs.serve import serve_markdown
from deploykit.docs.settings import settings_markdown

REGENERATE = "python -m deploykit.docs"

#: docs-relative path -> the function that writes the whole page.
GENERATED: dict[str, Callable[[], str]] = {
    "reference/commands.md": commands_markdown,
    "reference/settings.md": settings_markdown,
    "reference/serve.md": serve_markdown,
}


def example_pages(repo: Path) -> list[Path]:
    """README.md and every docs page that marks an example."""
    pages = [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]
    return [page for page in pages if page.is_file() and examples.MARK.search(page.read_text())]


def expected(repo: Path, run: bool = True) -> dict[Path, str]:
    """Each generated or example-holding page as it should read now (running the examples when RUN)."""
    pages = {repo / "docs" / name: make() for name, make in GENERATED.items()}
    if run:
        shown = examples.run_examples()
        for page in example_pages(repo):
            pages[page] = examples.fill(page.read_text(), shown)
    return pages
