"""tests/README.md maps each test folder to the package parts it tests: it cannot drift from the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "deploykit"
LAYERS = {"unit", "real processes", "real host"}


def rows() -> dict[str, tuple[list[str], set[str]]]:
    """folder -> (the deploykit/ paths it names, its layers)."""
    table: dict[str, tuple[list[str], set[str]]] = {}
    for line in (ROOT / "tests/README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`tests/"):
            continue
        folder = cells[0].strip("`")
        assert folder not in table, f"{folder} has two rows"
        table[folder] = (re.findall(r"`(deploykit/[^`]+)`", cells[1]), {x.strip() for x in cells[2].split(",")})
    return table


def test_every_test_folder_has_a_row_and_every_row_a_folder() -> None:
    folders = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*/test_*.py")}
    assert folders == set(rows())


def test_the_paths_and_layers_named_exist() -> None:
    for folder, (paths, layers) in rows().items():
        assert layers <= LAYERS and layers, f"{folder}: layers {layers}"
        for path in paths:
            assert (ROOT / path).exists(), f"{folder} names {path}, which is not there"


def test_every_part_of_the_package_is_tested_somewhere() -> None:
    named = {path for paths, _ in rows().values() for path in paths}
    parts = [p for p in PACKAGE.iterdir() if p.name != "py.typed" and p.name != "__pycache__"]
    for part in parts:
        path = part.relative_to(ROOT).as_posix()
        assert path in named, f"{path}: no folder of tests/README.md names it"


def test_every_test_file_the_map_names_exists() -> None:
    named = set(re.findall(r"`(tests/[^`]+)`", (ROOT / "tests/README.md").read_text()))
    assert named and not [path for path in sorted(named) if not (ROOT / path).exists()]
