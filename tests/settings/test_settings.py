from __future__ import annotations

from pathlib import Path

import pytest

from deploykit.errors import ProfileNotFound, SettingsError, UsageError
from deploykit.settings.load import load, override_source, shipped_profiles
from tests.conftest import settings_for


def test_shipped_profiles_cover_the_promised_kinds() -> None:
    assert {"fastapi", "django", "flask", "websocket", "tls"} <= set(shipped_profiles())


@pytest.mark.parametrize("profile", shipped_profiles())
def test_every_profile_validates(profile: str) -> None:
    settings = settings_for(profile)
    assert settings.app.name == "demo"
    assert "{app}" not in settings.model_dump_json()


def test_defaults_expand_the_app_name_everywhere() -> None:
    settings = settings_for(None)
    assert settings.paths.socket == "/run/demo.sock"
    assert settings.paths.env_file == "/etc/default/demo"
    assert settings.app.venv == "/srv/demo/.venv"
    assert settings.nginx.access_log == "/var/log/nginx/demo.access.log"


def test_app_placeholder_is_not_expanded_inside_env_values() -> None:
    settings = settings_for(None, 'app.env.TEMPLATE="{app}-literal"')
    assert settings.app.env["TEMPLATE"] == "{app}-literal"


def test_sources_apply_in_order(tmp_path: Path) -> None:
    project = tmp_path / "deploykit.toml"
    project.write_text(
        'profile = "websocket"\n[server]\nworkers = 3\n[nginx]\nlisten = 8080\nclient_max_body_size = "1m"\n'
    )
    loaded = load(
        project=project,
        environ={"DEPLOYKIT_NGINX__LISTEN": "8081", "DEPLOYKIT_APP__NAME": "envname", "UNRELATED": "x"},
        overrides=["nginx.listen=8082"],
    )
    s = loaded.settings
    assert s.server.ws_max_size == 1048576  # from the profile
    assert s.server.workers == 3  # project file beats the profile's 2
    assert s.nginx.client_max_body_size == "1m"
    assert s.app.name == "envname"  # environment
    assert s.nginx.listen == 8082  # --set beats the environment
    assert loaded.sources == (
        "profiles/websocket.toml",
        str(project),
        "environment DEPLOYKIT_APP__NAME",
        "environment DEPLOYKIT_NGINX__LISTEN",
        "--set nginx.listen",
    )


def test_env_json_values_give_lists() -> None:
    s = settings_for(None, environ={"DEPLOYKIT_NGINX__SERVER_NAMES": '["a.example", "b.example"]'})
    assert s.nginx.server_names == ("a.example", "b.example")


def test_set_values_are_read_as_toml_then_as_strings() -> None:
    assert override_source("server.workers=4").data == {"server": {"workers": 4}}
    assert override_source("app.module=pkg.main:app").data == {"app": {"module": "pkg.main:app"}}
    assert override_source('nginx.server_names=["x.example"]').data == {"nginx": {"server_names": ["x.example"]}}


def test_set_without_equals_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        override_source("nginx.listen")


def test_error_names_file_field_and_value(tmp_path: Path) -> None:
    project = tmp_path / "deploykit.toml"
    project.write_text('[app]\nname = "demo"\n[nginx]\nlisten = "eighty"\n')
    with pytest.raises(SettingsError) as info:
        load(project=project, environ={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{project}: nginx.listen = 'eighty': ")
    assert "valid integer" in problem


def test_error_names_the_environment_variable() -> None:
    with pytest.raises(SettingsError) as info:
        settings_for(None, environ={"DEPLOYKIT_SERVER__WORKERS": "many"})
    assert info.value.problems[0].startswith("environment DEPLOYKIT_SERVER__WORKERS: server.workers = 'many'")


def test_error_names_the_override() -> None:
    with pytest.raises(SettingsError) as info:
        settings_for(None, "systemd.hardening=paranoid")
    assert info.value.problems[0].startswith("--set systemd.hardening: systemd.hardening = 'paranoid'")


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    project = tmp_path / "deploykit.toml"
    project.write_text('[app]\nname = "demo"\n[nginx]\ngzipp = true\n[nginx.tls]\ncertificat = "/x"\n')
    with pytest.raises(SettingsError) as info:
        load(project=project, environ={})
    problems = "\n".join(info.value.problems)
    assert f"{project}: nginx.gzipp = True: unknown setting (did you mean 'gzip'?)" in problems
    assert "nginx.tls.certificat = '/x': unknown setting (did you mean 'certificate'?)" in problems


def test_missing_name_says_no_source_sets_it() -> None:
    with pytest.raises(SettingsError) as info:
        load(environ={})
    assert info.value.problems == ("app: required, but no source sets it (set app.name)",)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    project = tmp_path / "deploykit.toml"
    project.write_text("[app\nname=")
    with pytest.raises(SettingsError, match=r"deploykit.toml: not valid TOML"):
        load(project=project, environ={})


def test_explicit_missing_project_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="file not found"):
        load(project=tmp_path / "nope.toml", environ={})


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileNotFound) as info:
        settings_for("rails")
    assert info.value.hint is not None and "fastapi" in info.value.hint


