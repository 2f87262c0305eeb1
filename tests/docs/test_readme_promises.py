"""Each promise of README.md that no other suite checks word for word is held here to the code,
pyproject.toml and the Makefile. (The rest, and which test holds each, is listed in tests/README.md's
"README promises" section.)"""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from deploykit.docs import examples

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
MAKEFILE = (REPO / "Makefile").read_text()


def target(name: str) -> tuple[str, str]:
    """A Makefile target's prerequisites and recipe."""
    found = re.search(rf"^{re.escape(name)}:([^\n]*)\n((?:\t[^\n]*\n)*)", MAKEFILE, re.M)
    assert found, f"no {name} target in the Makefile"
    return found.group(1), found.group(2)


def test_the_install_line_installs_this_distribution_which_brings_the_deploykit_command() -> None:
    assert "pip install deploykit-asgi" in README
    assert PROJECT["project"]["name"] == "deploykit-asgi"
    assert PROJECT["project"]["scripts"]["deploykit"] == "deploykit.entry:main"


def test_the_python_version_the_readme_names_is_the_one_pyproject_requires() -> None:
    assert PROJECT["project"]["requires-python"] == ">=3.11"
    assert "Python ≥ 3.11" in README and "Python 3.11, nginx, systemd" in README
    assert "Programming Language :: Python :: 3.11" in PROJECT["project"]["classifiers"]


def test_the_apt_line_names_packages_make_setup_installs_too() -> None:
    apt = re.search(r"apt-get install ([\w\s-]+?)\s+#", README)
    assert apt, "README's apt-get line"
    prerequisites, recipe = target("system-packages")
    for package in apt.group(1).split():
        assert f'missing="$$missing {package}"' in recipe, package
    assert "system-packages" in target("setup")[0]


def test_make_run_runs_the_example_app_with_deploykit_up() -> None:
    prerequisites, recipe = target("run")
    assert "setup" in prerequisites
    assert "deploykit up -c examples/deploykit.toml" in recipe
    assert "$ deploykit up -c examples/deploykit.toml" in README


def test_make_test_runs_ruff_strict_mypy_the_tests_the_docs_site_and_the_wheel() -> None:
    steps = target("test")[0].split()
    assert {"lint", "typecheck", "unit", "docs", "dist"} <= set(steps)
    assert "ruff check" in target("lint")[1] and "ruff format --check" in target("lint")[1]
    assert PROJECT["tool"]["mypy"]["strict"] is True and "mypy" in target("typecheck")[1]
    assert "mkdocs build --strict" in target("docs")[1]
    assert "twine check" in target("dist")[1]


def test_the_sandbox_score_in_the_table_is_the_one_check_prints() -> None:
    table = re.search(r"hardened systemd sandbox by default \(exposure score ([0-9.]+)\)", README)
    assert table, "the comparison table's sandbox row"
    check = dict(examples.blocks(README))["check"]  # tests/docs/test_examples: a fresh run prints this
    assert f"exposure score {table.group(1)} OK" in check


def test_the_example_app_answers_what_the_readme_shows_curl_print(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = re.search(r"\$ curl http://127\.0\.0\.1:8080/ .*\n(\{.*\})\n", README)
    assert shown, "the curl line and its answer"
    from examples.app.main import app

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "path": "/", "scheme": "http", "client": ("127.0.0.1", 50000), "headers": []}
    greeting = "hello from deploykit"
    settings = tomllib.loads((REPO / "examples/deploykit.toml").read_text())
    assert settings["app"]["env"]["DEMO_GREETING"] == greeting  # what up hands the app (tests/up proves it)
    monkeypatch.setenv("DEMO_GREETING", greeting)
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200 and sent[1]["body"].decode() == shown.group(1)


def test_mit_licensed_and_the_license_ships() -> None:
    assert "MIT licensed." in README and PROJECT["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
