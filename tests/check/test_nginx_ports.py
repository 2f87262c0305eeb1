"""`deploykit check` without root: `nginx -t` binds every listening port, and only root may bind one
below 1024, so such ports are tested shifted up by PORT_SHIFT and findings name the site's own port.
(The real unprivileged run is tests/realhost/test_check_unprivileged.py.)"""

from __future__ import annotations

import os

import pytest

from deploykit.check import run_checks
from deploykit.check.nginx import PORT_SHIFT, shift_ports
from deploykit.render import Kind, render
from tests.check.test_real_validators import with_file
from tests.conftest import require, settings_for


@pytest.mark.parametrize(
    ("line", "tested", "shifted"),
    [
        ("listen 80;", "listen 64080;", {64080: 80}),
        ("listen [::]:80;", "listen [::]:64080;", {64080: 80}),
        ("    listen 443 ssl http2;", "    listen 64443 ssl http2;", {64443: 443}),
        ("listen 127.0.0.1:80 default_server;", "listen 127.0.0.1:64080 default_server;", {64080: 80}),
        ("listen 127.0.0.1;", "listen 127.0.0.1:64080;", {64080: 80}),  # no port: nginx's 80
        ("listen *:1023;", "listen *:65023;", {65023: 1023}),
        ("listen [::1];", "listen [::1]:64080;", {64080: 80}),
        ("listen 8080;", "listen 8080;", {}),  # a port the user may bind: as it is
        ("listen 1024;", "listen 1024;", {}),
        ("listen unix:/run/demo.sock;", "listen unix:/run/demo.sock;", {}),
        ("# listen 80;", "# listen 80;", {}),  # not a directive
    ],
)
def test_low_ports_move_up_and_are_remembered(line: str, tested: str, shifted: dict[int, int]) -> None:
    assert shift_ports(line, 1024) == (tested, shifted)


def test_as_root_nothing_moves() -> None:
    site = "server {\n    listen 80;\n    listen [::]:443 ssl;\n}\n"
    assert shift_ports(site, 0) == (site, {})


def test_line_numbers_stay() -> None:
    site = "server {\n    listen 80;\n\n    listen 127.0.0.1;\n}\n"
    tested, _ = shift_ports(site, 1024)
    assert tested.count("\n") == site.count("\n") and tested.splitlines()[3] == "    listen 127.0.0.1:64080;"


@pytest.mark.tools
def test_a_check_without_root_passes_and_names_the_sites_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    require("nginx")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as a user: the ports move (root still binds them here)
    settings = settings_for(None)
    assert not [f for f in run_checks(settings, render(settings)).findings if f.counts]
    twice = with_file(
        render(settings), Kind.NGINX_SITE, lambda t: t.replace("listen 80;", "listen 80;\n    listen 80;", 1)
    )
    findings = [f for f in run_checks(settings, twice).findings if f.check == "nginx -t"]
    assert findings and all(str(80 + PORT_SHIFT) not in f.message for f in findings), findings
    assert any("0.0.0.0:80" in f.message for f in findings), findings