def test_local_profile_beside_the_project_wins(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "fastapi.toml").write_text("[server]\nworkers = 7\n")
    project = tmp_path / "deploykit.toml"
    project.write_text('profile = "fastapi"\n[app]\nname = "demo"\n')
    assert load(project=project, environ={}).settings.server.workers == 7


def test_models_are_frozen() -> None:
    settings = settings_for(None)
    with pytest.raises(ValueError):
        settings.app.name = "other"  # type: ignore[misc]


def test_stop_timeout_must_exceed_graceful_timeout() -> None:
    with pytest.raises(SettingsError, match="must be greater than the graceful timeout"):
        settings_for(None, "systemd.timeout_stop_sec=30", "server.timeout_graceful_shutdown=30")
    assert settings_for(None, "server.timeout_graceful_shutdown=20").timeout_stop_sec == 30
    assert settings_for("django").timeout_stop_sec == 40  # gunicorn's graceful_timeout 30 + 10


def test_tls_key_without_certificate_is_rejected() -> None:
    with pytest.raises(SettingsError, match="ssl_keyfile and ssl_certfile must be set together"):
        settings_for(None, "server.ssl_keyfile=/etc/key.pem")


def test_duplicate_locations_are_rejected() -> None:
    with pytest.raises(SettingsError, match="declared twice"):
        settings_for(None, 'nginx.static=[{url="/ws/", path="/srv/x/"}]', 'nginx.websockets=[{url="/ws/"}]')


def test_secret_and_env_cannot_share_a_name() -> None:
    with pytest.raises(SettingsError, match="both in app.env and app.secrets"):
        settings_for(None, 'app.env.KEY="a"', 'app.secrets.KEY="b"')


def test_secrets_are_hidden_in_reprs() -> None:
    settings = settings_for(None, 'app.secrets.API_KEY="hunter2"')
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()


def test_env_numbers_and_booleans_become_their_text() -> None:
    settings = settings_for(None, "app.env.PORT=8000", "app.env.DEBUG=true", "app.env.RATIO=0.5")
    assert dict(settings.app.env) == {"PORT": "8000", "DEBUG": "true", "RATIO": "0.5"}


def _problems(*overrides: str, profile: str | None = None) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as info:
        settings_for(profile, *overrides)
    return info.value.problems


def test_two_paths_naming_one_file_are_refused() -> None:
    (problem,) = _problems('paths.env_file="/etc/nginx/sites-available/demo.conf"', profile="fastapi")
    assert problem == (
        "--set paths.env_file: paths.env_file: paths.nginx_site and paths.env_file are both "
        "/etc/nginx/sites-available/demo.conf; each needs its own path"
    )
    assert _problems('paths.socket="/etc/default//demo"')[0].endswith("each needs its own path")


def test_listen_and_listen_tls_on_one_port_are_refused() -> None:
    (problem,) = _problems("nginx.listen=443", profile="tls")
    assert problem.startswith("--set nginx.listen: nginx.listen: listen and listen_tls are both 443")


def test_a_cross_field_error_blames_the_source_that_set_the_value(tmp_path: Path) -> None:
    """The profile set [nginx] first; the --set that broke the rule is the one to name."""
    assert _problems("nginx.listen=443", profile="fastapi") == (
        "--set nginx.listen: nginx.listen: listen is 443 but no tls is configured",
    )
    (stop,) = _problems("systemd.timeout_stop_sec=20", profile="websocket")
    assert stop.startswith("--set systemd.timeout_stop_sec: systemd.timeout_stop_sec: ")
    project = tmp_path / "deploykit.toml"
    project.write_text('[app]\nname = "demo"\n[systemd]\ntimeout_stop_sec = 40\n')
    with pytest.raises(SettingsError) as info:
        load(project=project, environ={}, overrides=["server.timeout_graceful_shutdown=100"])
    assert info.value.problems[0].startswith(
        "--set server.timeout_graceful_shutdown: server.timeout_graceful_shutdown: "
    )
    with pytest.raises(SettingsError) as info:
        load(project=project, environ={}, overrides=["systemd.timeout_stop_sec=20"])
    assert info.value.problems[0].startswith("--set systemd.timeout_stop_sec: ")
    (pair,) = _problems('server.ssl_keyfile="/etc/key.pem"', profile="fastapi")
    assert pair.startswith("--set server.ssl_keyfile: server.ssl_keyfile: ")


def test_a_server_value_that_cannot_apply_blames_its_source_not_the_defaults() -> None:
    """Both failed before: the refusal was blamed on "defaults: (top level)"."""
    (port,) = _problems("server.port=9000", profile="fastapi")
    assert port.startswith("--set server.port: server.port: a deployed app listens only on paths.socket")
    # the fastapi profile sets server.workers; switching it to Gunicorn names the switch and the way out
    (mode,) = _problems('app.run_mode="gunicorn"', profile="fastapi")
    assert mode.startswith("--set app.run_mode: app.run_mode: server.workers: in the gunicorn run mode"), mode
    assert "set server.workers back to its default (1)" in mode
    assert settings_for("fastapi", 'app.run_mode="gunicorn"', "server.workers=1").app.run_mode == "gunicorn"


