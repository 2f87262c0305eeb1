"""`deploykit status`, `logs` and `doctor` on the deployed Debian 12 host,
run inside it the way an operator would. These tests share the host with
the other real-host tests: whatever one breaks it restores in a finally
block, so the host is healthy and unchanged after each test.

A port-80 squatter is not staged here (nginx holds the port; freeing it
would take the site down for the tests after this file): the unit tests
in tests/operate cover that finding with canned `ss` output."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid
from typing import Any

import pytest

from tests.realhost.conftest import CONFIG, Deployed

pytestmark = pytest.mark.realhost

SITE = "/etc/nginx/sites-available/demo.conf"


def request(deployed: Deployed, path: str) -> None:
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: demo.localhost"]
    done = deployed.box.run([*argv, f"http://127.0.0.1{path}"], check=False)
    assert done.stdout == "200", done.stdout + done.stderr


def status(deployed: Deployed) -> tuple[int, dict[str, Any]]:
    done = deployed.deploykit("status", "-c", CONFIG, "--format", "json")
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError as exc:
        raise AssertionError(f"status printed no JSON ({done.returncode}):\n{done.stdout}\n{done.stderr}") from exc


def doctor(deployed: Deployed) -> tuple[int, list[dict[str, Any]]]:
    done = deployed.deploykit("doctor", "-c", CONFIG, "--format", "json")
    report = json.loads(done.stdout)
    return done.returncode, [f for check in report["checks"] for f in check["findings"]]


def test_status_reports_units_workers_socket_release_and_health(deployed: Deployed) -> None:
    for _ in range(3):
        request(deployed, "/")
    deadline = time.monotonic() + 10  # the server sends STATUS at most every 2 s
    code, report = status(deployed)
    while not report["workers"]["requests"] and time.monotonic() < deadline:
        time.sleep(0.5)
        code, report = status(deployed)
    assert code == 0 and report["ok"] is True and report["problems"] == [], report
    units = {u["name"]: u for u in report["units"]}
    assert list(units) == ["demo.service", "demo.socket", "nginx.service"]
    assert all(u["active"] == "active" and u["ok"] for u in units.values())
    main_pid = deployed.box.run(["systemctl", "show", "demo.service", "-p", "MainPID", "--value"]).stdout.strip()
    assert units["demo.service"]["main_pid"] == int(main_pid)
    workers = report["workers"]
    assert workers["count"] == 2 and len(workers["pids"]) == 2 and workers["requests"] > 0
    ppids = deployed.box.run(["ps", "-o", "ppid=", "-p", ",".join(map(str, workers["pids"]))]).stdout.split()
    assert ppids == [main_pid, main_pid]
    socket = report["socket"]
    assert (socket["path"], socket["kind"], socket["mode"], socket["owner"], socket["group"]) == (
        "/run/demo.sock", "socket", "0660", "root", "www-data",
    )  # fmt: skip
    current = deployed.box.run(["cat", "/var/lib/deploykit/demo/current"]).stdout.strip()
    assert report["release"]["id"] == current >= deployed.first["release"]
    assert report["release"]["status"] == "applied"
    kept = [r["id"] for r in report["releases"]]  # deploy.keep_releases = 5: the oldest may be pruned by now
    assert (
        kept == sorted(kept)
        and 1 <= len(kept) <= 5
        and [r["id"] for r in report["releases"] if r["current"]] == [current]
    )
    assert {h["name"]: h["status"] for h in report["health"]} == {"socket": 200, "nginx": 200}
    table = deployed.deploykit("status", "-c", CONFIG)
    assert table.returncode == 0 and "all units active, health checks pass" in table.stdout, table.stdout


def test_logs_show_the_journal_and_the_access_line_of_a_request(deployed: Deployed) -> None:
    probe = f"/logs-probe-{uuid.uuid4().hex[:8]}"
    request(deployed, probe)
    done = deployed.deploykit("logs", "-c", CONFIG, "-n", "50", "--format", "json")
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(entries) <= 50
    ours = [e["source"] for e in entries if probe in e["message"]]
    assert sorted(ours) == ["demo.service", "nginx access"], entries[-6:]
    seconds = [e["time"][:19] for e in entries]  # nginx stamps whole seconds: merged in time order to the second
    assert seconds == sorted(seconds)
    table = deployed.deploykit("logs", "-c", CONFIG, "-n", "50")
    line = next(line for line in table.stdout.splitlines() if probe in line and "nginx access" in line)
    assert f'"GET {probe} HTTP/1.1" 200' in line


def wait_until_following(deployed: Deployed, timeout: float = 60) -> None:
    """`deploykit logs -f` runs tail -F (from the byte its tail ended at) and journalctl --follow, which
    has opened the journal (with `-n 0` it starts at the end it finds then)."""
    script = ("pgrep -f 'tail -F' >/dev/null\n"
              "for pid in $(pgrep -f 'journalctl .*--follow'); do\n"
              "  ls -l /proc/$pid/fd | grep -q '[.]journal' && exit 0\n"
              "done\nexit 1\n")  # fmt: skip
    deadline = time.monotonic() + timeout
    while deployed.box.sh(script, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"deploykit logs -f did not follow the journal and the nginx logs in {timeout:.0f} s")
        time.sleep(0.2)


def test_logs_follow_prints_a_new_request_until_ctrl_c(deployed: Deployed) -> None:
    argv = deployed.box.command(["sh", "-c", f"echo $$; exec /opt/deploykit/bin/deploykit logs -f -n 0 -c {CONFIG}"])
    probe = f"/follow-probe-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follower:
        assert follower.stdout is not None and follower.stderr is not None
        pid = follower.stdout.readline().strip()
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout or ()])
        reader.start()
        try:
            # Once both follow, the tail's end is fixed and the request's lines come after it. (A fixed
            # 1.5 s for that lost the race on a loaded machine: the request came first, -n 0 showed nothing.)
            wait_until_following(deployed)
            request(deployed, probe)
            deadline = time.monotonic() + 30  # a bound for a hang, not a speed claim
            while time.monotonic() < deadline and sum(probe in line for line in seen) < 2:
                try:
                    seen.append(lines.get(timeout=0.25))
                except queue.Empty:
                    pass
        finally:
            deployed.box.run(["kill", "-INT", pid], check=False)
            code = follower.wait(15)
            reader.join(5)
            errors = follower.stderr.read()
    sources = sorted(line.split("│")[0].split(maxsplit=2)[-1].strip() for line in seen if probe in line)
    assert sources == ["demo.service", "nginx access"], seen  # each source's line, in arrival order
    assert code == 0, errors
    leftovers = deployed.box.run(["pgrep", "-af", "journalctl .*--follow|tail -F"], check=False)
    assert leftovers.returncode == 1, leftovers.stdout


def test_doctor_is_clean_on_the_healthy_host(deployed: Deployed) -> None:
    code, findings = doctor(deployed)
    assert code == 0 and [f for f in findings if f["severity"] != "info"] == [], findings
    table = deployed.deploykit("doctor", "-c", CONFIG)
    assert table.returncode == 0 and "all checks passed" in table.stdout, table.stdout


def test_doctor_finds_a_socket_nginx_cannot_use(deployed: Deployed) -> None:
    deployed.box.run(["chmod", "600", "/run/demo.sock"])
    try:
        code, findings = doctor(deployed)
        _, report = status(deployed)
    finally:
        deployed.box.run(["chmod", "660", "/run/demo.sock"])
    assert code == 3, findings
    [finding] = [f for f in findings if f["severity"] != "info"]
    assert finding["check"] == "socket" and finding["file"] == "/run/demo.sock"
    assert "cannot connect to /run/demo.sock: it is 0600 root:www-data" in finding["message"]
    assert report["socket"]["mode"] == "0600"  # (its nginx probe may pass over an idle upstream keepalive connection)
    request(deployed, "/")  # restored: nginx reaches the app again
    assert doctor(deployed)[0] == 0


def test_doctor_names_a_file_edited_by_hand(deployed: Deployed) -> None:
    before = deployed.box.run(["cat", SITE]).stdout
    deployed.box.sh(f"echo '# edited by hand' >> {SITE}")
    try:
        code, findings = doctor(deployed)
    finally:
        deployed.box.run(["truncate", "-s", str(len(before.encode())), SITE])
    assert deployed.box.run(["cat", SITE]).stdout == before
    assert code == 3, findings
    [finding] = [f for f in findings if f["severity"] != "info"]
    assert (finding["check"], finding["severity"], finding["file"]) == ("drift", "warning", SITE)
    assert f"{SITE} was changed on the host since release" in finding["message"]
    assert doctor(deployed)[0] == 0
