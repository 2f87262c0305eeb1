"""Issue 20, CLI: --version, shell completion, full help summaries, and the
refusals (exit 2, one `error:` line and a hint) for options that make no sense."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from deploykit.cli import main
from deploykit.version import DISTRIBUTION, version

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples/deploykit.toml")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Exit 2 with exactly one `error:` line followed by one `hint:` line; the error line is returned."""
    code, out, err = run(capsys, *args)
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert lines[lines.index(errors[0]) + 1].startswith("hint: "), err
    return errors[0]


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert version() == metadata.version(DISTRIBUTION)
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"deploykit {metadata.version(DISTRIBUTION)}\n"


def test_the_distribution_name_is_pyprojects() -> None:
    """DISTRIBUTION (what bootstrap installs and finds wheels by) is project.name, and it installed the package."""
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert DISTRIBUTION == project["name"]
    assert DISTRIBUTION in metadata.packages_distributions()["deploykit"]


def test_the_installed_command_prints_its_version(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "deploykit", "--version"], capture_output=True, text=True,
                          cwd=tmp_path, check=False, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"deploykit {version()}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_script(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--show-completion", shell)
    assert code == 0
    assert "_DEPLOYKIT_COMPLETE" in out and f"complete_{shell}" in out


def test_show_completion_names_its_shell_instead_of_guessing(capsys: pytest.CaptureFixture[str]) -> None:
    """No shell detection (which fails under a test runner or CI): SHELL is required and checked."""
    code, _, err = run(capsys, "--show-completion")
    assert code == 2 and "'--show-completion' requires an argument" in err and "Traceback" not in err
    code, _, err = run(capsys, "--show-completion", "sh")
    assert code == 2 and "'sh' is not one of 'bash', 'zsh', 'fish'" in err


def test_completion_completes_commands_and_options(tmp_path: Path) -> None:
    def complete(*words: str) -> list[str]:
        env = {**os.environ, "_DEPLOYKIT_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(["deploykit", *words]),
               "COMP_CWORD": str(len(words))}  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "deploykit"], capture_output=True, text=True, cwd=tmp_path,
                              env=env, check=False, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("ren") == ["render", "renew"]
    assert "--create-root" in complete("apply", "--cr")


def test_install_completion_writes_the_script_for_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, _ = run(capsys, "--install-completion", "bash")
    assert code == 0 and "bash completion installed" in out
    assert "_DEPLOYKIT_COMPLETE" in (tmp_path / ".bash_completions/deploykit.sh").read_text()
    assert ".bash_completions/deploykit.sh" in (tmp_path / ".bashrc").read_text()


def summaries(help_text: str) -> dict[str, str]:
    """The Commands section of --help: command name -> its summary, wrapped lines joined."""
    section = help_text.split("\nCommands:\n", 1)[1]
    found: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        match = re.match(r"^  (\S+)\s+(.*)$", line)
        if match:
            name = match[1]
            found[name] = match[2]
        elif line.strip():
            found[name] += " " + line.strip()
    return found


@pytest.mark.parametrize("columns", ["80", "60", "200"])
def test_help_summaries_are_whole_sentences(columns: str, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": columns}
    proc = subprocess.run([sys.executable, "-m", "deploykit", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, check=False, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = summaries(proc.stdout)
    assert set(found) == {"serve", "init", "render", "check", "plan", "apply", "build", "rollback", "status", "logs",
                          "doctor", "up", "renew", "bootstrap"}  # fmt: skip
    for name, summary in found.items():
        assert not summary.endswith(("…", "...")), (name, summary)
        assert summary[0].isupper() and summary.endswith("."), (name, summary)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--print", "--out", "x"], "--out and --print cannot be used together"),
        (["--out", "y", "--diff", "out"], "--out and --diff cannot be used together"),
        (["--print", "--diff", "out"], "--print and --diff cannot be used together"),
        (["--print", "--force"], "--force only applies to --out"),
        (["--diff", ".", "--force"], "--force only applies to --out"),
    ],
)
def test_render_refuses_conflicting_options(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert refused(capsys, "render", "-c", EXAMPLE, *argv) == f"error: {message}"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_render_diff_refuses_a_missing_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nonexistent"
    assert refused(capsys, "render", "-c", EXAMPLE, "--diff", str(missing)) == f"error: --diff {missing} does not exist"
    (tmp_path / "file").write_text("")
    line = refused(capsys, "render", "-c", EXAMPLE, "--diff", str(tmp_path / "file"))
    assert line == f"error: --diff {tmp_path / 'file'} is not a directory"


def test_apply_refuses_a_missing_root_unless_create_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo"
    assert (
        refused(capsys, "apply", "-c", EXAMPLE, "--root", str(typo), "--yes") == f"error: --root {typo} does not exist"
    )
    assert not typo.exists()
    code, _, err = run(capsys, "apply", "-c", EXAMPLE, "--root", str(typo), "--create-root", "--yes")
    assert code == 0, err
    assert (typo / "etc/systemd/system/demo.service").exists()
    assert run(capsys, "apply", "-c", EXAMPLE, "--root", str(typo), "--yes")[0] == 0  # it exists now
    assert (
        refused(capsys, "apply", "-c", EXAMPLE, "--create-root", "--yes")
        == "error: --create-root only applies to --root"
    )
    other = tmp_path / "other"
    assert (
        refused(capsys, "apply", "-c", EXAMPLE, "--root", str(other), "--dry-run")
        == f"error: --root {other} does not exist"
    )
    assert run(capsys, "apply", "-c", EXAMPLE, "--root", str(other), "--dry-run", "--create-root")[0] == 3
    assert not other.exists()  # a dry run creates nothing


@pytest.mark.parametrize("command", [["rollback", "--yes"], ["doctor"]])
def test_rollback_and_doctor_refuse_a_missing_root(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo"
    assert refused(capsys, *command, "-c", EXAMPLE, "--root", str(typo)) == f"error: --root {typo} does not exist"
    assert not typo.exists()


def test_rollback_hint_on_a_staging_root_points_at_the_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`status` cannot read a --root tree, so the hint there names the releases folder instead."""
    code, _, err = run(capsys, "rollback", "-c", EXAMPLE, "--root", str(tmp_path), "--yes")
    assert code == 1 and "nothing to roll back to" in err
    assert "hint: The releases kept in this --root tree are the folders under /var/lib/deploykit/demo/releases" in err
    assert "deploykit status" not in err
    code, _, err = run(capsys, "rollback", "-c", EXAMPLE, "--root", str(tmp_path), "--to", "nope", "--yes")
    assert code == 1 and "no release 'nope'" in err and "/var/lib/deploykit/demo/releases in it" in err
