"""Template injection must be impossible: every value that reaches a rendered
file is validated for its target syntax. These tests try to break out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploykit.errors import SettingsError
from deploykit.render import Kind, render
from deploykit.render.systemd import exec_line, exec_split
from deploykit.settings.load import Source, validate
from tests.conftest import require, settings_for

NGINX_BREAKERS = [";", "{", "}", '"', "'", " ", "\t", "\n", "#", "$", "\\"]

# (override template with {x} for the payload, the field named in the error)
NGINX_FIELDS = [
    ('nginx.server_names=["example.com{x}evil"]', "nginx.server_names[0]"),
    ('nginx.static=[{{url="/static/", path="/srv/s{x}tatic/"}}]', "nginx.static[0].path"),
    ('nginx.static=[{{url="/st{x}atic/", path="/srv/static/"}}]', "nginx.static[0].url"),
    ('nginx.websockets=[{{url="/w{x}s/"}}]', "nginx.websockets[0].url"),
    ('nginx.client_max_body_size="16m{x}"', "nginx.client_max_body_size"),
    ('nginx.access_log="/var/log/a{x}.log"', "nginx.access_log"),
    ('nginx.error_log="/var/log/e{x}.log"', "nginx.error_log"),
    ('nginx.acme_root="/var/www/a{x}"', "nginx.acme_root"),
    ('paths.socket="/run/d{x}emo.sock"', "paths.socket"),
    ('nginx.rate_limit={{rate="10r/s{x}"}}', "nginx.rate_limit.rate"),
    ('nginx.tls={{certificate="/etc/c{x}.pem", certificate_key="/etc/k.pem"}}', "nginx.tls.certificate"),
]


def _toml_escape(payload: str) -> str:
    return payload.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


@pytest.mark.parametrize(("template", "field"), NGINX_FIELDS, ids=[f for _, f in NGINX_FIELDS])
@pytest.mark.parametrize("payload", NGINX_BREAKERS, ids=[repr(c) for c in NGINX_BREAKERS])
def test_nginx_values_cannot_break_out(template: str, field: str, payload: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_for(None, template.format(x=_toml_escape(payload)))
    assert any(field in problem for problem in info.value.problems), info.value.problems


def test_a_realistic_nginx_injection_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(SettingsError) as info:
        settings_for(None, 'nginx.static=[{url="/static/", path="/srv/x; } server { listen 81; root /; #"}]')
    (problem,) = info.value.problems
    assert "nginx.static[0].path" in problem
    assert "would break nginx or systemd syntax" in problem


SYSTEMD_FIELDS = [
    ('app.working_dir="/srv/demo\\nExecStartPre=/bin/sh"', "app.working_dir"),
    ('app.venv="/srv/demo/.venv\\nUser=root"', "app.venv"),
    ('app.module="app:app\\nExecStartPre=/bin/rm"', "app.module"),
    ('app.module="app:app --uds /tmp/x"', "app.module"),
    ('app.user="root\\nGroup=root"', "app.user"),
    ('app.user="r%oot"', "app.user"),
    ('systemd.read_write_paths=["/srv\\nProtectSystem=no"]', "systemd.read_write_paths[0]"),
    ('systemd.memory_max="1G\\nMemoryMax=infinity"', "systemd.memory_max"),
    ('paths.env_file="/etc/default/x\\nEnvironmentFile=/root/.env"', "paths.env_file"),
    ('paths.env_file="/etc/%h/x"', "paths.env_file"),
    ('server.headers={"X-A"="ok\\r\\nSet-Cookie: evil"}', "server.headers.X-A"),
    ('server.forwarded_allow_ips=["127.0.0.1 --reload"]', "server.forwarded_allow_ips[0]"),
]


@pytest.mark.parametrize(("override", "field"), SYSTEMD_FIELDS, ids=[f for _, f in SYSTEMD_FIELDS])
def test_systemd_and_command_line_values_cannot_break_out(override: str, field: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_for(None, override)
    assert any(field in problem for problem in info.value.problems), info.value.problems


@pytest.mark.parametrize("payload", ["a\nB=c", "a\rb", "nul\x00", "esc\x1b[31m"])
@pytest.mark.parametrize("where", ["env", "secrets"])
def test_env_values_with_control_characters_are_rejected(payload: str, where: str) -> None:
    with pytest.raises(SettingsError) as info:
        validate([Source("test", {"app": {"name": "demo", where: {"KEY": payload}}})])
    assert "control characters" in "\n".join(info.value.problems)


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A B", "A=B", "A\nB"])
def test_env_keys_must_be_variable_names(key: str) -> None:
    with pytest.raises(SettingsError):
        settings_for(None, f'app.env={{"{_toml_escape(key)}"="x"}}')


TRICKY = {
    "QUOTE": 'say "hi"',
    "SINGLE": "it's",
    "DOLLAR": "$HOME and ${PATH}",
    "BACKTICK": "`id`",
    "BACKSLASH": "C:\\path\\n",
    "HASH": "# not a comment",
    "SPACES": "  padded  ",
    "SEMI": "a; rm -rf /",
    "EQUALS": "a=b=c",
    "UNICODE": "héllo ✓",
    "EMPTY": "",
}


def test_env_file_values_survive_quoting_exactly(tmp_path: Path) -> None:
    """The rendered file, read by a real shell, gives back every value unchanged."""
    bash = require("bash")
    overrides = [f'app.env.{k}="{_toml_escape(v)}"' for k, v in TRICKY.items()]
    settings = settings_for(None, *overrides)
    env_file = render(settings).by_kind(Kind.ENV_FILE)
    assert env_file is not None and env_file.mode == 0o600
    path = tmp_path / "env"
    path.write_text(env_file.content)
    for key, value in TRICKY.items():
        got = subprocess.run(
            [bash, "-c", f'set -a; . "$1"; printf %s "${key}"', "bash", str(path)],
            capture_output=True,
            check=True,
            env={},
        ).stdout.decode()
        assert got == value, key


def test_secrets_only_reach_the_env_file() -> None:
    settings = settings_for("django", 'app.secrets.SECRET_KEY="s3cr3t-value"')
    bundle = render(settings)
    holders = [f.path for f in bundle if "s3cr3t-value" in f.content]
    assert holders == ["/etc/default/demo"]
    env_file = bundle.by_kind(Kind.ENV_FILE)
    assert env_file is not None and env_file.secret and env_file.mode == 0o600 and env_file.owner == "root"


def test_gunicorn_values_are_python_literals() -> None:
    settings = settings_for("django", 'app.module="config.asgi:application"')
    conf = render(settings).by_kind(Kind.GUNICORN_CONF)
    assert conf is not None
    namespace: dict[str, object] = {}
    exec(compile(conf.content, "conf.py", "exec"), namespace)  # noqa: S102 - our own rendered file
    assert namespace["wsgi_app"] == "config.asgi:application"
    assert namespace["bind"] == ["unix:/run/demo.sock"]


HOSTILE_WORDS = ["a b", "%h", "100%", "$HOME", "${X}", '"q"', "it's", "back\\slash", ";", "", "\\;", "x:1% $y"]


@pytest.mark.parametrize("word", HOSTILE_WORDS)
def test_exec_start_words_reach_the_process_verbatim(word: str) -> None:
    """systemd reads % specifiers, $ variables, quotes and backslashes in ExecStart=;
    every word is written so it comes back exactly (exec_split reads it as systemd does)."""
    argv = ["/srv/demo/.venv/bin/deploykit", "serve", "app:app", "--header", f"X-A:{word}", word]
    assert exec_split(exec_line(argv)) == argv


def test_a_header_with_specifiers_and_variables_is_escaped_in_the_unit() -> None:
    service = render(settings_for(None, 'server.headers={"X-A"="100% $HOME"}')).by_kind(Kind.SERVICE_UNIT)
    assert service is not None
    (line,) = [line for line in service.content.splitlines() if line.startswith("ExecStart=")]
    assert '--header "X-A:100%% $$HOME"' in line
