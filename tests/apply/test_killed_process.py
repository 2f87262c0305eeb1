"""A real `deploykit apply --root` process killed with SIGKILL at each step
boundary (right after the journal names the next step), then real
`deploykit plan` / `apply` processes on the same staging tree: the next run
undoes the half-done apply and converges. (tests/realhost kills one on the
real systemd host.)"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from deploykit.render import render
from deploykit.settings.load import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "deploykit.toml")
NEW = ("--set", "app.env.GREETING=new", "--set", "nginx.client_max_body_size=1m")

#: runs the real CLI, SIGKILLed by the kernel as soon as the journal naming step ARGV[1] reached the disk
KILLER = """
import os, signal, sys
from deploykit.apply import journal
step, real = sys.argv[1], journal.write
def write(host, state_dir, entry):
    real(host, state_dir, entry)
    if entry.step == step:
        os.kill(os.getpid(), signal.SIGKILL)
journal.write = write
from deploykit.cli import main
sys.exit(main(sys.argv[2:]))
"""
#: every step a staging apply runs (no health: commands are not run there)
STEPS = ["prepare the host", "save the release", "check the new app", "write files", "validate on the host", "services"]


def deploykit(*args: str, kill_at: str = "") -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", KILLER, kill_at, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_a_killed_apply_process_is_undone_and_the_next_one_converges(tmp_path: Path) -> None:
    new = load(project=Path(EXAMPLE), overrides=NEW[1::2]).settings
    first = tmp_path / "first"
    assert deploykit("apply", "-c", EXAMPLE, "--root", str(first), "--create-root", "--yes").returncode == 0
    old_env = (first / "etc/default/demo").read_text()
    for step in STEPS:
        root = tmp_path / step.replace(" ", "-")
        shutil.copytree(first, root, symlinks=True)
        killed = deploykit("apply", "-c", EXAMPLE, "--root", str(root), "--yes", *NEW, kill_at=step)
        assert killed.returncode == -signal.SIGKILL, (step, killed.stdout, killed.stderr)
        journal = root / "var/lib/deploykit/demo/journal.json"
        assert journal.exists()
        if step == "validate on the host":  # the files are written, nothing restarted: the case that said "no changes"
            assert (root / "etc/default/demo").read_text() != old_env
            shown = deploykit("plan", "-c", EXAMPLE, "--root", str(root), *NEW)
            assert shown.returncode == 3 and "pending recovery" in shown.stdout, shown.stdout + shown.stderr
        back = deploykit("apply", "-c", EXAMPLE, "--root", str(root), "--yes", "--format", "json", *NEW)
        assert back.returncode == 0, back.stdout + back.stderr
        report = json.loads(back.stdout)
        assert report["steps"][0]["name"] == "recover the interrupted apply", (step, report["steps"])
        assert "systemctl restart demo.service" in report["actions"]
        assert not journal.exists()
        for file in render(new):
            assert (root / file.relative()).read_text() == file.content, (step, file.path)
        releases = list((root / "var/lib/deploykit/demo/releases").iterdir())
        assert all((r / "manifest.json").exists() for r in releases)
        assert '"status": "pending"' not in "".join((r / "manifest.json").read_text() for r in releases)