def test_a_bad_app_name_is_one_error_not_one_per_path() -> None:
    assert _problems('app.name="My App"', profile="django") == (
        "--set app.name: app.name = 'My App': must be 2-32 lowercase letters, digits or '-', starting with a letter",
    )
    assert _problems("app.name=5", profile="django") == (
        "--set app.name: app.name = 5: Input should be a valid string",
    )
    with pytest.raises(SettingsError) as info:
        load(profile="django", environ={})
    assert info.value.problems == ("app.name: required, but no source sets it",)


@pytest.mark.parametrize(
    "assignment",
    ["nginx.server_names=shop.example", "nginx.listen=eighty", "nginx.ipv6=yes", "server.workers=4x"],
)
def test_set_values_that_are_not_toml_are_refused_where_the_field_takes_no_text(assignment: str) -> None:
    dotted = assignment.partition("=")[0]
    with pytest.raises(UsageError) as info:
        override_source(assignment)
    assert str(info.value) == f"--set {assignment}: not a valid TOML value, and {dotted} does not take text"
    assert info.value.hint is not None and f"--set {dotted}='\"...\"'" in info.value.hint


@pytest.mark.parametrize(
    ("assignment", "value"),
    [
        ("app.name=shop", "shop"),  # a string field: the README's bare strings keep working
        ("app.env.GREETING=second release", "second release"),  # app.env values are text
        ("systemd.hardening=off", "off"),  # a string Literal
        ("nginx.access_log=off", "off"),  # Literal["off"] | path
        ("app.user=deploy", "deploy"),  # str | None
        ("nginx.bogus=x", "x"),  # no such field: validation names it, with a suggestion
    ],
)
def test_bare_words_stay_strings_where_the_field_takes_text(assignment: str, value: str) -> None:
    dotted, _, _ = assignment.partition("=")
    data = override_source(assignment).data
    for part in dotted.split("."):
        data = data[part]
    assert data == value


def test_real_ip_header_and_recursive_need_real_ip_from() -> None:
    (problem,) = _problems("nginx.real_ip_recursive=true")
    assert "act only with real_ip_from" in problem and problem.startswith("--set nginx.real_ip_recursive:")
    with pytest.raises(SettingsError, match="must be an IP address, a CIDR network or 'unix:'"):
        settings_for(None, 'nginx.real_ip_from=["10.0.0.0/33"]')
    with pytest.raises(SettingsError, match="request header name"):
        settings_for(None, 'nginx.real_ip_from=["10.0.0.0/8"]', 'nginx.real_ip_header="X-Real-IP; deny all"')
    ok = settings_for(None, 'nginx.real_ip_from=["10.0.0.0/8", "unix:"]', 'nginx.real_ip_header="X-Real-IP"')
    assert ok.nginx.real_ip_from == ("10.0.0.0/8", "unix:")


def test_static_url_and_path_always_end_in_a_slash() -> None:
    s = settings_for(None, 'nginx.static=[{url = "/static", path = "/srv/demo/static"}]')
    assert (s.nginx.static[0].url, s.nginx.static[0].path) == ("/static/", "/srv/demo/static/")
    with pytest.raises(SettingsError, match="declared twice"):
        settings_for(None, 'nginx.static=[{url="/a", path="/srv/a/"}, {url="/a/", path="/srv/b/"}]')


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        ("[5]", "must be a command line (a string) or an argv (a list of strings), not int"),
        ('[["manage.py", 5]]', "an argv holds strings only, not 5"),
        ('["migrate\\nrm -rf /"]', "contains a newline"),
        ('[""]', "must not be empty"),
        ("[[]]", "must not be an empty list"),
        ('"migrate"', "Input should be a valid tuple"),
    ],
)
def test_a_hook_that_is_not_a_string_or_a_list_of_strings_is_refused_by_name(value: str, wanted: str) -> None:
    problems = _problems("deploy.code_releases=true", f"deploy.hooks.before_switch={value}")
    assert any(p.startswith("--set deploy.hooks.before_switch") and wanted in p for p in problems), problems


def test_hooks_without_code_releases_and_a_zero_timeout_are_refused() -> None:
    (problem,) = _problems('deploy.hooks.after_switch=["true"]')
    assert "hooks run around a code release switch: set deploy.code_releases = true" in problem
    assert problem.startswith("--set deploy.hooks")
    (timeout,) = _problems("deploy.hooks.timeout=0")
    assert timeout.startswith("--set deploy.hooks.timeout"), timeout


def test_the_django_profile_releases_code_and_migrates_before_the_switch() -> None:
    settings = settings_for("django")
    assert settings.deploy.code_releases
    assert settings.deploy.hooks.before_switch == (("python", "-m", "django", "migrate", "--noinput"),)
