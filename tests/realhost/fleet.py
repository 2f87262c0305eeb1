"""The molecule scenario's hosts (molecule/default): Debian 12 systemd
containers that Ansible reaches the production way, over real SSH.

    python -m tests.realhost.fleet up STATE_DIR NAME...   boot one per NAME; print molecule's instance config
    python -m tests.realhost.fleet down STATE_DIR         stop them

``up`` also stages what the role copies from the controller, as a project
would keep it: the example app as a project (``STATE_DIR/stage/project``: its
package, a pyproject.toml, and examples/deploykit.toml with code releases on),
its wheelhouse made by ``deploykit build`` (the app, deploykit and every
dependency, for an offline install) under ``STATE_DIR/stage/wheels``, and its
static files under ``STATE_DIR/stage/static``. Each run makes its own SSH key; the containers boot
throwaway overlays of the cached rootfs (``host.Container``), detached from
this process, and are named after its pid so concurrent sessions never collide.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.realhost.host import ROOT, Container, Veth, build_wheels, can_boot, ensure_rootfs, stop_pid

SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=2"]  # fmt: skip


#: The example app as a package (``deploykit build`` makes its wheel; a code release installs it).
PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "demo"
version = "1"
dependencies = ["deploykit-asgi"]

[tool.setuptools]
packages = ["app"]
"""


def stage(target: Path) -> None:
    """The app's project, its wheelhouse and its static files, as a project would keep them on its controller."""
    shutil.rmtree(target, ignore_errors=True)
    app = ROOT / "examples" / "app"
    project = target / "project"
    shutil.copytree(app, project / "app", ignore=shutil.ignore_patterns("__pycache__", "static"))
    (project / "pyproject.toml").write_text(PYPROJECT)
    settings = (ROOT / "examples" / "deploykit.toml").read_text()
    (project / "deploykit.toml").write_text(settings + "\n[deploy]\ncode_releases = true\n")
    shutil.copytree(app / "static", target / "static")
    # offline, as on a build machine with a package mirror: deploykit's wheels and setuptools (the build backend)
    found = build_wheels(target / "found")
    pip = [str(ROOT / ".venv/bin/python"), "-m", "pip", "download", "--quiet", "--only-binary", ":all:"]
    subprocess.run([*pip, "--dest", str(found), "setuptools>=61"], check=True, capture_output=True)
    env = {**os.environ, "PIP_FIND_LINKS": str(found), "PIP_NO_INDEX": "1"}
    argv = [str(ROOT / ".venv/bin/deploykit"), "build", "-c", str(project / "deploykit.toml"), "--out",
            str(target / "wheels")]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"deploykit build of the demo failed: {done.stdout}{done.stderr}")


def ssh_key(state: Path) -> Path:
    key = state / "id_ed25519"
    if not key.exists():
        argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploykit-molecule", "-f", str(key)]
        subprocess.run(argv, check=True)
    return key


def wait_for_ssh(address: str, key: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        argv = ["ssh", *SSH_OPTIONS, "-i", str(key), f"root@{address}", "true"]
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no SSH to {address} after {timeout:.0f}s: {done.stderr.strip()}")
        time.sleep(0.5)


def up(state: Path, instances: list[str]) -> list[dict[str, Any]]:
    reason = can_boot()
    if reason is not None:
        raise SystemExit(f"cannot boot the molecule hosts: {reason}")
    state.mkdir(parents=True, exist_ok=True)
    key = ssh_key(state)
    ensure_rootfs()
    pid, count = os.getpid(), len(instances)
    names = [f"dk{pid}{chr(ord('a') + i)}" for i in range(count)]  # "ve-" + 10 characters at most
    links: list[Veth] = []
    for i in range(count):
        links.append(Veth.free(pid * count + i, taken=links))

    def boot(i: int) -> dict[str, Any]:
        box = Container(names[i], [], state / f"{names[i]}.log", veth=links[i],
                        authorized_keys=key.with_suffix(".pub"), detach=True)  # fmt: skip
        record: dict[str, Any] = {
            "instance": instances[i], "machine": box.name, "nspawn_pid": box.proc.pid, "leader": box.leader,
            "address": str(links[i].address.ip), "user": "root", "port": 22, "identity_file": str(key),
        }  # fmt: skip
        _save(state, record)
        wait_for_ssh(record["address"], key)
        return record

    try:
        with ThreadPoolExecutor(max_workers=count + 1) as pool:
            staged = pool.submit(stage, state / "stage")
            booted = [pool.submit(boot, i) for i in range(count)]
        # Every worker has ended (each step is bounded): report every failure, not just the first.
        jobs: list[tuple[str, Future[Any]]] = [("staging the wheels", staged), *zip(instances, booted, strict=True)]
        failures = [f"{what}: {type(exc).__name__}: {exc}" for what, job in jobs if (exc := job.exception())]
        if failures:
            raise RuntimeError("fleet up failed:\n" + "\n".join(failures))
    except BaseException:
        down(state)
        raise
    return [future.result() for future in booted]


def _save(state: Path, record: dict[str, Any]) -> None:
    (state / f"machine-{record['instance']}.json").write_text(json.dumps(record))


def down(state: Path) -> list[str]:
    records = [json.loads(path.read_text()) for path in sorted(state.glob("machine-*.json"))]
    with ThreadPoolExecutor(max_workers=max(len(records), 1)) as pool:  # each halts, then nspawn removes its copy
        list(pool.map(lambda record: stop_pid(int(record["nspawn_pid"]), record["machine"]), records))
    for record in records:
        (state / f"machine-{record['instance']}.json").unlink()
    return [record["instance"] for record in records]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    state = Path(argv[1])
    if argv[0] == "up":
        records = up(state, argv[2:] or ["instance"])
        keys = ("instance", "address", "user", "port", "identity_file")
        print(json.dumps([{k: record[k] for k in keys} for record in records]))
    else:
        print(json.dumps(down(state)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
