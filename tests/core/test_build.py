"""`deploykit build`'s pure parts: the pip lines (a lock file honoured), the code version,
and the refusal of a folder pip cannot build. The real build runs in tests/realhost."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploykit.build import BuildFailed, build, code_version, commands


def test_without_a_lock_file_pip_resolves_the_project_s_own_dependencies(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (line,) = commands(tmp_path, tmp_path / "out", "py")
    assert line == ["py", "-m", "pip", "wheel", "--disable-pip-version-check", "--wheel-dir", str(tmp_path / "out"),
                    str(tmp_path)]  # fmt: skip


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements.txt"])
def test_a_lock_file_pins_the_dependencies_and_the_app_is_built_without_its_own(tmp_path: Path, lock: str) -> None:
    (tmp_path / lock).write_text("django==5.0\n")
    deps, app = commands(tmp_path, tmp_path / "out", "py")
    assert deps[-2:] == ["--requirement", str(tmp_path / lock)]
    assert app[-2:] == ["--no-deps", str(tmp_path)]


def test_requirements_lock_wins_over_requirements_txt(tmp_path: Path) -> None:
    for name in ("requirements.txt", "requirements.lock"):
        (tmp_path / name).write_text("")
    assert commands(tmp_path, tmp_path / "out", "py")[0][-1] == str(tmp_path / "requirements.lock")


def test_the_code_version_names_the_wheels_and_their_contents_in_any_order() -> None:
    one = code_version([("a-1.whl", b"a"), ("b-1.whl", b"b")])
    assert one == code_version([("b-1.whl", b"b"), ("a-1.whl", b"a")])
    assert one != code_version([("a-1.whl", b"a"), ("b-1.whl", b"B")])
    assert one != code_version([("a-2.whl", b"a"), ("b-1.whl", b"b")])
    assert len(one) == 12 and int(one, 16) >= 0


def test_a_folder_without_a_build_file_is_refused_before_pip_runs(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match="no pyproject.toml or setup.py"):
        build(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
