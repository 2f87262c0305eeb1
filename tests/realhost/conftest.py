"""One booted Debian 12 systemd host for the whole real-host layer, with the
example app deployed by `deploykit apply` from a tool venv, the way an
operator would: wheels carried in, nothing from the network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.realhost.host import Container, build_wheels, can_boot, container
from tests.realhost.testinfra_nsenter import testinfra_host

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
TOOL = "/opt/deploykit/bin/deploykit"
CONFIG = "/mnt/stage/deploykit.toml"
#: deploykit's own venv on the host, from the staged wheels (the container has no network).
INSTALL_TOOL = (
    "python3 -m venv /opt/deploykit\n"
    "/opt/deploykit/bin/pip install --quiet --no-index --find-links /mnt/stage/wheels deploykit-asgi\n"
)


@dataclass
class Deployed:
    box: Container
    first: dict[str, Any]  # the JSON report of the first apply
    infra: Any  # a testinfra Host

    def deploykit(self, *args: str, check: bool = False, timeout: float = 300) -> Any:
        return self.box.run([TOOL, *args], check=check, timeout=timeout)

    def apply(self, *args: str) -> tuple[int, dict[str, Any]]:
        done = self.deploykit("apply", "-c", CONFIG, "--yes", "--format", "json", *args)
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError as exc:
            raise AssertionError(f"apply printed no JSON ({done.returncode}):\n{done.stdout}\n{done.stderr}") from exc


def stage_files(stage: Path) -> None:
    build_wheels(stage / "wheels")
    shutil.copytree(ROOT / "examples" / "app", stage / "app", ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copytree(ROOT / "examples" / "app" / "static", stage / "static")
    shutil.copy(ROOT / "examples" / "deploykit.toml", stage / "deploykit.toml")
    for script in ("load.py", "wsclient.py", "inject.py"):
        shutil.copy(HERE / script, stage / script)


def curl(box: Container, path: str = "/") -> subprocess.CompletedProcess[str]:
    """GET PATH through nginx inside the container, status line and headers included."""
    return box.run(["curl", "-sS", "-i", "-H", "Host: demo.localhost", f"http://127.0.0.1{path}"], check=False)


def under_load(box: Container, seconds: float, stop: str | None = None) -> subprocess.Popen[str]:
    """Keep-alive requests through nginx for SECONDS (load.py), or until the file STOP exists in the
    container (SECONDS is then an upper bound); read them with load_result."""
    argv = box.command(["python3", "/mnt/stage/load.py", str(seconds), "demo.localhost", *([stop] if stop else [])])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def load_result(load: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, _ = load.communicate(timeout=timeout)
    return dict(json.loads(out))


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    reason = can_boot()
    if reason is not None:
        pytest.skip(reason)
    stage = tmp_path_factory.mktemp("stage")
    stage_files(stage)
    with container(f"deploykit-test-{os.getpid()}", [(stage, "/mnt/stage")], stage / "console.log") as box:
        box.sh(
            INSTALL_TOOL
            + "mkdir -p /srv/demo && cp -r /mnt/stage/app /srv/demo/app && cp -r /mnt/stage/static /srv/demo/static\n",
            timeout=300,
        )
        done = box.run([TOOL, "apply", "-c", CONFIG, "--yes", "--format", "json", "--install-app", "/mnt/stage/wheels"],
                       check=False, timeout=600)  # fmt: skip
        assert done.returncode == 0, f"first apply failed:\n{done.stdout}\n{done.stderr}"
        yield Deployed(box, json.loads(done.stdout), testinfra_host(box.leader))
