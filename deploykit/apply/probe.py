"""Health checks that run *on the host*: a stdlib-only script handed to the
host's Python with ``-c``, so it works the same on this machine, in a
container and over any other host connection, and needs nothing installed.

It GETs the health path through the app's unix socket and through nginx,
retrying until each answers 2xx/3xx or the deadline passes, and prints one
JSON object: ``{"socket": {...}, "nginx": {...}}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deploykit.host.base import Host
from deploykit.settings.layout import CodeLocation, code_location
from deploykit.settings.model import Settings

SCRIPT = r"""
import http.client, json, socket, ssl, sys, time

spec = json.loads(sys.argv[1])


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def connection(target):
    if "unix" in target:
        return UnixConnection(target["unix"], 5)
    if target.get("tls"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(target["address"], target["port"], timeout=5, context=context)
    return http.client.HTTPConnection(target["address"], target["port"], timeout=5)


def once(target):
    conn = connection(target)
    try:
        conn.request("GET", spec["path"], headers={"Host": target["host"], "User-Agent": "deploykit-health"})
        response = conn.getresponse()
        response.read(65536)
        return response.status, ""
    except FileNotFoundError:
        return 0, "no socket at " + target["unix"] + " (is the socket unit running?)"
    except ConnectionRefusedError:
        return 0, "connection refused: nothing listens there"
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


deadline = time.monotonic() + spec["timeout"]
results = {}
for name, target in spec["targets"].items():
    started = time.monotonic()
    while True:
        status, error = once(target)
        if 200 <= status < 400 or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    results[name] = {"status": status, "error": error, "seconds": round(time.monotonic() - started, 3)}
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Probe:
    name: str
    status: int
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    def describe(self) -> str:
        answer = f"HTTP {self.status}" if self.status else self.error
        return f"{self.name}: {answer} in {self.seconds:.2f}s"


def targets(settings: Settings) -> dict[str, dict[str, Any]]:
    """Where to ask: the app's socket, then nginx on its own loopback port."""
    names = [n for n in settings.nginx.server_names if n != "_" and "*" not in n and not n.startswith("~")]
    host = names[0] if names else "localhost"
    tls = settings.nginx.tls is not None and settings.nginx.tls.redirect_http
    port = settings.nginx.listen_tls if tls else settings.nginx.listen
    return {
        "socket": {"unix": settings.paths.socket, "host": host},
        "nginx": {"address": _loopback(settings.nginx.listen_address), "port": port, "tls": tls, "host": host},
    }


def _loopback(address: str | None) -> str:
    """Where nginx answers on the host itself: its listen address, or loopback when it listens everywhere."""
    if address is None or address in ("0.0.0.0", "*"):
        return "127.0.0.1"
    return "::1" if address in ("::", "[::]") else address.strip("[]")


def python_on(host: Host, settings: Settings, location: CodeLocation | None = None) -> str:
    """The app's venv Python (the live one, or LOCATION's) when it is there, else the system one."""
    venv = f"{(location or code_location(settings)).bin}/python3"
    return venv if host.read(venv) is not None or host.link_target(venv) is not None else "python3"


def probe(host: Host, settings: Settings, timeout: float | None = None) -> list[Probe]:
    """GET the health path through the socket and through nginx, on the host."""
    wait = float(settings.deploy.health_timeout if timeout is None else timeout)
    where = targets(settings)
    spec = {"path": settings.deploy.health_path, "timeout": wait, "targets": where}
    result = host.run([python_on(host, settings), "-c", SCRIPT, json.dumps(spec)], timeout=wait * 2 + 15)
    try:
        answers = json.loads(result.stdout)
    except ValueError:
        reason = result.output() or f"exit {result.returncode}"
        return [Probe(name, 0, f"probe did not run: {reason}", 0.0) for name in where]
    return [Probe(name, a["status"], a["error"], a["seconds"]) for name, a in answers.items()]
