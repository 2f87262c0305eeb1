"""The release store never blocks the host: a bad manifest is flagged and
skipped, a half-saved release is removed, modes are exact (folders 0700, the
env file 0600 whatever a manifest says)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from deploykit.apply.releases import ReleaseStore
from deploykit.apply.run import deploy_release, deploy_settings
from deploykit.errors import ApplyFailed, DeployKitError, NoRelease
from deploykit.host.base import FileFacts
from deploykit.host.staging import StagingHost
from deploykit.operate.doctor import Doctor
from tests.apply.test_engine import STATE, RefusingHost, apply, host_with
from tests.conftest import settings_for


def three_releases() -> tuple[RefusingHost, list[str]]:
    host = RefusingHost()
    host.active["nginx.service"] = True
    host.answers += host_with().answers
    ids = [apply(host, settings_for(None, f"app.env.N={n}")).report.release for n in range(3)]
    return host, [i for i in ids if i]


def manifest(release_id: str) -> str:
    return f"{STATE}/releases/{release_id}/manifest.json"


@pytest.mark.parametrize(
    "corrupt",
    [b"{not json", b'{"id": "x"}', b"\xff\xfe", b"[]", b'{"id": 1, "source": 2, "created": 3}'],
    ids=["truncated", "missing-fields", "not-utf8", "not-an-object", "wrong-types"],
)
def test_a_corrupt_manifest_in_an_old_release_blocks_nothing(corrupt: bytes) -> None:
    host, ids = three_releases()
    host.files[manifest(ids[0])] = FileFacts(corrupt, 0o600, "root", "root")
    report = apply(host, settings_for(None, "app.env.N=9")).report
    assert not report.failed_step and report.changed
    assert len(report.warnings) == 1 and ids[0] in report.warnings[0] and "skipped" in report.warnings[0]
    store = ReleaseStore(host, STATE)
    assert ids[0] not in [r.id for r in store.all()]
    back = deploy_release(settings_for(None), host, None)
    back.run()
    assert back.report.source == f"rollback to {ids[2]}"
    found = Doctor(host, settings_for(None)).drift()  # doctor is not blocked either: it flags the folder
    assert [f.message for f in found if f.check == "releases"] == report.warnings


def test_a_manifest_that_gives_the_env_file_a_loose_mode_is_refused_for_rollback() -> None:
    host, ids = three_releases()
    data = json.loads(host.files[manifest(ids[1])].content)
    env = next(e for e in data["files"] if e["kind"] == "env-file")
    env["mode"] = 0o666
    host.files[manifest(ids[1])] = FileFacts(json.dumps(data).encode(), 0o600, "root", "root")
    with pytest.raises(NoRelease, match=f"no release '{ids[1]}'"):
        deploy_release(settings_for(None), host, ids[1])
    assert any("the env file must be 0600" in w for w in ReleaseStore(host, STATE).scan()[1])
    assert host.files["/etc/default/demo"].mode == 0o600


@pytest.mark.parametrize("mode", [0o4755, 0o1777, 0o777, -1, "0644", True])
def test_manifest_modes_are_validated(mode: object) -> None:
    host, ids = three_releases()
    data = json.loads(host.files[manifest(ids[1])].content)
    data["files"][0]["mode"] = mode
    host.files[manifest(ids[1])] = FileFacts(json.dumps(data).encode(), 0o600, "root", "root")
    releases, warnings = ReleaseStore(host, STATE).scan()
    assert ids[1] not in [r.id for r in releases] and "mode" in warnings[0]


def test_a_release_that_cannot_be_saved_is_removed_and_prune_removes_folders_without_a_manifest() -> None:
    host, ids = three_releases()
    host.refuse = f"{STATE}/releases/"  # a disk full while saving the release
    with pytest.raises(ApplyFailed, match="save the release failed"):
        apply(host, settings_for(None, "app.env.N=full"))
    assert host.list_dir(f"{STATE}/releases") == ids
    # an older partial folder (a save killed half-way) is pruned by the next apply
    host.refuse = ""
    host.write(f"{STATE}/releases/20200101T000000000Z/before/etc/default/demo", b"X=1\n", mode=0o600)
    report = apply(host, settings_for(None, "app.env.N=4")).report
    assert "20200101T000000000Z" not in host.list_dir(f"{STATE}/releases")
    assert report.release in host.list_dir(f"{STATE}/releases")


def test_release_folders_are_0700_and_a_loose_state_dir_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / STATE.lstrip("/")
    state.mkdir(parents=True, mode=0o755)
    os.chmod(state, 0o755)
    host = StagingHost(tmp_path)
    deploy = deploy_settings(settings_for(None), host, health=False)
    deploy.run()
    release = state / "releases" / str(deploy.report.release)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "releases").stat().st_mode) == 0o700
    assert stat.S_IMODE(release.stat().st_mode) == 0o700
    assert stat.S_IMODE((release / "manifest.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "etc/default/demo").stat().st_mode) == 0o600


def test_an_unreadable_journal_is_a_clear_error_not_a_guess() -> None:
    host = host_with()
    apply(host, settings_for(None))
    host.files[f"{STATE}/journal.json"] = FileFacts(b"{half", 0o600, "root", "root")
    with pytest.raises(DeployKitError, match="journal.json is unreadable"):
        apply(host, settings_for(None, "app.env.N=1"))


def test_doctor_reports_an_interrupted_apply_and_an_unreadable_journal() -> None:
    host = host_with()
    apply(host, settings_for(None))
    journal = f"{STATE}/journal.json"
    host.files[journal] = FileFacts(b"{half", 0o600, "root", "root")
    found = Doctor(host, settings_for(None)).drift()
    assert [f.file for f in found if f.severity == "error"] == [journal]
    host.files[journal] = FileFacts(
        json.dumps({"release": "20260101T000000000Z", "source": "apply", "step": "services"}).encode(),
        0o600,
        "root",
        "root",
    )
    found = Doctor(host, settings_for(None)).drift()
    assert any("interrupted during 'services'" in f.message for f in found)
