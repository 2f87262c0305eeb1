"""After converge, idempotence and the two failed rollouts of side_effect.yml:
both hosts serve the first release through nginx, host1 went through (and
back out of) both failures, host2 was never touched. Run by molecule's
testinfra verifier over SSH (``--connection=ansible``)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

testinfra_hosts = ["app"]

GREETING = "hello from deploykit"


def releases(host: Any) -> list[dict[str, Any]]:
    """The kept releases, oldest first: id, source, status."""
    return [json.loads(line) for line in host.check_output("python3 -c %s", _RELEASES).splitlines()]


_RELEASES = """import glob, json
for path in sorted(glob.glob('/var/lib/deploykit/demo/releases/*/manifest.json')):
    with open(path) as fh:
        release = json.load(fh)
    print(json.dumps({key: release[key] for key in ('id', 'source', 'status')}))
"""


def name(host: Any) -> str:
    return str(host.ansible.get_variables()["inventory_hostname"])


def test_the_stack_runs(host: Any) -> None:
    assert host.service("demo.socket").is_enabled and host.service("demo.socket").is_running
    assert host.service("demo.service").is_running
    assert host.service("nginx").is_running
    assert "app.main:app" in host.file("/etc/systemd/system/demo.service").content_string
    assert host.file("/etc/deploykit/deploykit.toml").mode == 0o600


def test_the_app_runs_from_its_code_release_installed_by_apply(host: Any) -> None:
    """apply --wheelhouse put the app's wheels into a release venv and switched `current` to it: the service
    runs from there, never from app.venv, and the role keeps no stamp file of its own."""
    current = host.file("/srv/demo/current")
    assert current.is_symlink and current.linked_to.startswith("/srv/demo/releases/")
    venv = f"{current.linked_to}/venv"
    assert host.file(f"{venv}/bin/python3").exists
    assert "ExecStart=/srv/demo/current/venv/bin/" in host.file("/etc/systemd/system/demo.service").content_string
    pid = host.check_output("systemctl show -P MainPID demo.service")
    assert host.check_output(f"tr '\\0' ' ' < /proc/{pid}/cmdline").startswith(f"{venv}/bin/python3 ")  # its release
    assert not host.file("/srv/demo/.venv").exists
    assert not host.file("/var/cache/deploykit/wheels.installed").exists
    assert host.check_output("ls /srv/demo/releases").split() == [current.linked_to.rpartition("/")[2]]
    # apply ran in the agent's transient unit, as `deploykit apply --host ssh://` runs it
    outcome = json.loads(host.file("/var/lib/deploykit-remote/demo/outcome.json").content_string)
    assert outcome["command"] in ("apply", "rollback") and outcome["seen"] is True


def test_serves_the_first_release_through_nginx_on_the_host(host: Any) -> None:
    page = host.check_output("curl -sS --fail -H 'Host: demo.localhost' http://127.0.0.1/")
    assert json.loads(page)["greeting"] == GREETING


def test_serves_through_nginx_from_outside(host: Any) -> None:
    address = host.ansible.get_variables()["ansible_host"]
    request = urllib.request.Request(f"http://{address}/", headers={"Host": "demo.localhost"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a test host's address
        assert response.status == 200
        assert json.loads(response.read())["greeting"] == GREETING
    static = urllib.request.Request(f"http://{address}/static/hello.txt", headers={"Host": "demo.localhost"})
    with urllib.request.urlopen(static, timeout=10) as response:  # noqa: S310
        assert b"static file served by nginx" in response.read()


def test_host1_failed_twice_and_is_back_on_its_first_release(host: Any) -> None:
    if name(host) != "host1":
        pytest.skip("host1 only")
    kept = releases(host)
    assert [r["status"] for r in kept] == ["applied", "rolled-back", "applied", "applied"], kept
    assert kept[-1]["source"] == f"rollback to {kept[0]['id']}", kept
    current = host.file("/var/lib/deploykit/demo/current").content_string.strip()
    assert current == kept[-1]["id"]


def test_host2_was_never_touched_by_the_failed_rollouts(host: Any) -> None:
    if name(host) != "host2":
        pytest.skip("host2 only")
    assert [r["status"] for r in releases(host)] == ["applied"]
