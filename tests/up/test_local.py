"""`deploykit up`, the pure half: the local variant of the settings, the
command lines, the nginx.conf, and the small helpers of the runner."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from deploykit.errors import PortInUse, UpError
from deploykit.render.nginx import render_site
from deploykit.settings.load import load
from deploykit.settings.model import Settings, StaticLocation
from deploykit.up.follow import Follower, last_lines
from deploykit.up.local import Layout, localize, nginx_argv, nginx_conf, server_argv, server_env, static_folder
from deploykit.up.run import claim_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deploykit.toml"
PROJECT = EXAMPLE.parent
RUN = Path("/tmp/run")


def example(*overrides: str) -> Settings:
    return load(project=EXAMPLE, environ={}, overrides=overrides).settings


def exists_only(*folders: Path | str) -> Callable[[Path], bool]:
    wanted = {Path(f) for f in folders}
    return lambda path: Path(path) in wanted


def local_example(*overrides: str, port: int = 8080) -> Settings:
    return localize(
        example(*overrides), project=PROJECT, run_dir=RUN, port=port, exists=exists_only(PROJECT / "app/static")
    )


def test_every_path_moves_under_the_run_directory() -> None:
    local = local_example()
    for name, value in local.paths.model_dump().items():
        assert value.startswith(f"{RUN}/"), name
    assert local.paths.socket == f"{RUN}/demo.sock"
    assert local.server.uds == f"{RUN}/demo.sock"
    assert (local.nginx.access_log, local.nginx.error_log) == (f"{RUN}/nginx-access.log", f"{RUN}/nginx-error.log")


def test_nginx_listens_on_loopback_only_plain_http() -> None:
    local = local_example("nginx.default_server=true", 'nginx.tls={certificate="/c.pem", certificate_key="/k.pem"}')
    assert (local.nginx.listen_address, local.nginx.listen, local.nginx.ipv6) == ("127.0.0.1", 8080, False)
    assert local.nginx.tls is None and local.nginx.default_server is False
    site = render_site(local).content
    assert [line.strip() for line in site.splitlines() if "listen" in line] == ["listen 127.0.0.1:8080;"]
    assert "ssl_certificate" not in site and "return 444" not in site


def test_the_app_runs_from_the_project_folder_with_serve_on_the_socket() -> None:
    # (the websocket profile's server.workers and graceful timeout are [gunicorn]'s in that mode)
    local = local_example('app.run_mode="gunicorn"', "server.workers=1", "server.timeout_graceful_shutdown=30")
    assert local.app.working_dir == str(PROJECT)
    assert local.app.run_mode == "serve" and local.systemd.socket_activation is False
    assert local.server.proxy_headers and local.server.forwarded_allow_ips == ("unix:",)


def test_everything_else_about_the_stack_is_kept() -> None:
    settings, local = example(), local_example()
    assert local.nginx.websockets == settings.nginx.websockets
    assert local.nginx.proxy_buffering == settings.nginx.proxy_buffering
    assert local.nginx.server_names == settings.nginx.server_names
    assert local.server.workers == settings.server.workers == 2
    assert local.app.env == {"DEMO_GREETING": "hello from deploykit"}


def test_the_site_is_the_existing_renderer_output_for_the_local_settings() -> None:
    site = render_site(local_example()).content
    assert f"server unix:{RUN}/demo.sock fail_timeout=0;" in site
    assert f"alias {PROJECT}/app/static/;" in site  # the configured trailing slash is kept
    assert "location /ws/ {" in site


STATIC = StaticLocation(url="/static/", path="/srv/demo/static/")


@pytest.mark.parametrize(
    ("static", "present", "expected"),
    [
        # source wins, relative to the project folder
        (STATIC.model_copy(update={"source": "assets/dist"}), ["/p/assets/dist", "/p/static"], "/p/assets/dist"),
        (STATIC.model_copy(update={"source": "../shared/static"}), ["/shared/static"], "/shared/static"),
        # under app.working_dir: the same place in the project
        (STATIC, ["/p/static", "/srv/demo/static"], "/p/static"),
        # not in the project, but present on this machine as configured
        (STATIC, ["/srv/demo/static"], "/srv/demo/static"),
        (StaticLocation(url="/m/", path="/var/www/media"), ["/var/www/media"], "/var/www/media"),
    ],
    ids=["source", "source-outside", "moved-from-working-dir", "as-configured", "outside-working-dir"],
)
def test_static_folder_rules(static: StaticLocation, present: list[str], expected: str) -> None:
    found = static_folder(static, 0, project=Path("/p"), working_dir="/srv/demo", exists=exists_only(*present))
    assert found == Path(expected)


def test_a_static_folder_found_nowhere_says_which_source_to_set() -> None:
    with pytest.raises(UpError) as caught:
        static_folder(STATIC, 2, project=Path("/p"), working_dir="/srv/demo", exists=exists_only())
    assert "nginx.static[2] (/static/): /srv/demo/static/ is not on this machine" in caught.value.message
    assert caught.value.hint is not None and "nginx.static[2].source" in caught.value.hint


def test_a_missing_source_folder_is_an_error() -> None:
    static = STATIC.model_copy(update={"source": "nope"})
    with pytest.raises(UpError, match="source 'nope' is not a folder: /p/nope"):
        static_folder(static, 0, project=Path("/p"), working_dir="/srv/demo", exists=exists_only("/p/static"))


def test_source_is_validated_by_the_model() -> None:
    with pytest.raises(Exception, match="a path relative to deploykit.toml"):
        StaticLocation(url="/s/", path="/srv/s", source="has space")


def test_a_project_path_nginx_cannot_read_unquoted_is_a_clear_error() -> None:
    odd = Path("/home/me/my project")
    with pytest.raises(UpError, match="the local variant of the settings is invalid: app.working_dir"):
        localize(example(), project=odd, run_dir=RUN, port=8080, exists=exists_only(odd / "app/static"))


def test_a_socket_path_too_long_for_unix_sockets_is_refused() -> None:
    with pytest.raises(UpError, match="longer than a unix socket allows") as caught:
        localize(example(), project=PROJECT, run_dir=Path("/tmp/" + "x" * 100), port=8080)
    assert caught.value.hint == "pass a shorter --dir"


def test_server_argv_is_the_rendered_units_command_with_this_python() -> None:
    argv = server_argv(local_example())
    assert argv[:5] == [sys.executable, "-m", "deploykit", "serve", "app.main:app"]
    assert argv[argv.index("--uds") + 1] == f"{RUN}/demo.sock"
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "unix:"
    assert argv[argv.index("--workers") + 1] == "2"
    assert argv[-2:] == ["--app-dir", str(PROJECT)]


def test_env_and_secrets_go_to_the_child_environment_only() -> None:
    local = local_example('app.secrets.API_KEY="s3cret"')
    env = server_env(local, {"PATH": "/usr/bin"})
    assert env["API_KEY"] == "s3cret" and env["DEMO_GREETING"] == "hello from deploykit" and env["PATH"] == "/usr/bin"
    assert not any("s3cret" in part for part in server_argv(local))
    assert "s3cret" not in render_site(local).content


def test_nginx_conf_keeps_every_file_in_the_run_directory() -> None:
    layout = Layout(RUN, "demo")
    conf = nginx_conf(layout, "/etc/nginx/mime.types")
    assert f"pid {RUN}/nginx.pid;" in conf and f"error_log {RUN}/nginx-error.log warn;" in conf
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f"{kind}_temp_path {RUN}/nginx-temp/{kind};" in conf
    assert f"include {RUN}/nginx-site.conf;" in conf and "include /etc/nginx/mime.types;" in conf
    assert not any(line.strip().startswith("user ") for line in conf.splitlines())
    assert "mime.types" not in nginx_conf(layout, None)
    # as root, the workers stay root (nobody cannot enter a checkout under /root: `make run` failed there)
    users = [line.strip() for line in nginx_conf(layout, None, as_root=True).splitlines() if line.startswith("user")]
    assert users == ["user root;"]
    argv = nginx_argv("/usr/sbin/nginx", layout)
    assert argv == ["/usr/sbin/nginx", "-p", f"{RUN}/", "-c", f"{RUN}/nginx.conf", "-e", f"{RUN}/nginx-error.log",
                    "-g", "daemon off;"]  # fmt: skip


def test_claim_port_refuses_a_taken_port_and_picks_a_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is already in use"):
            claim_port(port)
    assert claim_port(0) > 0


def test_follower_returns_complete_new_lines_per_source(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    follower = Follower.of([("serve", a), ("nginx", b)])
    assert follower.new_lines() == []  # files not there yet
    a.write_bytes(b"one\ntw")
    assert follower.new_lines() == [("serve", "one")]
    with a.open("ab") as fh:
        fh.write(b"o\n")
    b.write_bytes(b"x\r\ny")
    assert follower.new_lines() == [("serve", "two"), ("nginx", "x")]
    assert follower.new_lines(final=True) == [("nginx", "y")]
    assert follower.new_lines(final=True) == []


def test_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"{n}\n" for n in range(30)))
    assert last_lines(log, 3) == ["27", "28", "29"]
    assert last_lines(tmp_path / "missing") == []
