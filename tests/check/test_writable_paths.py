"""Writable folders: `check` flags a ReadWritePaths= that the host lacks (systemd
would fail the start with 226/NAMESPACE), and nginx serving a DynamicUser's
private state directory; the django profile gets its media folder from systemd."""

from __future__ import annotations

from pathlib import Path

from deploykit.check.consistency import check_consistency, check_files
from deploykit.render import render
from tests.conftest import settings_for


def test_a_missing_read_write_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "media"
    settings = settings_for(None, f'systemd.read_write_paths=["{missing}"]')
    (finding,) = [f for f in check_files(settings, render(settings)).findings if "ReadWritePaths" in f.message]
    assert finding.severity == "error" and str(missing) in finding.message and "226/NAMESPACE" in finding.message
    assert finding.hint is not None and "app.state_directories" in finding.hint
    missing.mkdir()
    assert not [f for f in check_files(settings, render(settings)).findings if "ReadWritePaths" in f.message]


def test_the_django_profile_needs_no_folder_made_by_hand() -> None:
    settings = settings_for("django")
    assert settings.systemd.read_write_paths == ()
    assert settings.app.state_paths() == {"MEDIA_ROOT": "/var/lib/demo/media", "STATIC_ROOT": "/var/lib/demo/static"}
    assert {"/var/lib/demo/media/", "/var/lib/demo/static/"} <= {s.path for s in settings.nginx.static}
    findings = (
        check_files(settings, render(settings)).findings + check_consistency(settings, render(settings), None).findings
    )
    assert not [f for f in findings if f.counts and f.severity == "error"], findings


def test_nginx_cannot_serve_a_dynamic_users_state_directory() -> None:
    state = 'app.state_directories={MEDIA_ROOT="media"}'
    settings = settings_for(None, state, 'nginx.static=[{url="/media/", path="/var/lib/demo/media/"}]')
    assert settings.app.user is None
    (finding,) = [
        f for f in check_consistency(settings, render(settings), None).findings if "state directory" in f.message
    ]
    assert finding.severity == "error" and "/var/lib/private" in finding.message
