"""The django profile, as shipped, on a fresh Debian 12 systemd host: the first
apply succeeds, and a real Django project saves an upload to its media folder
(``app.state_directories``: systemd's StateDirectory=, $MEDIA_ROOT) that nginx
then serves back. Before, the profile rendered ReadWritePaths= for a folder
nothing created, and the service failed with 226/NAMESPACE.

Its own container (not the session's): the point is a fresh host, and a second
app and site would change what the other real-host tests see.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realhost.conftest import INSTALL_TOOL, TOOL
from tests.realhost.host import Container, build_wheels, can_boot, container

pytestmark = pytest.mark.realhost
Shop = tuple[Container, subprocess.CompletedProcess[str]]

HERE = Path(__file__).parent
HOST = "Host: shop.localhost"
UPLOAD = "uploaded through django, served by nginx\n"


def stage_django(stage: Path) -> None:
    """The app's wheels (deploykit, its dependencies, Django) and the project, for an offline host."""
    wheels = build_wheels(stage / "wheels")
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--dest", str(wheels)]
    subprocess.run([*pip, "django>=4.2"], check=True, capture_output=True)
    shutil.copytree(HERE / "django_shop", stage / "shop", ignore=shutil.ignore_patterns("__pycache__"))
    (stage / "upload.txt").write_text(UPLOAD)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    reason = can_boot()
    if reason is not None:
        pytest.skip(reason)
    stage = tmp_path_factory.mktemp("django-stage")
    stage_django(stage)
    with container(f"deploykit-dj-{os.getpid()}", [(stage, "/mnt/stage")], stage / "console.log") as box:
        box.sh(
            INSTALL_TOOL + "mkdir -p /srv/shop && cp -r /mnt/stage/shop/config /srv/shop/config\n",
            timeout=300,
        )
        argv = [TOOL, "apply", "-c", "/mnt/stage/shop/shop.toml", "--yes", "--format", "json"]
        done = box.run([*argv, "--install-app", "/mnt/stage/wheels"], check=False, timeout=600)
        yield box, done


def test_the_first_apply_of_the_django_profile_succeeds(shop: Shop) -> None:
    box, done = shop
    journal = box.run(["journalctl", "-u", "shop.service", "--no-pager", "-n", "30"], check=False).stdout
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{journal}"
    report = json.loads(done.stdout)
    assert report["ok"] and {p["name"]: p["status"] for p in report["health"]} == {"socket": 200, "nginx": 200}
    media = box.run(["stat", "-c", "%U:%G %a", "/var/lib/shop/media"]).stdout.strip()
    assert media == "shop:www-data 755"  # made by systemd for the service user


def test_an_upload_lands_in_the_media_folder_and_nginx_serves_it(
    shop: Shop,
) -> None:
    box, done = shop
    assert done.returncode == 0, done.stdout + done.stderr
    sent = box.run(["curl", "-sS", "-f", "-H", HOST, "-F", "file=@/mnt/stage/upload.txt", "http://127.0.0.1/upload"])
    saved = json.loads(sent.stdout)
    assert saved["path"].startswith("/var/lib/shop/media/uploads/upload"), saved
    assert box.run(["cat", saved["path"]]).stdout == UPLOAD  # on the host's disk, not in a private tmp
    got = box.run(["curl", "-sS", "-i", "-H", HOST, f"http://127.0.0.1{saved['url']}"], check=False).stdout
    assert got.startswith("HTTP/1.1 200"), got
    assert got.endswith(UPLOAD)
    assert saved["url"].startswith("/media/")
    assert "cache-control: max-age=86400" in got.lower()  # the /media/ location's `expires 1d`: nginx, not the app
