from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploykit.cli import main

pytestmark = pytest.mark.tools


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_a_valid_commented_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "init", str(tmp_path), "--no-input", "--profile", "django", "--name", "shop",
        "--module", "shop.asgi:application", "--server-name", "shop.example",
    )  # fmt: skip
    assert code == 0, err
    text = (tmp_path / "deploykit.toml").read_text()
    assert text.startswith("# deploykit settings for shop.")
    assert 'profile = "django"' in text and 'module = "shop.asgi:application"' in text
    code, out, err = run(capsys, "check", "-c", str(tmp_path / "deploykit.toml"))
    assert code == 0, out + err
    assert "all checks passed" in out


def test_init_never_overwrites_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "deploykit.toml").write_text("# mine\n")
    code, _, err = run(capsys, "init", str(tmp_path), "--no-input")
    assert code == 1
    assert "already exists" in err and "hint: Pass --force" in err
    assert (tmp_path / "deploykit.toml").read_text() == "# mine\n"
    assert run(capsys, "init", str(tmp_path), "--no-input", "--force")[0] == 0
    assert "# mine" not in (tmp_path / "deploykit.toml").read_text()


def test_init_refuses_invalid_answers_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", str(tmp_path), "--no-input", "--name", "Bad Name!")
    assert code == 1
    assert "init answers: app.name = 'Bad Name!'" in err
    assert not (tmp_path / "deploykit.toml").exists()


def test_init_default_name_comes_from_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "My_Cool App"
    assert run(capsys, "init", str(folder), "--no-input")[0] == 0
    assert 'name = "my-cool-app"' in (folder / "deploykit.toml").read_text()


def test_render_out_writes_files_with_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "root"
    code, _, err = run(capsys, "render", "-p", "django", "--set", "app.name=shop", "--out", str(out_dir))
    assert code == 0, err
    env = out_dir / "etc/default/shop"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert stat.S_IMODE((out_dir / "etc/systemd/system/shop.service").stat().st_mode) == 0o644
    assert (out_dir / "etc/deploykit/shop/gunicorn.conf.py").exists()
    assert f"wrote {env}" in err


def test_render_without_out_uses_a_temp_dir_it_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", "--set", "app.name=shop")
    assert code == 0
    written = [line.removeprefix("wrote ") for line in err.splitlines() if line.startswith("wrote ")]
    assert written and all(Path(p).exists() for p in written)
    assert "deploykit-shop-" in written[0]


def test_render_print_masks_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", "--set", "app.name=shop", "--set", 'app.secrets.TOKEN="tok-123"', "--print")
    assert code == 0
    assert "tok-123" not in out
    assert 'TOKEN="********"' in out
    assert "/etc/nginx/sites-available/shop.conf" in out


def test_render_diff_exits_3_until_the_tree_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("render", "--set", "app.name=shop", "--set", 'app.secrets.TOKEN="tok-123"')
    code, out, _ = run(capsys, *base, "--diff", str(tmp_path))
    assert code == 3
    assert "+++ b/etc/nginx/sites-available/shop.conf" in out and "tok-123" not in out
    assert run(capsys, *base, "--out", str(tmp_path))[0] == 0
    code, out, err = run(capsys, *base, "--diff", str(tmp_path))
    assert (code, out) == (0, "")
    assert "no differences" in err
    code, out, _ = run(capsys, "render", "--set", "app.name=shop", "--set", 'app.secrets.TOKEN="tok-456"',
                       "--diff", str(tmp_path))  # fmt: skip
    assert code == 3
    assert "a secret value differs" in out and "tok-456" not in out and "tok-123" not in out


def test_render_out_refuses_to_overwrite_changed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "render", "--set", "app.name=shop", "--out", str(tmp_path))[0] == 0
    site = tmp_path / "etc/nginx/sites-available/shop.conf"
    site.write_text("# hand edit\n")
    code, _, err = run(capsys, "render", "--set", "app.name=shop", "--set", "nginx.listen=81", "--out", str(tmp_path))
    assert code == 1 and "would overwrite" in err
    assert site.read_text() == "# hand edit\n"


def test_check_exit_codes_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--set", "app.name=shop", "--format", "json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, err = run(capsys, "check", "--set", "app.name=shop", "--set", 'systemd.hardening="off"')
    assert code == 3
    assert "systemd-analyze security │ FAIL" in out and "1 finding (exit 3)" in out
    assert "error: 1 finding(s) in the rendered stack" in err
    report = tmp_path / "junit.xml"
    code, _, _ = run(capsys, "check", "--set", "app.name=shop", "--format", "junit", "--output", str(report))
    assert code == 0 and report.read_text().startswith('<?xml version="1.0"')


def test_invalid_settings_give_one_clear_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "deploykit.toml"
    project.write_text('[app]\nname = "shop"\n[nginx]\nserver_names = ["shop.example; return 200"]\n')
    code, out, err = run(capsys, "check", "-c", str(project))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == "error: 1 invalid setting (from " + str(project) + ")"
    assert lines[1].startswith(
        f"  • {project}: nginx.server_names[0] = 'shop.example; return 200': must be a host name"
    )
    assert lines[2].startswith("hint: ")
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "check", "--set", "nginx.listen=1")
    assert code == 1
    assert "Traceback" in err and "ValidationError" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--no-such-flag")
    assert code == 2 and "No such option" in err
    code, _, err = run(capsys, "check", "--set", "app.name=shop", "--format", "xml")
    assert code == 2 and "--format" in err
    code, _, err = run(capsys, "check", "--set", "no-equals-sign")
    assert code == 2 and "expected section.field=value" in err


def test_the_installed_command_runs(tmp_path: Path) -> None:
    env = {**os.environ, "DEPLOYKIT_APP__NAME": "shop"}
    proc = subprocess.run([sys.executable, "-m", "deploykit", "check", "--format", "json"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
