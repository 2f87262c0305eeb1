"""The reference pages are generated from the code (deploykit/docs/), never edited by hand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deploykit.docs.__main__ import main
from deploykit.docs.pages import GENERATED, REGENERATE
from deploykit.server.command import FLAGS
from deploykit.settings.model import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_page_is_current(name: str) -> None:
    page = REPO / "docs" / name
    assert page.exists(), f"docs/{name} is missing; run: {REGENERATE}"
    assert page.read_text() == GENERATED[name](), f"docs/{name} is stale; run: {REGENERATE}"


def test_every_command_and_option_is_in_the_command_reference() -> None:
    import typer

    from deploykit.cli import app

    page = (REPO / "docs/reference/commands.md").read_text()
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert f"## deploykit {name}\n" in page
        for param in command.params:
            if getattr(param, "hidden", False):  # an old spelling kept working, not offered
                assert f"`{param.opts[0]}" not in page, f"{name} {param.opts[0]} is hidden"
                continue
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in page, f"{name} {opt}"


def test_every_serve_flag_and_setting_is_in_its_reference() -> None:
    serve = (REPO / "docs/reference/serve.md").read_text()
    for flag, _ in FLAGS:
        assert f"`{flag}" in serve, flag
    settings = (REPO / "docs/reference/settings.md").read_text()
    for section, field in Settings.model_fields.items():
        model = field.annotation
        for name in getattr(model, "model_fields", {}):
            assert f"`{section}.{name}" in settings, f"{section}.{name}"


def test_the_settings_reference_shows_constraints() -> None:
    settings = (REPO / "docs/reference/settings.md").read_text()
    assert "| `server.workers` | int | `1` | ≥ 1, ≤ 512 |" in settings


def test_check_mode_names_a_stale_page_and_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    assert main(["--repo", str(tmp_path), "--check", "--no-examples"]) == 0
    page = tmp_path / "docs/reference/serve.md"
    page.write_text(page.read_text().replace("--reload-delay", "--reload-pause"))
    assert main(["--repo", str(tmp_path), "--check", "--no-examples"]) == 1
    err = capsys.readouterr().err
    assert f"stale: {page}; run: {REGENERATE}" in err
    assert main(["--repo", str(tmp_path), "--no-examples"]) == 0  # rewrites it
    assert page.read_text() == GENERATED["reference/serve.md"]()
    assert main(["--repo", str(tmp_path), "--check", "--no-examples"]) == 0


def test_outside_a_checkout_it_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo", str(tmp_path), "--check"]) == 2
    assert "docs does not exist" in capsys.readouterr().err
