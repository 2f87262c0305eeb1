"""Real-process tests of serve options: TLS, --env-file, --fd, --factory,
--app-dir, --log-config, --limit-max-requests, usage errors, and the Python API."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, require
from tests.polling import SERVER_START_TIMEOUT, wait_for

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.serve_options.apps:info"


class Proc:
    def __init__(self, argv: list[str], port: int, tmp: Path, **popen: object) -> None:
        self.port = port
        self.err = tmp / f"serve-{time.monotonic_ns()}.log"
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(argv, cwd=popen.pop("cwd", ROOT), stderr=err, stdout=err, **popen)  # type: ignore[call-overload]

    def log(self) -> str:
        return self.err.read_text()

    def wait_ready(self) -> None:
        def accepting() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return False
            return True

        wait_for(accepting, SERVER_START_TIMEOUT, lambda: "the server to accept connections: " + self.log())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return int(self.proc.wait(10))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def start(*flags: str, app: str = APP, port: int | None = None, **popen: object) -> Proc:
        port = port if port is not None else free_port()
        argv = [sys.executable, "-m", "deploykit", "serve", app, "--port", str(port), *flags]
        proc = Proc(argv, port, tmp_path, **popen)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()


def get(
    port: int, path: str = "/", context: ssl.SSLContext | None = None, headers: str = ""
) -> tuple[int, dict[str, str]]:
    sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname="localhost")
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_tls(serve: Callable[..., Proc], tmp_path: Path) -> None:
    openssl = require("openssl")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    proc = serve("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    proc.wait_ready()
    context = ssl.create_default_context(cafile=str(cert))
    status, body = get(proc.port, context=context)
    assert (status, body["scheme"]) == (200, "https")
    assert "listening on https://127.0.0.1:" in proc.log()


@pytest.mark.parametrize(
    ("environ", "flags", "client"),
    [
        ({}, (), "203.0.113.5"),  # the default trusts loopback
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1"}, (), "127.0.0.1"),  # the variable replaces the default
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1"}, ("--forwarded-allow-ips", "127.0.0.1"), "203.0.113.5"),  # a flag wins
    ],
)
def test_forwarded_allow_ips_from_the_environment(
    serve: Callable[..., Proc], environ: dict[str, str], flags: tuple[str, ...], client: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FORWARDED_ALLOW_IPS"}
    proc = serve(*flags, env={**env, **environ})
    proc.wait_ready()
    assert get(proc.port, headers="X-Forwarded-For: 203.0.113.5\r\n")[1]["client"] == client


def test_env_file_factory_and_app_dir(serve: Callable[..., Proc], tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text('DK_OPTION_TEST="from \\"file\\""\n')
    proc = serve("--env-file", str(env), "--factory", "--app-dir", str(ROOT), app="tests.serve_options.apps:make_app",
                 cwd=tmp_path)  # fmt: skip
    proc.wait_ready()
    assert get(proc.port)[1]["env"] == 'from "file"'


def test_inherited_fd(serve: Callable[..., Proc]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    proc = serve("--fd", str(listener.fileno()), port=port, pass_fds=(listener.fileno(),))
    listener.close()
    proc.wait_ready()
    assert get(proc.port)[0] == 200


def test_log_config_json(serve: Callable[..., Proc], tmp_path: Path) -> None:
    log_file = tmp_path / "access.log"
    config = {
        "version": 1,
        "handlers": {"f": {"class": "logging.FileHandler", "filename": str(log_file)}},
        "loggers": {"deploykit.access": {"handlers": ["f"], "level": "INFO"}},
    }
    path = tmp_path / "log.json"
    path.write_text(json.dumps(config))
    proc = serve("--log-config", str(path))
    proc.wait_ready()
    get(proc.port, "/logged")
    proc.stop()
    assert '"GET /logged HTTP/1.1" 200' in log_file.read_text()


def test_limit_max_requests_exits_cleanly(serve: Callable[..., Proc]) -> None:
    proc = serve("--limit-max-requests", "3")
    proc.wait_ready()
    for _ in range(3):
        assert get(proc.port)[0] == 200
    assert proc.proc.wait(10) == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "70000"], "--port = 70000: Input should be less than or equal to 65535"),
        (["--forwarded-allow-ips", "not-an-ip"], "--forwarded-allow-ips"),
        (["--header", "nocolon"], "expected NAME:VALUE"),
        (["--workers", "0"], "--workers = 0: Input should be greater than or equal to 1"),
    ],
)
def test_bad_options_are_one_clear_error(flags: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "deploykit", "serve", APP, *flags], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert proc.returncode in (1, 2)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_app_is_a_clear_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "deploykit", "serve", "no_such_module:app"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 1
    assert "error: could not import module 'no_such_module'" in proc.stderr


def test_python_api(tmp_path: Path) -> None:
    port = free_port()
    code = (
        "import sys; from deploykit.server import run; from tests.serve_options.apps import info;"
        f"sys.exit(run(info, port={port}, limit_max_requests=1, log_level='warning'))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def answer() -> int | None:
        try:
            return get(port)[0]
        except OSError:
            return None

    assert wait_for(answer, SERVER_START_TIMEOUT, "the server started by run() to answer") == 200
    assert proc.wait(10) == 0


def test_access_log_template(serve: Callable[..., Proc]) -> None:
    proc = serve("--access-log-format", "{method} {path} -> {status} in {duration_ms}ms")
    proc.wait_ready()
    get(proc.port, "/templated%1b?q=1")
    proc.stop()
    lines = [line for line in proc.log().splitlines() if line.startswith("GET ")]
    assert len(lines) == 1 and lines[0].startswith("GET /templated%1b?q=1 -> 200 in ")
    assert "\x1b" not in proc.log()


def test_access_log_template_with_unknown_field_is_refused() -> None:
    proc = subprocess.run([sys.executable, "-m", "deploykit", "serve", APP, "--access-log-format", "{nope}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert (
        proc.returncode == 1 and "--access-log-format = '{nope}': must be 'text', 'json' or a template" in proc.stderr
    )


def test_log_config_ini(serve: Callable[..., Proc], tmp_path: Path) -> None:
    log_file = tmp_path / "access-ini.log"
    path = tmp_path / "log.ini"
    path.write_text(
        "[loggers]\nkeys=root,access\n[handlers]\nkeys=file\n[formatters]\nkeys=plain\n"
        "[logger_root]\nhandlers=\n[logger_access]\nqualname=deploykit.access\nhandlers=file\nlevel=INFO\n"
        f"[handler_file]\nclass=FileHandler\nargs=('{log_file}',)\nformatter=plain\n"
        "[formatter_plain]\nformat=ini %(message)s\n"
    )
    proc = serve("--log-config", str(path))
    proc.wait_ready()
    get(proc.port, "/ini")
    proc.stop()
    assert "ini 127.0.0.1:" in log_file.read_text() and '"GET /ini HTTP/1.1" 200' in log_file.read_text()
