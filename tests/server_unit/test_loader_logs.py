from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deploykit.errors import DeployKitError
from deploykit.render import Kind, render
from deploykit.server.loader import import_app, load_env_file
from deploykit.server.logs import escape
from deploykit.settings.load import Source, validate


def test_env_file_reads_what_deploykit_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"DK_A": 'say "hi" $HOME `id` \\n', "DK_B": "it's # not a comment", "DK_C": ""}
    settings = validate([Source("test", {"app": {"name": "demo", "env": values}})]).settings
    env_file = render(settings).by_kind(Kind.ENV_FILE)
    assert env_file is not None
    path = tmp_path / "env"
    path.write_text(env_file.content)
    for key in values:
        monkeypatch.delenv(key, raising=False)
    assert load_env_file(str(path)) == values
    assert os.environ["DK_A"] == values["DK_A"]
    shell = subprocess.run(["bash", "-c", f'set -a; . {path}; printf %s "$DK_A"'], capture_output=True, env={})
    assert shell.stdout.decode() == values["DK_A"]


def test_env_file_keeps_existing_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DK_KEEP", "mine")
    path = tmp_path / "env"
    path.write_text("export DK_KEEP=theirs\n# comment\n\nDK_NEW='x y'\n")
    load_env_file(str(path))
    assert os.environ["DK_KEEP"] == "mine" and os.environ["DK_NEW"] == "x y"
    monkeypatch.delenv("DK_NEW")


def test_env_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("OK=1\nnot a line\n")
    with pytest.raises(DeployKitError, match=r"env:2: expected KEY=VALUE"):
        load_env_file(str(path))


def test_import_errors_are_clear() -> None:
    with pytest.raises(DeployKitError, match="could not import module 'no_such_mod'"):
        import_app("no_such_mod:app")
    with pytest.raises(DeployKitError, match="has no attribute 'nope'"):
        import_app("json:nope")
    with pytest.raises(DeployKitError, match="must be 'module:attribute'"):
        import_app("json")


def test_factory_is_called() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        return None

    assert import_app(lambda: app, factory=True) is app


@pytest.mark.parametrize(("raw", "shown"), [("/\x1b[31mred", "/\\x1b[31mred"), ('a"b', "a\\x22b"), ("é", "\\xe9")])
def test_access_log_escaping(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_web_concurrency_sets_workers_unless_the_flag_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from deploykit.server.command import flag_options

    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert flag_options([])["workers"] == 3
    assert flag_options(["--workers", "5"])["workers"] == 5
    monkeypatch.setenv("WEB_CONCURRENCY", "")
    assert "workers" not in flag_options([])


def test_forwarded_allow_ips_comes_from_the_environment_unless_the_flag_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from deploykit.server.command import flag_options

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.0.2.1")
    assert flag_options([])["forwarded_allow_ips"] == ["10.0.0.0/8", "192.0.2.1"]  # as under Gunicorn's serve args
    assert flag_options(["--forwarded-allow-ips", "*"])["forwarded_allow_ips"] == ["*"]
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", " ")
    assert "forwarded_allow_ips" not in flag_options([])
