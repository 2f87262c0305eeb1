"""The file half of the host layer on real files, and apply/rollback through
the CLI on a staging root."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from deploykit.cli import main
from deploykit.errors import DeployKitError, Locked, UsageError
from deploykit.host import connect
from deploykit.host.local import LocalHost
from deploykit.host.nsenter import NsenterHost
from deploykit.host.rooted import RootedHost
from deploykit.host.staging import StagingHost

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "deploykit.toml")


def rooted(tmp_path: Path) -> RootedHost:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nsvc:x:4242:4243::/:/bin/false\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nsvcgrp:x:4243:\n")
    return RootedHost(tmp_path)


def test_write_is_atomic_with_mode_and_owner_from_the_roots_own_accounts(tmp_path: Path) -> None:
    host = rooted(tmp_path)
    host.tracks_owners = os.geteuid() == 0
    host.write("/etc/app/conf", b"one\n", mode=0o640, owner="svc", group="svcgrp")
    info = (tmp_path / "etc/app/conf").stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (4242, 4243)
        facts = host.read("/etc/app/conf")
        assert facts is not None and (facts.owner, facts.group, facts.content) == ("svc", "svcgrp", b"one\n")
    host.write("/etc/app/conf", b"two\n", mode=0o600)
    assert (tmp_path / "etc/app/conf").read_bytes() == b"two\n"
    assert [p.name for p in (tmp_path / "etc/app").iterdir()] == ["conf"]  # no temp file left behind


def test_an_unknown_owner_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    host = rooted(tmp_path)
    with pytest.raises(DeployKitError, match="no user named 'nobody-here' on the host"):
        host.write("/etc/app/conf", b"x", mode=0o600, owner="nobody-here")
    assert list((tmp_path / "etc/app").iterdir()) == []


def test_symlink_remove_list_and_dirs(tmp_path: Path) -> None:
    host = rooted(tmp_path)
    host.symlink("/etc/site-enabled", "/etc/site-a")
    host.symlink("/etc/site-enabled", "/etc/site-b")
    assert host.link_target("/etc/site-enabled") == "/etc/site-b"
    host.remove("/etc/site-enabled")
    host.remove("/etc/site-enabled")  # absent: nothing to do
    assert host.link_target("/etc/site-enabled") is None
    assert host.make_dir("/var/lib/x", mode=0o700) is True
    assert host.make_dir("/var/lib/x", mode=0o700) is False
    assert stat.S_IMODE((tmp_path / "var/lib/x").stat().st_mode) == 0o700
    assert host.list_dir("/var/lib") == ["x"] and host.list_dir("/nope") == []
    host.remove_tree("/var/lib/x")
    assert host.list_dir("/var/lib") == []


def test_a_held_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    first, second = rooted(tmp_path), RootedHost(tmp_path)
    with first.lock("/var/lib/deploykit/demo/lock"):
        with pytest.raises(Locked), second.lock("/var/lib/deploykit/demo/lock"):
            pass
    with second.lock("/var/lib/deploykit/demo/lock"):
        pass


def test_local_host_runs_argv_and_streams_lines() -> None:
    host = LocalHost()
    assert host.run(["sh", "-c", "echo out; echo err >&2; exit 3"]).returncode == 3
    assert host.run(["/no/such/tool"]).returncode == 127
    assert host.run(["sleep", "5"], timeout=0.2).returncode == 124
    with host.stream(["sh", "-c", "echo a; echo b"]) as lines:
        assert list(lines) == ["a\n", "b\n"]


def test_connect_picks_the_host() -> None:
    assert isinstance(connect(Path("/tmp")), StagingHost)
    assert isinstance(connect(None, None), LocalHost)
    assert isinstance(connect(None, f"nsenter:{os.getpid()}"), NsenterHost)
    with pytest.raises(UsageError, match="nsenter:PID"):
        connect(None, "ssh:web1")
    with pytest.raises(UsageError, match="cannot be used together"):
        connect(Path("/tmp"), "local")
    with pytest.raises(DeployKitError, match="no process"):
        NsenterHost(999_999_999)


def test_apply_on_a_staging_root_then_no_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "root")
    assert main(["apply", "-c", EXAMPLE, "--root", root, "--create-root", "--yes", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"] and report["ok"] and "systemctl enable --now demo.socket" in report["actions"]
    assert (tmp_path / "root/etc/systemd/system/demo.service").exists()
    assert main(["apply", "-c", EXAMPLE, "--root", root, "--yes"]) == 0
    assert "no changes" in capsys.readouterr().out
    assert main(["plan", "-c", EXAMPLE, "--root", root]) == 0
    assert main(["apply", "-c", EXAMPLE, "--root", root, "--dry-run", "--set", "app.env.X=1"]) == 3


def test_apply_asks_unless_yes_and_refuses_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "-c", EXAMPLE, "--root", str(tmp_path)]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert not (tmp_path / "etc").exists()


def test_rollback_on_a_staging_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path)
    assert main(["rollback", "-c", EXAMPLE, "--root", root, "--yes"]) == 1
    assert "nothing to roll back to" in capsys.readouterr().err
    main(["apply", "-c", EXAMPLE, "--root", root, "--yes"])
    main(["apply", "-c", EXAMPLE, "--root", root, "--yes", "--set", "app.env.X=1"])
    assert 'X="1"' in (tmp_path / "etc/default/demo").read_text()
    capsys.readouterr()
    assert main(["rollback", "-c", EXAMPLE, "--root", root, "--yes"]) == 0
    assert "applied release" in capsys.readouterr().out
    assert "X=" not in (tmp_path / "etc/default/demo").read_text()
