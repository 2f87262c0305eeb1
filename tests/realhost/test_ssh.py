"""`--host ssh://` from this machine to two Debian 12 systemd hosts running
sshd, reached over their veth links with a test-only key, ssh config and
known_hosts (the production path: the system ssh, multiplexed, host keys
checked). The hosts boot once for the module; the tests run in order:
bootstrap + apply serving through nginx (and idempotent), the same facts over
SSH as on the host, a hostile argument that stays one word, a killed client
mid-apply, refusals (unknown key, wrong user, no systemd) that write nothing,
two hosts where the second fails its health gate, then on host 1: code
releases built here from deploy.project and a rollback of code and config,
and `logs -f` following new lines until Ctrl-C, leaving nothing behind there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.realhost.fleet import PYPROJECT, ssh_key, wait_for_ssh
from tests.realhost.host import ROOT, Container, Veth, build_wheels, can_boot, ensure_rootfs

pytestmark = pytest.mark.realhost

TOOL = str(ROOT / ".venv/bin/deploykit")
UNIT = "deploykit-apply-demo.service"


@dataclass
class Site:
    box: Container
    address: str

    @property
    def url(self) -> str:
        return f"ssh://root@{self.address}"

    def greeting(self) -> tuple[int, str]:
        got = self.box.run(["curl", "-sS", "-H", "Host: demo.localhost", "-w", "\n%{http_code}",
                            "http://127.0.0.1/"], check=False)  # fmt: skip
        body, _, code = got.stdout.rpartition("\n")
        return int(code or 0), str(json.loads(body)["greeting"]) if code == "200" else body

    def env_file(self) -> str:
        return self.box.run(["cat", "/etc/default/demo"]).stdout


@dataclass
class Fleet:
    sites: list[Site]
    work: Path  # the project folder: deploykit.toml, the wheels
    env: dict[str, str]

    def deploykit(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
        return subprocess.run([TOOL, *args], cwd=self.work, env=env or self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)  # fmt: skip


def host_public_key() -> tuple[str, str]:
    """The hosts' ED25519 key (every boot of the cached tree has the same)."""
    kind, blob = (ensure_rootfs() / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    return kind, blob


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    reason = can_boot()
    if reason is not None:
        pytest.skip(reason)
    # short: ssh's control sockets go under it (sun_path holds 107 bytes; pytest's tmp paths are longer
    # under pytest-xdist, popen-gwN/ in them, and ssh failed "too long for Unix domain socket")
    work = Path(tempfile.mkdtemp(prefix="dkssh-"))
    key = ssh_key(work)
    (work / "deploykit.toml").write_text((ROOT / "examples/deploykit.toml").read_text())
    stage = work / "stage"
    (stage / "app").mkdir(parents=True)
    pid = os.getpid()
    links: list[Veth] = []
    for i in range(2):
        links.append(Veth.free(pid * 7 + i, taken=links))
    names = [f"ds{pid}{c}" for c in "ab"]
    kind, blob = host_public_key()
    known = work / "known_hosts"
    known.write_text("".join(f"{link.address.ip} {kind} {blob}\n" for link in links))
    control = work / "control"
    control.mkdir(mode=0o700)
    config = work / "ssh_config"
    config.write_text(f"Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
                      "  GlobalKnownHostsFile /dev/null\n")  # fmt: skip
    env = {**os.environ, "DEPLOYKIT_SSH_CONFIG": str(config), "DEPLOYKIT_SSH_CONTROL_DIR": str(control),
           "DEPLOYKIT_WHEELS": str(work / "wheels")}  # fmt: skip
    env.pop("DEPLOYKIT_HOST", None)
    shutil.copy(work / "deploykit.toml", stage / "deploykit.toml")  # the same settings, for deploykit on the host
    shutil.copytree(ROOT / "examples/app", stage / "app/app", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "static"))  # fmt: skip
    shutil.copytree(ROOT / "examples/app/static", stage / "app/static")

    boxes: list[Container] = []

    def boot(i: int) -> Site:
        box = Container(names[i], [(stage, "/mnt/stage")], work / f"{names[i]}.log", veth=links[i],
                        authorized_keys=key.with_suffix(".pub"))  # fmt: skip
        boxes.append(box)  # stopped below even when the other one fails to boot
        address = str(links[i].address.ip)
        wait_for_ssh(address, key)
        box.sh("mkdir -p /srv/demo && cp -r /mnt/stage/app/app /srv/demo/app && cp -r /mnt/stage/app/static /srv/demo/")
        return Site(box, address)

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            wheels = pool.submit(build_wheels, work / "wheels")
            booted = [pool.submit(boot, i) for i in range(2)]
            wheels.result()
            sites = [b.result() for b in booted]
        yield Fleet(sites, work, env)
    finally:
        for box in boxes:
            box.stop()
        for child in control.iterdir():  # the shared connections' masters, if still up
            subprocess.run(["ssh", "-o", f"ControlPath={child}", "-O", "exit", "x"], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def test_bootstrap_then_apply_serves_the_app_and_a_second_apply_changes_nothing(fleet: Fleet) -> None:
    one, two = fleet.sites
    dry = fleet.deploykit("bootstrap", "--host", two.url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{two.url}: would install deploykit" in dry.stderr
    assert two.box.run(["test", "-e", "/opt/deploykit"], check=False).returncode == 1  # dry run: nothing written

    first = fleet.deploykit("bootstrap", "--host", one.url)
    assert first.returncode == 0, first.stderr
    assert f"{one.url}: install deploykit" in first.stderr and "(was nothing)" in first.stderr
    again = fleet.deploykit("bootstrap", "--host", one.url)
    assert again.returncode == 0 and "nothing to change" in again.stderr, again.stderr

    applied = fleet.deploykit("apply", "--host", one.url, "--yes", "--format", "json", "--install-app", "wheels")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    report = json.loads(applied.stdout)
    assert report["ok"] and report["changed"], report
    assert one.greeting() == (200, "hello from deploykit")
    second = fleet.deploykit("apply", "--host", one.url, "--yes", "--format", "json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["changed"] is False
    # the settings (secrets included) went on stdin into a 0600 file, removed when the apply ended
    leftovers = one.box.run(["find", "/var/lib/deploykit-remote", "-name", "settings*"]).stdout
    assert leftovers == ""
    assert one.box.run(["stat", "-c", "%a", "/var/lib/deploykit-remote/demo"]).stdout.strip() == "700"


def test_plan_status_logs_doctor_over_ssh_show_what_the_host_shows(fleet: Fleet) -> None:
    one = fleet.sites[0]
    on_host = ["/opt/deploykit/bin/deploykit"]
    config = ["-c", "/mnt/stage/deploykit.toml"]
    plan = fleet.deploykit("plan", "--host", one.url)
    assert plan.returncode == 0 and "no changes" in plan.stderr, plan.stderr
    local_plan = one.box.run([*on_host, "plan", *config], check=False)
    assert (local_plan.returncode, local_plan.stderr) == (0, plan.stderr)

    def steady(report: dict[str, Any]) -> dict[str, Any]:
        """The report less what status' own health requests move (request counts, probe timings)."""
        report["workers"].pop("requests")
        for unit in report["units"]:
            unit.pop("status_text")  # the server's STATUS line counts requests too
        for probe in report["health"]:
            probe.pop("seconds")
        return report

    status = fleet.deploykit("status", "--host", one.url, "--format", "json")
    assert status.returncode == 0, status.stderr
    local_status = one.box.run([*on_host, "status", *config, "--format", "json"])
    assert steady(json.loads(status.stdout)) == steady(json.loads(local_status.stdout))

    doctor = fleet.deploykit("doctor", "--host", one.url, "--format", "json")
    local_doctor = one.box.run([*on_host, "doctor", *config, "--format", "json"], check=False)

    def findings(report: dict[str, Any]) -> dict[str, Any]:
        for check in report["checks"]:
            check.pop("seconds")  # how long each check took
        return report

    assert doctor.returncode == local_doctor.returncode, doctor.stderr
    assert findings(json.loads(doctor.stdout)) == findings(json.loads(local_doctor.stdout))

    logs = fleet.deploykit("logs", "--host", one.url, "-n", "20", "--format", "json")
    local_logs = one.box.run([*on_host, "logs", *config, "-n", "20", "--format", "json"])
    assert logs.returncode == 0 and logs.stdout == local_logs.stdout and logs.stdout.count("\n") == 20

    # an argument a shell would run stays one word: journalctl gets it verbatim and refuses it
    marker = "/tmp/pwned-by-since"
    hostile = fleet.deploykit("logs", "--host", one.url, "--since", f"$(touch {marker}); touch {marker} '\"")
    assert hostile.returncode != 0
    assert f"$(touch {marker}); touch {marker}" in hostile.stderr, hostile.stderr
    assert one.box.run(["test", "-e", marker], check=False).returncode == 1


def test_refusals_name_the_host_write_nothing_and_exit_1(fleet: Fleet) -> None:
    one, two = fleet.sites
    empty = fleet.work / "known_hosts_empty"
    empty.write_text("")
    config = fleet.work / "ssh_config_unknown"
    config.write_text((fleet.work / "ssh_config").read_text().replace(str(fleet.work / "known_hosts"), str(empty)))
    control = fleet.work / "control2"
    control.mkdir(mode=0o700, exist_ok=True)
    env = {**fleet.env, "DEPLOYKIT_SSH_CONFIG": str(config), "DEPLOYKIT_SSH_CONTROL_DIR": str(control)}
    unknown = fleet.deploykit("bootstrap", "--host", two.url, env=env)
    kind, blob = host_public_key()
    keyfile = fleet.work / "hostkey.pub"
    keyfile.write_text(f"{kind} {blob}\n")
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(keyfile)], capture_output=True, text=True,
                                 check=True).stdout.split()[1]  # fmt: skip
    first_line = unknown.stderr.splitlines()[0]
    assert unknown.returncode == 1, unknown.stderr
    assert first_line == (f"error: ssh: the host key of {two.address} is not known (ED25519 key {fingerprint}); "
                          "refusing to connect"), unknown.stderr  # fmt: skip
    assert empty.read_text() == ""  # nothing learnt

    wrong_user = fleet.deploykit("status", "--host", f"ssh://nobody@{two.address}")
    assert wrong_user.returncode == 1
    assert wrong_user.stderr.splitlines()[0].startswith(f"error: ssh: nobody@{two.address} refused the login ("), (
        wrong_user.stderr
    )

    # the same machine's sshd on port 2222, in a mount namespace where systemd is not running (no /run/systemd/system)
    sshd = subprocess.Popen(two.box.command(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs none /run/systemd && exec /usr/sbin/sshd -D -e -p 2222"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        known = fleet.work / "known_hosts"
        kind, blob = host_public_key()
        with known.open("a") as fh:
            fh.write(f"[{two.address}]:2222 {kind} {blob}\n")
        deadline = time.monotonic() + 20
        while True:
            no_systemd = fleet.deploykit("bootstrap", "--host", f"ssh://root@{two.address}:2222")
            if "cannot reach" not in no_systemd.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert no_systemd.returncode == 1, no_systemd.stderr
        assert no_systemd.stderr.splitlines()[0] == (
            f"error: ssh://root@{two.address}:2222: systemd is not running there (no /run/systemd/system); "
            "nothing was changed"
        ), no_systemd.stderr
    finally:
        sshd.terminate()
        sshd.wait(10)
    for path in ("/opt/deploykit", "/var/lib/deploykit-remote"):
        assert two.box.run(["test", "-e", path], check=False).returncode == 1, path


def test_a_killed_client_leaves_the_apply_running_and_the_next_command_reports_it(fleet: Fleet) -> None:
    one = fleet.sites[0]
    # `nginx -t` takes 3 s on this host, so the apply is surely mid-way when the client dies
    one.box.sh("printf '%s\\n' '#!/bin/sh' 'case \" $* \" in *\" -t \"*) sleep 3;; esac' 'exec /usr/sbin/nginx \"$@\"'"
               " > /usr/local/sbin/nginx && chmod 755 /usr/local/sbin/nginx")  # fmt: skip
    try:
        argv = [TOOL, "apply", "--host", one.url, "--yes", "--set", 'app.env={DEMO_GREETING="after the client died"}']
        client = subprocess.Popen(argv, cwd=fleet.work, env=fleet.env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while one.box.run(["systemctl", "is-active", UNIT], check=False).stdout.strip() != "active":
            assert time.monotonic() < deadline and client.poll() is None, "the apply unit never started"
            time.sleep(0.1)
        time.sleep(1)
        os.killpg(client.pid, signal.SIGKILL)  # deploykit and its ssh client, mid-apply
        client.wait()
        while one.box.run(["systemctl", "is-active", UNIT], check=False).stdout.strip() == "active":
            assert time.monotonic() < deadline + 60, "the apply never ended"
            time.sleep(0.2)
        assert one.greeting() == (200, "after the client died")  # it finished on the host
        status = fleet.deploykit("status", "--host", one.url)
        lines = [line for line in status.stderr.splitlines() if "while no client was attached" in line]
        assert len(lines) == 1 and "the apply started" in lines[0] and "succeeded" in lines[0], status.stderr
        assert status.returncode == 0, status.stderr
        once = fleet.deploykit("status", "--host", one.url)
        assert "no client was attached" not in once.stderr  # reported once
    finally:
        one.box.run(["rm", "-f", "/usr/local/sbin/nginx"])


def test_two_hosts_stop_at_the_one_that_fails_its_health_gate(fleet: Fleet) -> None:
    one, two = fleet.sites
    both = ["--host", one.url, "--host", two.url]
    boot = fleet.deploykit("bootstrap", *both)
    assert boot.returncode == 0, boot.stderr
    assert f"{two.url}: install deploykit" in boot.stderr  # (host 1's: nothing to change, after the first test)
    good = fleet.deploykit("apply", *both, "--yes", "--install-app", "wheels", "--set", 'app.env={DEMO_GREETING="v1"}')
    assert good.returncode == 0, good.stderr
    assert one.greeting() == two.greeting() == (200, "v1")

    # host 2 cannot run the new release: its app answers 503 once the greeting is v2 (as a host-specific
    # incompatibility would); its previous release (v1) keeps working there
    two.box.run(["sed", "-i", 's/"status": 200/"status": 503 if os.environ.get("DEMO_GREETING") == "v2" else 200/',
                 "/srv/demo/app/main.py"])  # fmt: skip
    bad = fleet.deploykit("apply", *both, "--yes", "--set", 'app.env={DEMO_GREETING="v2"}',
                          "--set", "deploy.health_timeout=5")  # fmt: skip
    assert bad.returncode == 1, bad.stderr
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert errors[0].startswith("error: health failed: socket: HTTP 503"), bad.stderr  # host 2's own report
    assert "RESTORE INCOMPLETE" not in bad.stderr
    assert errors[-1] == f"error: apply failed on {two.url} (exit 1); {one.url} kept the new release", bad.stderr
    assert one.greeting() == (200, "v2")
    assert 'DEMO_GREETING="v2"' in one.env_file()
    assert two.greeting() == (200, "v1")  # host 2 rolled back to its release, and serves it
    assert 'DEMO_GREETING="v1"' in two.env_file()


def code_project(fleet: Fleet, version: str) -> Path:
    """``work/code``: the example app as a package in ``src`` (deploy.project), code releases on. Each
    VERSION marks its greeting, and the app logs every request it serves (to its journal)."""
    top = fleet.work / "code"
    src = top / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(ROOT / "examples/app", src / "app", ignore=shutil.ignore_patterns("__pycache__", "static"))
    (src / "pyproject.toml").write_text(PYPROJECT)
    main = src / "app" / "main.py"
    text = main.read_text()
    greeting = 'os.environ.get("DEMO_GREETING", "hello")'
    served = "async def _hello(scope: Scope, send: Send) -> None:\n"
    assert greeting in text and served in text
    text = text.replace(greeting, f'{greeting} + " [{version}]"')
    main.write_text(text.replace(served, served + "    print(f\"served {scope['path']}\", flush=True)\n"))
    settings = (ROOT / "examples/deploykit.toml").read_text()
    (top / "deploykit.toml").write_text(f'{settings}\n[deploy]\ncode_releases = true\nproject = "src"\n')
    return top / "deploykit.toml"


def offline_build_env(fleet: Fleet) -> dict[str, str]:
    """pip as on a build machine with a package mirror: deploykit's wheels and setuptools (the app's build
    backend) from folders, no index."""
    tools = fleet.work / "buildtools"
    if not tools.is_dir():
        pip = [str(ROOT / ".venv/bin/python"), "-m", "pip", "download", "--quiet", "--only-binary", ":all:"]
        subprocess.run([*pip, "--dest", str(tools), "setuptools>=61"], check=True, capture_output=True)
    return {**fleet.env, "PIP_FIND_LINKS": f"{fleet.work / 'wheels'} {tools}", "PIP_NO_INDEX": "1"}


def test_apply_builds_deploy_project_here_and_rollback_restores_code_and_config(fleet: Fleet) -> None:
    """`apply --host ssh://` with deploy.project builds the wheelhouse on this machine (the host has no
    project and no network) and installs it as a code release there; `rollback --host ssh://` switches code
    and config back together and the app serves the previous release."""
    one = fleet.sites[0]
    env = offline_build_env(fleet)
    config = str(code_project(fleet, "v1").relative_to(fleet.work))
    v1 = fleet.deploykit("apply", "-c", config, "--host", one.url, "--yes", "--set", 'app.env={DEMO_GREETING="c1"}',
                         env=env)  # fmt: skip
    assert v1.returncode == 0, v1.stderr
    assert "building deploy.project src here" in v1.stderr
    assert one.greeting() == (200, "c1 [v1]")
    first = one.box.run(["readlink", "/srv/demo/current"]).stdout.strip()
    assert first.startswith("releases/")

    code_project(fleet, "v2")
    v2 = fleet.deploykit("apply", "-c", config, "--host", one.url, "--yes", "--set", 'app.env={DEMO_GREETING="c2"}',
                         env=env)  # fmt: skip
    assert v2.returncode == 0, v2.stderr
    assert one.greeting() == (200, "c2 [v2]")
    second = one.box.run(["readlink", "/srv/demo/current"]).stdout.strip()
    assert second != first

    back = fleet.deploykit("rollback", "-c", config, "--host", one.url, "--yes", "--format", "json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["ok"] is True
    assert one.greeting() == (200, "c1 [v1]")  # v1's code and v1's config, together
    assert one.box.run(["readlink", "/srv/demo/current"]).stdout.strip() == first
    assert 'DEMO_GREETING="c1"' in one.env_file()


def test_logs_follow_over_ssh_streams_new_lines_and_ctrl_c_leaves_nothing_on_the_host(fleet: Fleet) -> None:
    one = fleet.sites[0]
    config = str(code_project(fleet, "v1").parent.relative_to(fleet.work) / "deploykit.toml")
    follower = ["pgrep", "-f", "journalctl -u demo.service .*--follow"]
    leftovers = ["pgrep", "-f", "deploykit.remote.agent run demo logs|journalctl -u demo.service|tail -F"]
    assert one.box.run(leftovers, check=False).returncode == 1  # none before
    client = subprocess.Popen([TOOL, "logs", "-f", "-n", "0", "-c", config, "--host", one.url], cwd=fleet.work,
                              env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while one.box.run(follower, check=False).returncode != 0:  # the host follows the journal now
            assert time.monotonic() < deadline and client.poll() is None, client.stderr
            time.sleep(0.2)
        marker = f"/after-start-{os.getpid()}"
        one.box.run(["curl", "-sS", "-o", "/dev/null", "-H", "Host: demo.localhost", f"http://127.0.0.1{marker}"])
        assert client.stdout is not None
        seen: list[str] = []
        os.set_blocking(client.stdout.fileno(), False)
        while not any(f"served {marker}" in line for line in seen):  # the app's own line, from its journal
            assert time.monotonic() < deadline + 30, seen
            seen += (client.stdout.readline() or "").splitlines()
            time.sleep(0.05)
        os.killpg(client.pid, signal.SIGINT)  # Ctrl-C in a terminal: deploykit and its ssh client
        assert client.wait(20) == 0, client.stderr.read() if client.stderr else ""
        assert client.stderr is not None and "Traceback" not in client.stderr.read()
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
            client.wait()
        for pipe in (client.stdout, client.stderr):
            if pipe is not None:
                pipe.close()
    deadline = time.monotonic() + 20
    while (left := one.box.run(leftovers, check=False)).returncode == 0:  # the agent, journalctl, tail: gone
        assert time.monotonic() < deadline, one.box.run(["ps", "-eo", "pid,args"]).stdout
        time.sleep(0.2)
    assert left.stdout == ""
