"""Golden files: every profile renders to exactly the files under golden/.
Regenerate after an intended change with `UPDATE_GOLDEN=1 make test` and
review the diff like code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploykit.render import render
from tests.conftest import PROFILES, settings_for

GOLDEN = Path(__file__).parent / "golden"

# Extra variants beside the shipped profiles: the other run mode and options.
VARIANTS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    **{name: (name, ()) for name in PROFILES},
    "serve-no-socket-activation": (
        None,
        ("systemd.socket_activation=false", "paths.socket=\"/run/demo/demo.sock\"", "app.user=\"demo\"",
         "app.group=\"www-data\"", "systemd.hardening=\"standard\"", "server.limit_concurrency=100",
         "server.access_log=false", "systemd.watchdog_sec=30", "systemd.memory_max=\"512m\"",
         "systemd.cpu_quota=150", "systemd.tasks_max=64", "app.factory=true",
         'nginx.real_ip_from=["10.0.0.0/8", "2001:db8::/32"]', "nginx.real_ip_recursive=true",
         'nginx.real_ip_header="CF-Connecting-IP"', 'nginx.rate_limit={rate = "5r/s", burst = 0}',
         'nginx.static=[{url = "/assets", path = "/srv/demo/assets"}]'),
    ),
    "flask-gunicorn": ("flask", ('app.run_mode="gunicorn"', "server.workers=1", "server.wsgi_threads=8")),
    "celery-instances-user": (
        "celery",
        ("processes.worker.instances=3", 'app.user="demo"', 'app.group="www-data"', 'systemd.hardening="standard"',
         'timers.nightly.on_calendar="Mon..Fri *-*-* 02:30"', 'processes.beat.command=["/usr/bin/env", "true"]',
         'app.state_directories={ BEAT_DIR = "beat" }', "timers.nightly.timeout=600", "processes.beat.stop_timeout=45"),
    ),
    "tls-stapling-no-redirect": (
        "tls",
        ("nginx.tls.acme=false", "nginx.tls.certificate=\"/etc/ssl/site.pem\"",
         "nginx.tls.certificate_key=\"/etc/ssl/site.key\"",
         "nginx.tls.redirect_http=false", "nginx.tls.trusted_certificate=\"/etc/ssl/chain.pem\"",
         'nginx.tls.resolver=["127.0.0.53", "2001:4860:4860::8888"]',
         "nginx.version=[1, 25, 3]", "nginx.ipv6=false", "nginx.default_server=true", "nginx.gzip=false",
         "nginx.security_headers=false", "nginx.access_log=\"off\""),
    ),
    "tls-acme-modern-no-redirect": (
        "tls",
        ('nginx.tls.policy="modern"', "nginx.tls.redirect_http=false", 'nginx.tls.acme.email="ops@example.com"',
         'nginx.tls.acme.config_dir="/etc/acme"', 'nginx.tls.acme.directory="staging"'),
    ),
    "tls-hsts-preload": ("tls", ("nginx.tls.hsts_preload=true",)),
}  # fmt: skip


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_render_matches_golden_files(variant: str) -> None:
    profile, overrides = VARIANTS[variant]
    bundle = render(settings_for(profile, *overrides))
    folder = GOLDEN / variant
    if os.environ.get("UPDATE_GOLDEN"):
        for file in bundle:
            target = folder / file.relative()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.content)
    expected = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert sorted(str(f.relative()) for f in bundle) == expected, "files rendered differ from golden/"
    for file in bundle:
        assert file.content == (folder / file.relative()).read_text(), f"{variant}: {file.path}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendering_is_deterministic(variant: str) -> None:
    profile, overrides = VARIANTS[variant]
    first = render(settings_for(profile, *overrides))
    second = render(settings_for(profile, *overrides))
    assert first == second
