from __future__ import annotations

import re

import gunicorn.config
import pytest

from deploykit.check.consistency import unit_values
from deploykit.render import Kind, render
from deploykit.render.gunicorn import gunicorn_values
from deploykit.render.nginx import render_site
from deploykit.render.systemd import exec_start
from tests.conftest import PROFILES, settings_for


def test_gunicorn_names_are_real_gunicorn_settings() -> None:
    known = {s.name for s in gunicorn.config.KNOWN_SETTINGS}
    for overrides in [(), ("gunicorn.control_socket=true",)]:
        values = gunicorn_values(settings_for("django", *overrides))
        assert set(values) <= known, set(values) - known


def test_serve_mode_renders_no_gunicorn_conf() -> None:
    kinds = [f.kind for f in render(settings_for("fastapi"))]
    assert kinds == [Kind.NGINX_SITE, Kind.SERVICE_UNIT, Kind.SOCKET_UNIT, Kind.ENV_FILE]


def test_gunicorn_mode_runs_gunicorn_with_the_conf() -> None:
    settings = settings_for("django")
    # the django profile releases code: the unit runs the live release through `current`
    assert exec_start(settings) == [
        "/srv/demo/current/venv/bin/gunicorn",
        "--config",
        "/etc/deploykit/demo/gunicorn.conf.py",
    ]


def test_socket_activation_passes_fd_3_else_binds_the_path() -> None:
    assert exec_start(settings_for(None))[3:5] == ["--fd", "3"]
    argv = exec_start(settings_for(None, "systemd.socket_activation=false"))
    assert argv[3:5] == ["--uds", "/run/demo.sock"]


@pytest.mark.parametrize("profile", PROFILES)
def test_service_is_notify_with_graceful_stop(profile: str) -> None:
    settings = settings_for(profile)
    service = render(settings).by_kind(Kind.SERVICE_UNIT)
    assert service is not None
    values = unit_values(service.content)
    assert values["Type"] == ["notify"]
    assert values["KillMode"] == ["mixed"]
    assert values["EnvironmentFile"] == ["/etc/default/demo"]
    assert int(values["TimeoutStopSec"][0]) > settings.graceful_timeout
    assert values["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    if settings.app.user is None:
        assert values["DynamicUser"] == ["yes"]
    else:
        assert values["User"] == [settings.app.user] and "DynamicUser" not in values
    assert values["ProtectSystem"] == ["strict"]


def test_hardening_levels() -> None:
    def keys(level: str) -> set[str]:
        service = render(settings_for(None, f'systemd.hardening="{level}"')).by_kind(Kind.SERVICE_UNIT)
        assert service is not None
        return set(unit_values(service.content))

    assert {"SystemCallFilter", "CapabilityBoundingSet", "ProtectProc"} <= keys("strict")
    assert "SystemCallFilter" not in keys("standard") and "NoNewPrivileges" in keys("standard")
    assert "NoNewPrivileges" not in keys("off")


def test_memory_deny_write_execute_is_opt_in() -> None:
    def has_mdwe(*overrides: str) -> bool:
        service = render(settings_for(None, *overrides)).by_kind(Kind.SERVICE_UNIT)
        return service is not None and "MemoryDenyWriteExecute=yes" in service.content

    assert not has_mdwe()
    assert has_mdwe("systemd.memory_deny_write_execute=true")


def test_nginx_site_has_the_proxy_essentials() -> None:
    site = render(settings_for("websocket")).by_kind(Kind.NGINX_SITE)
    assert site is not None
    text = site.content
    assert "server unix:/run/demo.sock fail_timeout=0;" in text
    assert re.search(r"map \$http_upgrade \$deploykit_demo_connection_upgrade", text)
    for header in ("Host $host", "X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme",
                   "X-Real-IP $remote_addr", "Upgrade $http_upgrade"):  # fmt: skip
        assert text.count(f"proxy_set_header {header};") == text.count("proxy_pass ")
    assert "proxy_read_timeout 3600s;" in text
    assert "keepalive 16;" in text


def test_tls_site_redirects_and_sends_hsts() -> None:
    text = render(settings_for("tls")).by_kind(Kind.NGINX_SITE).content  # type: ignore[union-attr]
    assert "return 301 https://$host$request_uri;" in text
    assert "location ^~ /.well-known/acme-challenge/" in text
    assert 'Strict-Transport-Security "max-age=31536000; includeSubDomains" always' in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "listen 443 ssl http2;" in text
    assert "ssl_stapling" not in text  # no trusted chain configured


def test_http2_directive_follows_the_nginx_version() -> None:
    text = render(settings_for("tls", "nginx.version=[1, 25, 1]")).by_kind(Kind.NGINX_SITE).content  # type: ignore[union-attr]
    assert "listen 443 ssl;" in text and "http2 on;" in text


def test_rate_limit_on_root_joins_the_main_location() -> None:
    text = render(settings_for(None, 'nginx.rate_limit={rate="5r/s", urls=["/"]}')).by_kind(Kind.NGINX_SITE).content  # type: ignore[union-attr]
    assert text.count("location / {") == 1
    assert "limit_req zone=deploykit_demo burst=20 nodelay;" in text


def test_app_names_with_dashes_give_valid_nginx_identifiers() -> None:
    settings = settings_for(None, 'app.name="my-app"')
    text = render(settings).by_kind(Kind.NGINX_SITE).content  # type: ignore[union-attr]
    assert "upstream deploykit_my_app {" in text
    assert "$deploykit_my_app_connection_upgrade" in text


def test_listen_address_binds_one_address_only() -> None:
    def listens(*overrides: str) -> list[str]:
        site = render_site(settings_for(None, *overrides)).content
        return [line.strip() for line in site.splitlines() if line.strip().startswith("listen ")]

    assert listens() == ["listen 80;", "listen [::]:80;"]
    assert listens('nginx.listen_address="127.0.0.1"', "nginx.listen=8080") == ["listen 127.0.0.1:8080;"]
    tls = ('nginx.tls={certificate="/c.pem", certificate_key="/k.pem"}', 'nginx.listen_address="::1"')
    assert listens(*tls) == ["listen [::1]:80;", "listen [::1]:443 ssl http2;"]
