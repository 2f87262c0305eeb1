"""The agent's ``resolve`` verb (what the Ansible role sends before apply): a project file on the
host and overrides in, the settings ``run``/``transact`` read out, with the overrides (secrets among
them) only ever on stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deploykit.remote import agent
from deploykit.settings.model import Settings


def resolve(stdin: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "deploykit.remote.agent", "resolve"]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **env})  # fmt: skip


def test_resolve_merges_the_project_file_and_the_overrides(tmp_path: Path) -> None:
    config = tmp_path / "deploykit.toml"
    config.write_text('profile = "websocket"\n[app]\nname = "demo"\n[nginx]\nserver_names = ["demo.example"]\n')
    overrides = ['app.secrets={TOKEN="s3 cr$(et)\'"}', "deploy.code_releases=true"]
    done = resolve(json.dumps({"config": str(config), "set": overrides}), DEPLOYKIT_APP__NAME="other")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["app"] == "demo"  # the host's DEPLOYKIT_* variables play no part, as in run and transact
    settings = Settings.model_validate(out["settings"])
    assert settings.app.secrets["TOKEN"].get_secret_value() == "s3 cr$(et)'"
    assert settings.deploy.code_releases is True
    assert list(settings.nginx.server_names) == ["demo.example"]


def test_resolve_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    done = resolve("not json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith('deploykit: resolve: stdin is not {"config": PATH, "set": [...]}')
    bad = resolve(json.dumps({"config": str(tmp_path / "missing.toml"), "set": []}))
    assert bad.returncode == 1 and bad.stdout == "" and "missing.toml" in bad.stderr, bad.stderr
    wrong = tmp_path / "deploykit.toml"
    wrong.write_text('[app]\nname = "demo"\n')
    field = resolve(json.dumps({"config": str(wrong), "set": ["gunicorn.workers=0"]}))
    assert field.returncode == 1 and "gunicorn.workers" in field.stderr and "--set" in field.stderr, field.stderr


def test_a_quiet_command_ends_when_its_client_hangs_up() -> None:
    """sshd closes a command's pipes when the client goes, and sends no signal: `run` must notice
    by itself, or a quiet `logs --follow` (and its journalctl and tail) would stay until the next line."""
    script = ("import signal, sys, time\nfrom deploykit.remote import agent\n"
              "signal.signal(signal.SIGHUP, agent._hang_up)\nagent.watch_client()\n"
              "try:\n    print('ready', flush=True)\n    time.sleep(30)\nexcept SystemExit:\n"
              "    open(sys.argv[1], 'w').write('cleaned up')\n    raise\n")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "finally"
        proc = subprocess.Popen([sys.executable, "-c", script, str(marker)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.stdout.close()  # the client (sshd's end of the pipe) is gone
        assert proc.wait(10) == 129
        assert marker.read_text() == "cleaned up"  # it ended through SystemExit: finally blocks ran


def test_a_failed_apply_unit_is_waited_for_until_systemd_has_unloaded_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After reset-failed, systemd unloads the unit a moment later: a transact that started the next unit
    at once met "Unit deploykit-apply-<app>.service was already loaded" (molecule, rollback after a failed
    apply). A stand-in systemctl shows the unit failed twice, then loaded and inactive, then gone."""
    calls = tmp_path / "calls"
    script = tmp_path / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f'n=$(grep -c "^show" {calls})\n'
        'if [ "$1" = show ]; then\n'
        '  if [ "$n" -le 2 ]; then echo LoadState=loaded; echo ActiveState=failed;\n'
        '  elif [ "$n" -le 4 ]; then echo LoadState=loaded; echo ActiveState=inactive;\n'
        "  else echo LoadState=not-found; echo ActiveState=inactive; fi\n"
        "fi\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    agent.wait_unloaded("shop", timeout=10)
    lines = calls.read_text().splitlines()
    assert [line.split()[0] for line in lines].count("show") == 5, lines  # waited for not-found
    assert "reset-failed deploykit-apply-shop.service" in lines


def test_run_gives_check_no_host_option_and_the_rest_the_local_host() -> None:
    """The Ansible role runs check and plan through `run` (the settings on stdin, not as --set on a
    command line); check reads no live host and has no --host option."""
    settings = Path("/run/x/settings.json")
    assert agent._command("check", settings, []) == ["check", "-c", str(settings)]
    assert agent._command("plan", settings, ["--format", "json"]) == [
        "plan", "-c", str(settings), "--host", "local", "--format", "json"
    ]  # fmt: skip
