"""`deploykit check` runs the real nginx -t, systemd-analyze and Gunicorn
loader. Each shipped profile passes; each kind of breakage is caught."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from deploykit.check import Report, run_checks
from deploykit.check.report import to_json, to_junit
from deploykit.check.systemd import check_calendar
from deploykit.render import Bundle, Kind, RenderedFile, render
from deploykit.settings.load import load
from deploykit.settings.model import Settings
from tests.conftest import PROFILES, require, settings_for

pytestmark = pytest.mark.tools


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("nginx", "systemd-analyze", "openssl"):
        require(tool)


def counted(report: Report) -> list[tuple[str, str]]:
    return [(f.check, f.message) for f in report.findings if f.counts]


def tls_overrides(cert: Path, key: Path) -> tuple[str, ...]:
    return ("nginx.tls.acme=false", f'nginx.tls.certificate="{cert}"', f'nginx.tls.certificate_key="{key}"')


def with_file(bundle: Bundle, kind: Kind, edit: Callable[[str], str]) -> Bundle:
    return Bundle(tuple(dataclasses.replace(f, content=edit(f.content)) if f.kind is kind else f for f in bundle))


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_passes_every_real_validator(profile: str) -> None:
    """The tls profile as shipped: ACME on and no certificate here (CI), which apply issues."""
    report = run_checks(settings_for(profile))
    assert counted(report) == []
    optional = {"gunicorn config": profile == "django", "systemd-analyze calendar": profile == "celery"}
    assert all(r.ran == optional.get(r.name, True) for r in report.results), [(r.name, r.ran) for r in report.results]
    scores = {f.file: float(f.message.split()[2]) for f in report.findings if f.check == "systemd-analyze security"}
    assert scores and all(score <= 2.0 for score in scores.values()), scores
    if profile == "celery":  # every service unit is scored: the app's, the worker's and the timer's job
        assert set(scores) == {f"/etc/systemd/system/demo{unit}.service" for unit in ("", "-worker", "-nightly")}
    if profile == "tls":  # the app's service, and the ACME renewal job
        assert set(scores) == {"/etc/systemd/system/demo.service", "/etc/systemd/system/demo-acme-renew.service"}


def test_acme_without_a_certificate_is_info_and_nginx_t_runs_with_a_throwaway_pair() -> None:
    report = run_checks(settings_for("tls"))
    (info,) = [f for f in report.findings if f.check == "files"]
    assert info.severity == "info" and "issued by apply" in info.message
    assert info.message.startswith("/etc/deploykit/acme/live/demo/fullchain.pem")
    nginx_t = next(r for r in report.results if r.name == "nginx -t")
    assert nginx_t.ran and nginx_t.findings == ()


def test_the_example_project_passes_every_real_validator_gixy_included() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "deploykit.toml"
    report = run_checks(load(project=example, environ={}).settings)
    assert counted(report) == []
    assert next(r for r in report.results if r.name == "gixy").ran


def test_tls_profile_with_missing_certificates_fails_but_still_runs_nginx_t() -> None:
    """Certificate paths given by hand (ACME off) that do not exist stay an error."""
    given = ('nginx.tls.certificate="/etc/letsencrypt/live/example.com/fullchain.pem"',
             'nginx.tls.certificate_key="/etc/letsencrypt/live/example.com/privkey.pem"')  # fmt: skip
    report = run_checks(settings_for("tls", "nginx.tls.acme=false", *given))
    messages = counted(report)
    assert (
        "files",
        "/etc/letsencrypt/live/example.com/fullchain.pem: cannot read (No such file or directory)",
    ) in messages
    assert next(r for r in report.results if r.name == "nginx -t").findings == ()


def test_nginx_t_catches_a_bad_directive_with_the_real_line() -> None:
    settings = settings_for(None)
    bundle = with_file(render(settings), Kind.NGINX_SITE, lambda t: t.replace("gzip on;", "gzip onn;"))
    findings = [f for f in run_checks(settings, bundle).findings if f.check == "nginx -t"]
    assert len(findings) == 1
    assert findings[0].severity == "error"
    assert 'invalid value "onn"' in findings[0].message
    assert "/etc/nginx/sites-available/demo.conf:" in findings[0].message


def test_nginx_t_reports_warnings_too() -> None:
    settings = settings_for("tls", "nginx.tls.redirect_http=false", "nginx.version=[1, 22, 1]")
    bundle = with_file(render(settings), Kind.NGINX_SITE, lambda t: t.replace("    http2 on;\n", "") + "\n")
    extra = "server {\n    listen 127.0.0.1:8099;\n    server_name dup.example;\n}\n" * 2
    bundle = with_file(bundle, Kind.NGINX_SITE, lambda t: t + extra)
    findings = [f for f in run_checks(settings, bundle).findings if f.check == "nginx -t"]
    assert [f.severity for f in findings] == ["warning"]
    assert "conflicting server name" in findings[0].message


def test_verify_catches_unknown_keys_and_bad_values() -> None:
    settings = settings_for(None)
    bundle = with_file(
        render(settings),
        Kind.SERVICE_UNIT,
        lambda t: t.replace("Type=notify", "Type=notify\nRestartt=always\nNice=banana"),
    )
    messages = [m for check, m in counted(run_checks(settings, bundle)) if check == "systemd-analyze verify"]
    assert any("Unknown key 'Restartt'" in m for m in messages)
    assert any("banana" in m for m in messages)
    assert all("/etc/systemd/system/demo.service" in m for m in messages)


def test_security_threshold_fails_an_unhardened_unit() -> None:
    report = run_checks(settings_for(None, 'systemd.hardening="off"'))
    (finding,) = [f for f in report.findings if f.check == "systemd-analyze security"]
    assert finding.severity == "error"
    assert "above the threshold 2.0" in finding.message


def test_gunicorn_loader_rejects_bad_values_and_flags_unknown_names() -> None:
    settings = settings_for("django")
    bundle = with_file(render(settings), Kind.GUNICORN_CONF, lambda t: t + "worker = 4\nworkers = 'many'\n")
    messages = [m for check, m in counted(run_checks(settings, bundle)) if check == "gunicorn config"]
    assert any("'worker' is not a Gunicorn setting" in m for m in messages)
    assert any("Invalid value for workers" in m for m in messages)


def test_consistency_catches_a_socket_mismatch_and_a_short_stop_timeout() -> None:
    settings = settings_for(None)
    bundle = with_file(
        render(settings), Kind.NGINX_SITE, lambda t: t.replace("unix:/run/demo.sock", "unix:/run/x.sock")
    )
    bundle = with_file(bundle, Kind.SERVICE_UNIT, lambda t: t.replace("TimeoutStopSec=40", "TimeoutStopSec=30"))
    messages = [m for check, m in counted(run_checks(settings, bundle)) if check == "consistency"]
    assert any("disagree on the app's socket" in m and "/run/x.sock" in m for m in messages)
    assert any("TimeoutStopSec=30 is not above the graceful timeout 30s" in m for m in messages)


def test_consistency_catches_a_socket_nginx_cannot_open() -> None:
    settings = settings_for(None)
    bundle = with_file(
        render(settings), Kind.SOCKET_UNIT, lambda t: t.replace("SocketGroup=www-data", "SocketGroup=root")
    )
    report = run_checks(settings, bundle)
    assert any("nginx runs as 'www-data' but the socket is 0660 group 'root'" in m for _, m in counted(report))


def test_consistency_catches_a_socket_hidden_by_private_tmp() -> None:
    report = run_checks(settings_for(None, 'paths.socket="/tmp/demo.sock"'))
    assert any("PrivateTmp=yes" in m for _, m in counted(report))


def test_missing_forwarded_proto_is_caught() -> None:
    settings = settings_for(None)
    bundle = with_file(
        render(settings), Kind.NGINX_SITE, lambda t: t.replace("proxy_set_header X-Forwarded-Proto $scheme;", "")
    )
    assert any("X-Forwarded-Proto" in m for _, m in counted(run_checks(settings, bundle)))


def test_expired_certificate_and_missing_ocsp_url(self_signed: Callable[..., tuple[Path, Path]]) -> None:
    cert, key = self_signed(days=5)
    overrides = (*tls_overrides(cert, key), f'nginx.tls.trusted_certificate="{cert}"')
    messages = counted(run_checks(settings_for("tls", *overrides)))
    assert ("files", f"{cert}: the certificate expires within 14 days") in messages
    assert any("has no OCSP URL" in m for _, m in messages)
    cert, key = self_signed(days=30, ocsp=True)
    overrides = (*tls_overrides(cert, key), f'nginx.tls.trusted_certificate="{cert}"', 'nginx.tls.resolver=["::1"]')
    assert counted(run_checks(settings_for("tls", *overrides))) == []


def test_user_that_cannot_be_created_is_an_error() -> None:
    messages = counted(run_checks(settings_for(None, 'app.user="nosuchuser-dk"', "app.create_user=false")))
    assert ("files", "user 'nosuchuser-dk' does not exist and app.create_user is false") in messages


def test_missing_tools_are_findings_never_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import deploykit.check.nginx as nginx_check
    import deploykit.check.systemd as systemd_check

    monkeypatch.setattr(nginx_check, "which", lambda tool: None)
    monkeypatch.setattr(systemd_check, "which", lambda tool: None)
    report = run_checks(settings_for(None))
    assert report.failed
    missing = {(f.check, f.message, f.hint) for f in report.findings}
    assert (
        "nginx -t",
        "nginx is not installed",
        "install it: sudo apt-get install nginx-light (Debian/Ubuntu)",
    ) in missing
    assert any(check == "systemd-analyze verify" and "not installed" in m for check, m, _ in missing)


def test_check_scores_and_verifies_every_process_and_timer_unit() -> None:
    """A process unit that scores above the threshold, or that systemd-analyze verify refuses, fails check."""
    settings = settings_for("celery", "processes.worker.instances=2")
    bundle = render(settings)
    weak = with_path(
        bundle,
        "/etc/systemd/system/demo-worker@.service",
        lambda t: (
            t.replace("PrivateUsers=yes\n", "")
            .replace("ProtectSystem=strict", "ProtectSystem=no")
            .replace("CapabilityBoundingSet=\n", "")
        ),
    )
    findings = [(f.file, f.message) for f in run_checks(settings, weak).findings if f.counts]
    assert [file for file, message in findings if "above the threshold" in message] == [
        "/etc/systemd/system/demo-worker@.service"
    ], findings
    broken = with_path(
        bundle, "/etc/systemd/system/demo-nightly.timer", lambda t: t.replace("Persistent=true", "Persistnt=true")
    )
    findings = [(f.check, f.file, f.message) for f in run_checks(settings, broken).findings if f.counts]
    assert any(c == "systemd-analyze verify" and "Persistnt" in m for c, _, m in findings), findings


def test_check_runs_systemds_calendar_parser_and_names_the_field() -> None:
    """check asks systemd itself: a zone this machine does not know passes the model's syntax screen, not check."""
    report = check_calendar(settings_for("celery"))
    assert report.ran and [f.severity for f in report.findings] == ["info"]
    assert "timers.nightly.on_calendar = '*-*-* 03:00:00'; next: " in report.findings[0].message
    settings = settings_for("celery", 'timers.nightly.on_calendar="*-*-* 03:00 MyZone/Nowhere"')
    report = check_calendar(settings)
    assert [f.severity for f in report.findings] == ["error"]
    message = report.findings[0].message
    assert message.startswith("timers.nightly.on_calendar = '*-*-* 03:00 MyZone/Nowhere': systemd refuses it")
    assert run_checks(settings).failed


