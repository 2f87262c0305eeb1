"""The app check: a change whose app cannot import or start is refused before
anything is written (in Gunicorn mode a module change was a HUP that halted
Gunicorn). The probe script runs for real here on small apps; the systemd-run
line is checked against the unit's own property helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploykit.apply.appcheck import SCRIPT, command, verdict
from deploykit.apply.run import deploy_settings
from deploykit.errors import ApplyFailed
from deploykit.host.base import CommandResult
from deploykit.host.fake import FakeHost
from deploykit.host.staging import StagingHost
from deploykit.render.systemd import directories, hardening, identity, limits
from tests.apply.test_engine import STATE, apply, host_with
from tests.conftest import settings_for

BROKEN = CommandResult(1, '\n{"ok": false, "stage": "import", "error": "ModuleNotFoundError: No module named \'x\'"}\n')


@pytest.mark.parametrize("level", ["strict", "standard"])
@pytest.mark.parametrize("user", [None, "app.user=web"])
def test_the_check_runs_with_the_units_own_identity_env_file_and_sandbox(level: str, user: str | None) -> None:
    extra = [user] if user else []
    settings = settings_for(
        None,
        *extra,
        f"systemd.hardening={level}",
        "systemd.memory_max=512M",
        'app.state_directories.MEDIA_ROOT="media"',
    )
    argv = command(FakeHost(), settings, f"{STATE}/releases/1/files/etc/default/demo")
    assert argv[:6] == ["systemd-run", "--wait", "--pipe", "--collect", "--quiet", "--service-type=exec"]
    props = [a.removeprefix("--property=") for a in argv if a.startswith("--property=")]
    unit = [*identity(settings), *directories(settings), *limits(settings), *hardening(settings)]
    expected = [f"{k}={v}" for k, v in unit]
    # the app's writable folders and the variables naming them, as the service gets them
    assert {"StateDirectory=demo/media", "Environment=MEDIA_ROOT=/var/lib/demo/media"} <= set(expected)
    assert [p for p in props if p in expected] == expected  # every one, in the unit's order
    assert f"EnvironmentFile={STATE}/releases/1/files/etc/default/demo" in props
    assert "WorkingDirectory=/srv/demo" in props
    assert argv[argv.index("--") + 1 :][:2] == ["python3", "-c"]
    assert json.loads(argv[-1]) == {"module": "app:app", "factory": False, "timeout": 30}


def test_an_app_that_cannot_import_is_refused_and_nothing_is_written() -> None:
    host = host_with()
    apply(host, settings_for(None))
    etc = {p: f for p, f in host.files.items() if p.startswith("/etc/")}
    host.answers.insert(0, (("systemd-run",), BROKEN))
    start = len(host.commands)
    with pytest.raises(ApplyFailed, match=r"check the new app failed: the new app fails at import: ModuleNotFound"):
        apply(host, settings_for(None, "app.module=app.broken:app"))
    assert {p: f for p, f in host.files.items() if p.startswith("/etc/")} == etc
    assert not [a for a in host.commands[start:] if a[0] == "systemctl" and a[1] not in ("is-enabled", "is-active")]
    check = next(a for a in host.commands[start:] if a[0] == "systemd-run")
    assert json.loads(check[-1])["module"] == "app.broken:app"


def test_a_conf_only_change_in_gunicorn_mode_is_checked_before_the_hup() -> None:
    host = host_with()
    apply(host, settings_for(None, "app.run_mode=gunicorn"))
    host.answers.insert(0, (("systemd-run",), BROKEN))
    start = len(host.commands)
    with pytest.raises(ApplyFailed, match="check the new app failed") as caught:
        apply(host, settings_for(None, "app.run_mode=gunicorn", "app.module=app.broken:app"))
    assert caught.value.restored
    assert ["systemctl", "reload", "demo.service"] not in host.commands[start:]


def test_no_check_when_the_service_is_not_touched() -> None:
    host = host_with()
    apply(host, settings_for(None))
    start = len(host.commands)
    report = apply(host, settings_for(None, "nginx.client_max_body_size=1m")).report
    assert "check the new app" not in [s.name for s in report.steps]
    assert not [a for a in host.commands[start:] if a[0] == "systemd-run"]


def test_on_a_staging_root_the_check_is_recorded_not_run(tmp_path: Path) -> None:
    host = StagingHost(tmp_path)
    report = deploy_settings(settings_for(None), host, health=False).run()
    step = next(s for s in report.steps if s.name == "check the new app")
    assert step.status == "ok" and "recorded" in step.detail
    assert [a for a in host.commands if a[0] == "systemd-run"]


def test_a_check_that_cannot_run_says_why() -> None:
    found = verdict(CommandResult(1, "", "Failed to start transient service unit: Access denied"))
    assert not found.ok and "Access denied" in found.detail


APPS = {
    "good": "events = []\nasync def app(scope, receive, send):\n"
    "    while True:\n        m = await receive()\n        await send({'type': m['type'] + '.complete'})\n"
    "        if m['type'] == 'lifespan.shutdown':\n            return\n",
    "import_error": "import no_such_dependency\n",
    "syntax": "def app(:\n",
    "raises": "raise RuntimeError('no DATABASE_URL')\n",
    "startup_failed": "async def app(scope, receive, send):\n    await receive()\n"
    "    await send({'type': 'lifespan.startup.failed', 'message': 'cannot reach the database'})\n",
    "no_lifespan": "async def app(scope, receive, send):\n    assert scope['type'] == 'http'\n",
    "factory": "def create():\n    async def app(scope, receive, send):\n        raise RuntimeError('http only')\n"
    "    return app\n",
    "hangs": "import asyncio\nasync def app(scope, receive, send):\n    await asyncio.sleep(60)\n",
}


@pytest.mark.parametrize(
    ("name", "ok", "says"),
    [
        ("good", True, "lifespan complete"),
        ("import_error", False, "at import: ModuleNotFoundError: No module named 'no_such_dependency'"),
        ("syntax", False, "at import: SyntaxError"),
        ("raises", False, "at import: RuntimeError: no DATABASE_URL"),
        ("startup_failed", False, "at lifespan: RuntimeError: lifespan startup failed: cannot reach the database"),
        ("no_lifespan", True, "lifespan unsupported"),
        ("factory", True, "lifespan unsupported"),
        ("hangs", False, "lifespan did not answer in 1s"),
    ],
)
def test_the_probe_script_on_real_apps(tmp_path: Path, name: str, ok: bool, says: str) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("")
    (tmp_path / f"pkg/{name}.py").write_text(APPS[name])
    spec = {"module": f"pkg.{name}:{'create' if name == 'factory' else 'app'}", "factory": name == "factory"}
    spec["timeout"] = 1
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(spec)], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    found = verdict(CommandResult(done.returncode, done.stdout, done.stderr))
    assert found.ok is ok and says in found.detail, (found, done.stderr)
