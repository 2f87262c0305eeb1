"""`deploykit up` for real: the example project, a real nginx and `deploykit
serve` as plain processes, requests through nginx, and a clean stop."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploykit.cli import main
from tests.polling import wait_for

pytestmark = pytest.mark.tools

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deploykit.toml"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class Up:
    proc: subprocess.Popen[str]
    port: int
    run_dir: Path
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"User-Agent": "tests-up"})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()


def _pump(stream: object, into: list[str], lines: queue.Queue[str] | None) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.append(line)
        if lines is not None:
            lines.put(line)


@contextlib.contextmanager
def deploykit_up(run_dir: Path, *extra: str) -> Iterator[Up]:
    argv = [sys.executable, "-m", "deploykit", "up", "-c", str(EXAMPLE), "--port", "0", "--dir", str(run_dir), *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    up = Up(proc, 0, run_dir)
    lines: queue.Queue[str] = queue.Queue()
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, up.stdout, lines), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, up.stderr, None), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        up.port = _wait_for_url(proc, lines, up)
        yield up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in threads:
            thread.join(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _wait_for_url(proc: subprocess.Popen[str], lines: queue.Queue[str], up: Up) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                time.sleep(0.2)  # let the readers finish
                pytest.fail(f"deploykit up exited with {proc.returncode}:\n{up.output()}")
            continue
        found = re.search(r"ready on http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return int(found.group(1))
    pytest.fail(f"no URL line within {START_TIMEOUT} s:\n{up.output()}")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of PID, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2])


def _processes() -> dict[int, tuple[int, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None:
                found[int(entry)] = info
    return found


def _children(pid: int) -> list[int]:
    return sorted(p for p, (ppid, _) in _processes().items() if ppid == pid)


def _in_groups(groups: set[int]) -> list[int]:
    return sorted(p for p, (_, pgid) in _processes().items() if pgid in groups)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_serves_the_example_through_nginx_then_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    # tmp_path is 0700 (other users cannot enter it), like a checkout under /root: as root, nginx's
    # workers used to run as nobody and `up` refused such a folder
    with deploykit_up(tmp_path / "run") as up:
        children = _children(up.proc.pid)
        assert len(children) == 2, f"expected nginx and deploykit serve, found {children}"
        groups = set(children)  # each child leads its own process group
        # Ready means one worker answers; the second may still be forking on a loaded machine.
        wait_for(lambda: len(_in_groups(groups)) >= 4, 10, "nginx master + worker, serve supervisor + 2 workers")

        status, headers, body = up.get("/")
        assert status == 200, body
        assert headers["server"].startswith("nginx")
        data = json.loads(body)
        assert data["greeting"] == "hello from deploykit"  # app.env reached the app
        assert data["scheme"] == "http" and data["client"] == "127.0.0.1"  # proxy headers trusted from the socket

        status, headers, body = up.get("/static/hello.txt")
        assert status == 200 and body == b"static file served by nginx\n"
        assert headers["content-type"] == "text/plain"  # nginx's mime.types
        assert "etag" in headers  # nginx served the file itself; the app sends no ETag

        started = time.monotonic()
        up.proc.send_signal(stop)
        assert up.proc.wait(STOP_TIMEOUT) == 0, up.output()
        assert time.monotonic() - started < 5
    assert _in_groups(groups) == [], "processes left behind"
    assert not (tmp_path / "run" / "demo.sock").exists()
    out = up.output()
    assert re.search(r'access │ 127\.0\.0\.1 .* "GET / HTTP/1\.1" 200 .*"tests-up"', out), out
    assert " serve │ " in out and "listening on unix:" in out
    assert "stopped: nginx and deploykit serve have exited" in out


def _ws_frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


def test_websocket_echo_through_nginx(open_tmp: Path) -> None:
    with deploykit_up(open_tmp / "run") as up, socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += _read_exactly(sock, 1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        sock.sendall(_ws_frame("hello through nginx"))
        first, second = _read_exactly(sock, 2)
        assert first == 0x81 and second & 0x80 == 0  # a final text frame, unmasked from the server
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", _read_exactly(sock, 2))
        assert _read_exactly(sock, length) == b"hello through nginx"


def test_a_taken_port_is_a_clear_error(open_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["up", "-c", str(EXAMPLE), "--port", str(port), "--dir", str(open_tmp / "run")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: 127.0.0.1:{port} is already in use" in err
    assert "hint: Pick another with --port N, or --port 0 for any free port." in err
    assert not (open_tmp / "run").exists(), "nothing is written or started"


def test_a_config_without_a_static_source_says_what_to_set(open_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = open_tmp / "project"
    project.mkdir()
    text = EXAMPLE.read_text()
    (project / "deploykit.toml").write_text("\n".join(line for line in text.splitlines() if "source" not in line))
    code = main(["up", "-c", str(project / "deploykit.toml"), "--port", "0", "--dir", str(open_tmp / "run")])
    err = capsys.readouterr().err
    assert code == 1
    assert "nginx.static[0] (/static/): /srv/demo/static/ is not on this machine" in err
    assert "nginx.static[0].source" in err


def test_a_server_that_dies_at_start_up_is_reported_with_its_last_lines(open_tmp: Path) -> None:
    argv = [sys.executable, "-m", "deploykit", "up", "-c", str(EXAMPLE), "--port", "0", "--dir", str(open_tmp / "run")]
    argv += ["--set", 'app.module="app.missing:app"', "--set", "server.workers=1"]  # no supervisor retries
    done = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: deploykit serve exited with code 1; its last log lines:" in done.stderr
    assert "could not import module 'app.missing'" in done.stderr
    assert f"hint: the full logs are in {open_tmp / 'run' / 'serve.log'}" in done.stderr
    assert "ready on" not in done.stdout


FLAKY = "import os, sys; i = os.environ['DEPLOYKIT_INSTANCE']; print('flaky ran', i); sys.exit(3 if i == '1' else 0)"
PROCESSES = (
    # its environment is the app's, it runs from the project folder; exec: the sleep is the process
    'processes.ticker.command="echo tick: $DEMO_GREETING in $PWD; exec sleep 1000"',
    # instance 1 fails at once: started again after systemd.restart_sec, as its unit would be; 2 succeeds
    "processes.flaky.command=" + json.dumps(["python", "-c", FLAKY]),
    "processes.flaky.instances=2",
    "systemd.restart_sec=1",
    'timers.nightly.command="echo never"',
    'timers.nightly.on_calendar="daily"',
)


def test_up_runs_each_process_beside_the_server_and_stops_it_with_the_stack(open_tmp: Path) -> None:
    sets = [arg for value in PROCESSES for arg in ("--set", value)]
    with deploykit_up(open_tmp / "run", *sets) as up:
        wait_for(lambda: "tick: hello from deploykit in " in up.output(), 10, "the ticker's first line")
        ticker = open_tmp / "run" / "process-ticker.log"
        assert ticker.read_text() == f"tick: hello from deploykit in {EXAMPLE.parent}\n"
        children = _children(up.proc.pid)
        sleeping = [p for p in children if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"sleep\0")]
        assert len(sleeping) == 1, children
        flaky = open_tmp / "run" / "process-flaky@1.log"
        wait_for(lambda: flaky.read_text().count("flaky ran 1") >= 2, 15, "process flaky@1 started again")
        assert up.get("/")[0] == 200  # the stack serves on
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(STOP_TIMEOUT) == 0, up.output()
    assert _in_groups(set(children)) == [], "processes left behind"
    out = up.output()
    assert "process ticker: echo tick: $DEMO_GREETING in $PWD; exec sleep 1000" in out
    assert "timers are not run by deploykit up: nightly (daily)" in out
    assert "process flaky@2 exited with code 0; not started again (it succeeded)" in out
    assert re.search(r"ticker │ tick: hello from deploykit", out), out
    assert "stopped: the processes, nginx and deploykit serve have exited" in out
