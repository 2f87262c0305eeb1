"""One clear `error:` line naming the file or value — never "this is a bug", never a traceback
(unless --debug, or --log-level debug for serve) — for mistakes an operator makes on a bad day.
Each case printed an "unexpected …: this is a bug" line or a bare Python traceback before."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploykit.errors import DeployKitError
from deploykit.host.base import CommandResult
from deploykit.host.fake import FakeHost
from deploykit.operate.status import gather_status
from tests.conftest import settings_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "deploykit.toml"
NOT_UTF8 = b'[app]\nname = "demo"\nmodule = "app:app"\n# caf\xe9 in latin-1\n'


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Path], list[str]]  # the deploykit arguments, given a prepared tmp dir
    expect: Callable[[Path], str]  # text the error line must contain (a file, a flag, a module)


def _bad_toml(tmp: Path) -> list[str]:
    (tmp / "deploykit.toml").write_bytes(NOT_UTF8)
    return ["render", "-c", str(tmp / "deploykit.toml"), "--print"]


def _bad_profile(tmp: Path) -> list[str]:
    (tmp / "mine.toml").write_bytes(NOT_UTF8)
    return ["render", "-c", str(EXAMPLE), "--profile", str(tmp / "mine.toml"), "--print"]


def _unwritable_output(tmp: Path) -> list[str]:
    (tmp / "file").write_text("")
    return ["check", "-c", str(EXAMPLE), "--format", "json", "--output", str(tmp / "file" / "report.json")]


def _lock_is_a_directory(tmp: Path) -> list[str]:
    (tmp / "root/var/lib/deploykit/demo/lock").mkdir(parents=True)
    return ["apply", "-c", str(EXAMPLE), "--root", str(tmp / "root"), "--yes"]


TOOLKIT = [
    Case("non-UTF-8 deploykit.toml", _bad_toml, lambda tmp: f"{tmp / 'deploykit.toml'}: not UTF-8"),
    Case("non-UTF-8 profile", _bad_profile, lambda tmp: f"{tmp / 'mine.toml'}: not UTF-8"),
    Case("check --output unwritable", _unwritable_output, lambda tmp: f"--output {tmp / 'file' / 'report.json'}"),
    Case("state_dir/lock is a directory", _lock_is_a_directory, lambda tmp: "/var/lib/deploykit/demo/lock"),
]


def deploykit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYKIT_")}
    env["COLUMNS"] = "400"  # one error line stays one line on screen too
    return subprocess.run(
        [sys.executable, "-m", "deploykit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], expect: str, *, debug: bool = False) -> None:
    assert result.returncode != 0, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert expect in errors[0], (expect, result.stderr)
    assert "this is a bug" not in result.stderr and "unexpected" not in errors[0], result.stderr
    assert ("Traceback" in result.stderr) == debug, result.stderr


@pytest.mark.parametrize("case", TOOLKIT, ids=[c.name for c in TOOLKIT])
def test_toolkit_mistakes_give_one_clear_line(case: Case, tmp_path: Path) -> None:
    result = deploykit(*case.argv(tmp_path), cwd=tmp_path)
    assert_one_clear_line(result, case.expect(tmp_path))
    assert result.returncode == 1, result


@pytest.mark.parametrize("case", TOOLKIT[:2], ids=[c.name for c in TOOLKIT[:2]])
def test_debug_adds_the_traceback(case: Case, tmp_path: Path) -> None:
    result = deploykit("--debug", *case.argv(tmp_path), cwd=tmp_path)
    assert_one_clear_line(result, case.expect(tmp_path), debug=True)


# -- serve --------------------------------------------------------------------------------------

APPS = {
    "raises.py": ("import os\n\nraise RuntimeError('database url missing')\n", "RuntimeError: database url missing", 3),
    "syntax.py": ("x = 1\ndef broken(:\n    pass\n", "SyntaxError", 2),
    "imports.py": ("import not_a_module_anywhere_xyz\n", "ModuleNotFoundError", 1),
}


@pytest.mark.parametrize("filename", list(APPS))
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "log-level-debug"])
def test_serve_an_app_that_fails_at_import_gives_one_line_with_the_place(
    filename: str, debug: bool, tmp_path: Path
) -> None:
    source, error, line = APPS[filename]
    (tmp_path / filename).write_text(source)
    module = filename.removesuffix(".py")
    flags = ["--log-level", "debug"] if debug else []
    result = deploykit("serve", f"{module}:app", "--app-dir", str(tmp_path), "--port", "0", *flags, cwd=tmp_path)
    assert_one_clear_line(result, f"'{module}'", debug=debug)
    assert error in result.stderr and f"{tmp_path / filename}:{line}" in result.stderr, result.stderr


def _tls_cases(tmp: Path, cert: Path, key: Path) -> list[tuple[list[str], str]]:
    junk = tmp / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = tmp / "missing.pem"
    return [
        (["--ssl-certfile", str(missing), "--ssl-keyfile", str(key)], f"--ssl-certfile {missing}"),
        (["--ssl-certfile", str(cert), "--ssl-keyfile", str(missing)], f"--ssl-keyfile {missing}"),
        (["--ssl-certfile", str(junk), "--ssl-keyfile", str(key)], f"--ssl-certfile {junk}"),
        (["--ssl-certfile", str(cert), "--ssl-keyfile", str(junk)], f"--ssl-keyfile {junk}"),
        (["--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--ssl-ca-certs", str(junk)], str(junk)),
    ]


def test_serve_with_a_missing_or_non_pem_tls_file_gives_one_line(
    tmp_path: Path, self_signed: Callable[..., tuple[Path, Path]]
) -> None:
    cert, key = self_signed()
    (tmp_path / "ok.py").write_text("async def app(scope, receive, send):\n    pass\n")
    for flags, expect in _tls_cases(tmp_path, cert, key):
        result = deploykit("serve", "ok:app", "--app-dir", str(tmp_path), "--port", "0", *flags, cwd=tmp_path)
        assert_one_clear_line(result, expect)


# -- status without systemd ---------------------------------------------------------------------


def test_status_on_a_machine_without_systemd_says_so() -> None:
    host = FakeHost()
    host.answers.append((("test", "-d", "/run/systemd/system"), CommandResult(1)))
    with pytest.raises(DeployKitError, match="does not run systemd"):
        gather_status(host, settings_for(None))
    assert not any(cmd[:1] == ["systemctl"] for cmd in host.commands), host.commands


@pytest.mark.skipif(Path("/run/systemd/system").exists(), reason="this machine runs systemd")
def test_status_cli_without_systemd_gives_one_line(tmp_path: Path) -> None:
    result = deploykit("status", "-c", str(EXAMPLE), cwd=tmp_path)
    assert_one_clear_line(result, "does not run systemd")
    assert "FileNotFoundError" not in result.stderr + result.stdout


def test_serve_with_workers_stops_at_an_app_that_fails_at_import_without_a_traceback(tmp_path: Path) -> None:
    """Under the supervisor (--workers, or systemd's NOTIFY_SOCKET) each worker imports the app:
    a failing import is a failed start (exit 3), said in one line per worker, not a crash loop."""
    source, error, line = APPS["raises.py"]
    (tmp_path / "raises.py").write_text(source)
    result = deploykit("serve", "raises:app", "--app-dir", str(tmp_path), "--port", "0", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 3, result
    assert "Traceback" not in result.stderr, result.stderr
    failed = [x for x in result.stderr.splitlines() if "worker failed to start" in x]
    assert failed and all(error in x and f"{tmp_path / 'raises.py'}:{line}" in x for x in failed), result.stderr