def with_path(bundle: Bundle, path: str, edit: Callable[[str], str]) -> Bundle:
    return Bundle(tuple(dataclasses.replace(f, content=edit(f.content)) if f.path == path else f for f in bundle))


def test_json_and_junit_reports() -> None:
    settings: Settings = settings_for(None, 'systemd.hardening="off"')
    report = run_checks(settings)
    data = json.loads(to_json(report))
    assert data["ok"] is False
    assert [c["name"] for c in data["checks"]][:4] == [
        "nginx -t",
        "gixy",
        "systemd-analyze verify",
        "systemd-analyze security",
    ]
    suite = ET.fromstring(to_junit(report))
    assert suite.get("failures") == "1" and suite.get("tests") == "8"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["systemd-analyze security"]


def test_rendered_file_defaults() -> None:
    file = RenderedFile(path="/etc/x", kind=Kind.ENV_FILE, content="")
    assert (file.mode, file.owner, file.group) == (0o644, "root", "root")


def test_gixy_fails_check_on_an_alias_that_walks_out_of_its_folder() -> None:
    settings = settings_for(None, 'nginx.static=[{url = "/static/", path = "/srv/demo/static/"}]')
    assert "location /static/ {" in render(settings).by_kind(Kind.NGINX_SITE).content  # type: ignore[union-attr]
    bundle = with_file(
        render(settings), Kind.NGINX_SITE, lambda t: t.replace("location /static/ {", "location /static {")
    )
    report = run_checks(settings, bundle)
    (finding,) = [f for f in report.findings if f.check == "gixy"]
    assert finding.severity == "error"
    assert "[alias_traversal]" in finding.message
    assert finding.message.startswith("/etc/nginx/sites-available/demo.conf:")
    assert report.failed
    assert next(r for r in report.results if r.name == "nginx -t").findings == ()  # nginx -t alone lets it through


@pytest.mark.parametrize(("severity", "expected"), [("HIGH", "error"), ("MEDIUM", "error"), ("LOW", "warning")])
def test_gixy_severities_map_to_failing_findings(severity: str, expected: str) -> None:
    from deploykit.check.gixy import SEVERITY

    assert SEVERITY[severity] == expected


def test_gixy_that_cannot_run_is_a_finding_never_a_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deploykit.check import gixy

    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'No module named gixy' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(gixy, "PYTHON", str(broken))
    (finding,) = [f for f in run_checks(settings_for(None)).findings if f.check == "gixy"]
    assert finding.severity == "error"
    assert "gixy failed: No module named gixy" in finding.message
