"""The planner, pure, with host facts as fixtures; and `deploykit plan --root`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploykit.cli import main
from deploykit.facts import gather, unit_facts
from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from deploykit.plan import LinkSite, ReloadNginx, Systemctl, WriteFile, plan
from deploykit.render import Bundle, render
from deploykit.settings.model import Settings
from tests.conftest import settings_for


def applied(settings: Settings, bundle: Bundle) -> FakeHost:
    """A host where this exact bundle is installed and running."""
    host = FakeHost()
    for file in bundle:
        host.files[file.path] = FileFacts(file.content.encode(), file.mode, file.owner, file.group)
    host.links[settings.paths.nginx_site_enabled] = settings.paths.nginx_site
    host.enabled.update({"demo.socket": True, "demo.service": False})
    host.active.update({"demo.socket": True, "demo.service": True})
    return host


def steps(settings: Settings, host: FakeHost, bundle: Bundle | None = None) -> list[str]:
    bundle = bundle if bundle is not None else render(settings)
    return [a.describe() for a in plan(bundle, gather(host, bundle, settings), settings).actions]


def test_fresh_host_gets_everything_in_order() -> None:
    settings = settings_for(None)
    result = plan(render(settings), gather(FakeHost(), render(settings), settings), settings)
    writes = [a for a in result.actions if isinstance(a, WriteFile)]
    assert [w.change for w in writes] == ["create"] * 4
    assert result.actions[len(writes) :] == (
        LinkSite("/etc/nginx/sites-enabled/demo.conf", "/etc/nginx/sites-available/demo.conf"),
        Systemctl("daemon-reload"),
        Systemctl("enable --now", "demo.socket"),
        Systemctl("start", "demo.service"),
        ReloadNginx(),
    )
    assert any(line.startswith("+++ b/etc/default/demo") for line in result.diff)


def test_no_change_means_no_actions() -> None:
    settings = settings_for(None)
    bundle = render(settings)
    result = plan(bundle, gather(applied(settings, bundle), bundle, settings), settings)
    assert result.actions == () and result.diff == () and not result.changes


def test_env_change_restarts_the_service_and_masks_secrets() -> None:
    old = settings_for(None, 'app.secrets.TOKEN="old-secret"')
    host = applied(old, render(old))
    new = settings_for(None, 'app.secrets.TOKEN="new-secret"')
    bundle = render(new)
    result = plan(bundle, gather(host, bundle, new), new)
    assert [a.describe() for a in result.actions] == [
        "update /etc/default/demo (0600 root:root)",
        "systemctl restart demo.service",
    ]
    assert not any("secret" in line for line in result.diff if line.startswith(("+", "-")) and "TOKEN" in line)
    assert "+# (a secret value differs)\n" in result.diff  # shown, like render --diff, without the values
    assert not any("old-secret" in line or "new-secret" in line for line in result.diff)


def test_nginx_change_reloads_only_nginx() -> None:
    settings = settings_for(None)
    host = applied(settings, render(settings))
    bigger = settings_for(None, 'nginx.client_max_body_size="64m"')
    assert steps(bigger, host) == [
        "update /etc/nginx/sites-available/demo.conf (0644 root:root)",
        "nginx -t, then systemctl reload nginx",
    ]


def test_gunicorn_conf_change_is_a_reload() -> None:
    settings = settings_for("django")
    host = applied(settings, render(settings))
    assert steps(settings_for("django", "gunicorn.workers=9"), host) == [
        "update /etc/deploykit/demo/gunicorn.conf.py (0644 root:root)",
        "systemctl reload demo.service",
    ]


def test_mode_drift_is_fixed_and_a_stopped_service_started() -> None:
    settings = settings_for(None)
    bundle = render(settings)
    host = applied(settings, bundle)
    env = host.files["/etc/default/demo"]
    host.files["/etc/default/demo"] = FileFacts(env.content, 0o644, "root", "root")
    host.active["demo.service"] = False
    host.enabled["demo.socket"] = False
    assert steps(settings, host, bundle) == [
        "mode /etc/default/demo (0600 root:root)",
        "systemctl enable --now demo.socket",
        "systemctl restart demo.service",
    ]


def test_unit_facts_from_systemctl_answers() -> None:
    assert unit_facts(CommandResult(0, "enabled\n"), CommandResult(0, "active\n")) == unit_facts(
        CommandResult(0, "static\n"), CommandResult(0, "reloading\n")
    )
    facts = unit_facts(CommandResult(1, "disabled\n"), CommandResult(3, "inactive\n"))
    assert (facts.enabled, facts.active) == (False, False)
    unknown = unit_facts(CommandResult(-1), CommandResult(127))
    assert (unknown.enabled, unknown.active) == (None, None)


def test_plan_root_exits_3_then_0_once_the_tree_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--set", "app.name=demo"]
    assert main(["plan", *base, "--root", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "7. systemctl enable --now demo.socket" in out and "+++ b/etc/systemd/system/demo.service" in out
    assert main(["render", *base, "--out", str(tmp_path)]) == 0
    link = tmp_path / "etc/nginx/sites-enabled/demo.conf"
    link.parent.mkdir(parents=True)
    os.symlink("/etc/nginx/sites-available/demo.conf", link)
    capsys.readouterr()
    assert main(["plan", *base, "--root", str(tmp_path)]) == 0
    assert "no changes" in capsys.readouterr().err
    assert main(["plan", *base, "--set", "server.workers=3", "--root", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "systemctl restart demo.service" in out and "--workers 3" in out


def test_a_changed_socket_unit_restarts_the_socket_then_the_service() -> None:
    old = settings_for(None)
    host = applied(old, render(old))
    new = settings_for(None, "systemd.socket_mode=0666")
    assert steps(new, host) == [
        "update /etc/systemd/system/demo.socket (0644 root:root)",
        "systemctl daemon-reload",
        "systemctl restart demo.socket",
        "systemctl restart demo.service",
    ]
