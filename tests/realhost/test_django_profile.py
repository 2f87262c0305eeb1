"""The django profile, as shipped, on a fresh Debian 12 systemd host, with code releases:
a real Django project (``django_shop``: v1; ``django_shop_v2`` adds a model, its migration
and a view; ``django_shop_v3`` adds a migration that fails) built by ``deploykit build``
into wheelhouses and deployed by ``apply --wheelhouse``.

1. v1 deploys; an upload lands in the media folder (``app.state_directories``:
   StateDirectory=, $MEDIA_ROOT) and nginx serves it back;
2. v2 deploys under load: the migrate hook runs before the switch, the new view
   answers, no request fails;
3. ``rollback`` under load: v1's code serves again, no request fails;
4. v2 again switches to its kept folder (nothing installed), then v3, whose
   migration fails: nothing is switched, v2 keeps serving, apply exits 1 with the
   migration's error, and v3's folder is gone; a hook that hangs is killed at
   deploy.hooks.timeout, nothing is switched; hook output is in the journal too;
5. a deploy with keep_releases=1 prunes the old releases and their code folders.

Its own container (not the session's): the point is a fresh host, and a second
app and site would change what the other real-host tests see. The steps share it
and run in file order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deploykit.version import WHEEL_PREFIX
from tests.realhost.conftest import INSTALL_TOOL, TOOL
from tests.realhost.host import ROOT, Container, build_wheels, can_boot, container

pytestmark = pytest.mark.realhost

HERE = Path(__file__).parent
HOST = "Host: shop.localhost"
UPLOAD = "uploaded through django, served by nginx\n"
CONFIG = "/mnt/stage/shop.toml"
MIGRATE = "before_switch hook: python -m django migrate --noinput"


def stage_django(stage: Path) -> None:
    """Wheels for an offline build and host (deploykit and its dependencies, Django, setuptools
    for the build), the project in three versions, and a wheelhouse of each made by `deploykit build`."""
    wheels = build_wheels(stage / "wheels")
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--dest", str(wheels)]
    subprocess.run([*pip, "django>=4.2", "setuptools>=61"], check=True, capture_output=True)
    shutil.copy(HERE / "django_shop" / "shop.toml", stage / "shop.toml")
    shutil.copy(HERE / "load.py", stage / "load.py")
    (stage / "upload.txt").write_text(UPLOAD)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    env = {**os.environ, "PIP_FIND_LINKS": str(wheels), "PIP_NO_INDEX": "1"}
    for version, overlays in ((1, ()), (2, ("django_shop_v2",)), (3, ("django_shop_v2", "django_shop_v3"))):
        project = stage / f"v{version}"
        shutil.copytree(HERE / "django_shop", project, ignore=ignore)
        for overlay in overlays:
            shutil.copytree(HERE / overlay, project, ignore=ignore, dirs_exist_ok=True)
        meta = project / "pyproject.toml"
        meta.write_text(meta.read_text().replace('version = "1"', f'version = "{version}"'))
        argv = [str(ROOT / ".venv/bin/deploykit"), "build", "-c", str(project / "shop.toml")]
        done = subprocess.run([*argv, "--out", str(stage / f"wh{version}")], env=env, capture_output=True, text=True,
                              check=False, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        (stage / f"build-v{version}.txt").write_text(done.stdout + done.stderr)


@dataclass
class Shop:
    box: Container
    stage: Path
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def deploykit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.box.run([TOOL, *args], check=False, timeout=600)

    def apply(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.deploykit("apply", "-c", CONFIG, "--yes", *args)
        self.runs[name] = done
        (self.stage / f"{name}.out").write_text(done.stdout + done.stderr)  # real output, for the docs
        return done

    def report(self, name: str) -> dict[str, Any]:
        done = self.runs[name]
        try:
            return dict(json.loads(done.stdout))
        except ValueError as exc:
            raise AssertionError(f"{name}: no JSON ({done.returncode}):\n{done.stdout}\n{done.stderr}") from exc

    def get(self, path: str) -> tuple[int, str]:
        done = self.box.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", HOST, f"http://127.0.0.1{path}"])
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body

    def version(self) -> str:
        status, body = self.get("/")
        assert status == 200, body
        return str(json.loads(body)["version"])

    def live(self) -> str:
        return self.box.run(["readlink", "/srv/shop/current"]).stdout.strip()

    def folders(self) -> list[str]:
        return self.box.run(["ls", "/srv/shop/releases"]).stdout.split()

    def under_load(self, name: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """Run `deploykit ARGS` while load.py keeps requests going through nginx; the load's result."""
        stop = f"/run/stop-{name}"
        load = subprocess.Popen(self.box.command(["python3", "/mnt/stage/load.py", "300", "shop.localhost", stop]),
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            done = self.deploykit(*args)
            self.runs[name] = done
            (self.stage / f"{name}.out").write_text(done.stdout + done.stderr)
        finally:
            self.box.run(["touch", stop])
            out, _ = load.communicate(timeout=60)
        return done, dict(json.loads(out))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    reason = can_boot()
    if reason is not None:
        pytest.skip(reason)
    stage = tmp_path_factory.mktemp("django-stage")
    stage_django(stage)
    with container(f"deploykit-dj-{os.getpid()}", [(stage, "/mnt/stage")], stage / "console.log") as box:
        box.sh(INSTALL_TOOL, timeout=300)
        shop = Shop(box, stage)
        shop.apply("v1", "--format", "json", "--wheelhouse", "/mnt/stage/wh1")
        yield shop


def test_deploykit_build_makes_a_wheelhouse_of_the_app_and_its_dependencies(shop: Shop) -> None:
    wheels = sorted(p.name for p in (shop.stage / "wh1").glob("*.whl"))
    assert any(w.startswith("shop-1-") for w in wheels) and any(w.startswith("Django-") or w.startswith("django-")
                                                                for w in wheels), wheels  # fmt: skip
    assert any(w.startswith(WHEEL_PREFIX) for w in wheels), wheels
    assert re.search(r"wheel\(s\) in .*; code version [0-9a-f]{12}", (shop.stage / "build-v1.txt").read_text())


def test_v1_deploys_into_a_release_folder_and_runs_the_migrate_hook(shop: Shop) -> None:
    journal = shop.box.run(["journalctl", "-u", "shop.service", "--no-pager", "-n", "30"], check=False).stdout
    report = shop.report("v1")
    assert shop.runs["v1"].returncode == 0, f"{shop.runs['v1'].stdout}\n{shop.runs['v1'].stderr}\n{journal}"
    assert report["ok"] and {p["name"]: p["status"] for p in report["health"]} == {"socket": 200, "nginx": 200}
    steps = {s["name"]: s for s in report["steps"]}
    assert steps[MIGRATE]["status"] == "ok" and steps["switch the release"]["status"] == "ok"
    assert shop.live() == f"releases/{report['release']}"
    assert shop.box.run(["readlink", "-f", "/proc/" + _main_pid(shop) + "/cwd"]).stdout.strip() == (
        f"/srv/shop/releases/{report['release']}"
    )
    assert shop.version() == "1"
    media = shop.box.run(["stat", "-c", "%U:%G %a", "/var/lib/shop/media"]).stdout.strip()
    assert media == "shop:www-data 755"  # made by systemd for the service user


def test_an_upload_lands_in_the_media_folder_and_nginx_serves_it(shop: Shop) -> None:
    sent = shop.box.run(
        ["curl", "-sS", "-f", "-H", HOST, "-F", "file=@/mnt/stage/upload.txt", "http://127.0.0.1/upload"]
    )
    saved = json.loads(sent.stdout)
    assert saved["path"].startswith("/var/lib/shop/media/uploads/upload"), saved
    assert shop.box.run(["cat", saved["path"]]).stdout == UPLOAD  # on the host's disk, not in a private tmp
    got = shop.box.run(["curl", "-sS", "-i", "-H", HOST, f"http://127.0.0.1{saved['url']}"], check=False).stdout
    assert got.startswith("HTTP/1.1 200"), got
    assert got.endswith(UPLOAD)
    assert saved["url"].startswith("/media/")
    assert "cache-control: max-age=86400" in got.lower()  # the /media/ location's `expires 1d`: nginx, not the app


def test_v2_deploys_under_load_after_its_migration(shop: Shop) -> None:
    assert shop.get("/items")[0] == 404  # v1 has no such view
    done, load = shop.under_load("v2", "apply", "-c", CONFIG, "--yes", "--format", "json", "--wheelhouse",
                                 "/mnt/stage/wh2")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = shop.report("v2")
    migrate = next(s for s in report["steps"] if s["name"] == MIGRATE)
    assert migrate["status"] == "ok", migrate
    assert load["failures"] == [] and load["ok"] > 0, load
    assert shop.version() == "2"
    status, body = shop.get("/items")
    assert status == 200 and json.loads(body)["items"] >= 1, body  # the table the migration made
    assert shop.live() == f"releases/{report['release']}"
    # the hook's output is in the host's journal as well as in apply's output
    journal = shop.box.run(["journalctl", "-t", "shop-hook", "--no-pager", "-o", "short-iso"]).stdout
    (shop.stage / "hook-journal.out").write_text(journal)  # real output, for the docs
    assert "Applying shop.0001_initial... OK" in journal, journal


def test_rollback_under_load_puts_v1_code_and_config_back(shop: Shop) -> None:
    done, load = shop.under_load("rollback", "rollback", "-c", CONFIG, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert load["failures"] == [] and load["ok"] > 0, load
    assert shop.version() == "1"
    assert shop.get("/items")[0] == 404
    v1 = shop.report("v1")["release"]
    assert shop.live() == f"releases/{v1}"
    status = json.loads(shop.deploykit("status", "-c", CONFIG, "--format", "json").stdout)
    current = status["release"]
    assert current["source"] == f"rollback to {v1}" and current["code_release"] == v1, current
    assert all(r["config_version"] for r in status["releases"]), status["releases"]
    v1_code = shop.box.run(["cat", f"/srv/shop/releases/{v1}/.deploykit-code"]).stdout.strip()
    assert current["code_version"] == v1_code  # v1's config release was pruned (keep 2); its code is kept
    assert v1 not in {r["id"] for r in status["releases"]}
    table = shop.box.run(["env", "COLUMNS=160", TOOL, "status", "-c", CONFIG], check=False)
    (shop.stage / "status.out").write_text(table.stdout)
    assert current["code_version"] in table.stdout and current["config_version"] in table.stdout, table.stdout


def test_v2_again_reuses_its_folder_then_a_failing_migration_switches_nothing(shop: Shop) -> None:
    again = shop.apply("v2-again", "--wheelhouse", "/mnt/stage/wh2")  # the table output (docs)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "install the release" not in again.stdout and "switch the release" in again.stdout
    v2 = shop.report("v2")["release"]
    assert shop.live() == f"releases/{v2}" and shop.version() == "2"
    before = shop.folders()
    failed = shop.apply("v3", "--wheelhouse", "/mnt/stage/wh3")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    text = failed.stdout + failed.stderr
    assert "v3 migration 0002 fails on purpose" in text, text
    assert "Applying shop.0002_fails" in text, text  # the hook's own output, streamed
    assert shop.live() == f"releases/{v2}" and shop.version() == "2"
    assert shop.get("/items")[0] == 200
    assert shop.folders() == before  # v3's folder was removed


def test_a_hook_that_hangs_is_killed_at_its_timeout_and_nothing_is_switched(shop: Shop) -> None:
    v2 = shop.report("v2")["release"]
    hang = 'deploy.hooks.before_switch=["echo hook-hangs-now; sleep 600"]'
    started = time.monotonic()
    failed = shop.apply("hang", "--wheelhouse", "/mnt/stage/wh1", "--set", hang, "--set", "deploy.hooks.timeout=3")
    took = time.monotonic() - started
    text = failed.stdout + failed.stderr
    assert failed.returncode == 1, text
    assert "failed: killed after 3s (deploy.hooks.timeout): hook-hangs-now" in text, text
    assert took < 60, took  # not the 600 s the hook asked for
    assert shop.live() == f"releases/{v2}" and shop.version() == "2"  # the old release keeps serving
    journal = shop.box.run(["journalctl", "-t", "shop-hook", "--no-pager", "-o", "cat"]).stdout
    assert "hook-hangs-now" in journal, journal
    assert shop.box.run(["pgrep", "-f", "sleep 600"], check=False).returncode == 1  # nothing left running


def test_old_releases_and_their_code_folders_are_pruned(shop: Shop) -> None:
    v1 = shop.report("v1")["release"]
    assert v1 in shop.folders()  # the rollback release still runs it
    done = shop.apply("prune", "--format", "json", "--wheelhouse", "/mnt/stage/wh2", "--set", "deploy.keep_releases=1",
                      "--set", "gunicorn.workers=2")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    v2 = shop.report("v2")["release"]
    assert shop.folders() == [v2]
    kept = shop.box.run(["ls", "/var/lib/deploykit/shop/releases"]).stdout.split()
    assert kept == [shop.report("prune")["release"]]


def _main_pid(shop: Shop) -> str:
    return shop.box.run(["systemctl", "show", "-P", "MainPID", "shop.service"]).stdout.strip()
