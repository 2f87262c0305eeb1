"""Pebble, Let's Encrypt's ACME test server, on this machine next to a Veth
container: the container reaches Pebble's ACME API over the link, and Pebble
really validates HTTP-01 against nginx on port 80 of the container's address
(PEBBLE_VA_ALWAYS_VALID is never set). pebble-challtestsrv answers Pebble's
DNS: the test names resolve to the container, any other name to nothing.

Everything listens on this run's own link address (a /30 per run), so
parallel runs never share a port. Why here and not inside the container: the
validation then crosses a real network link to nginx, the way a CA reaches a
server, and the container stays a plain host that only runs deploykit."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploykit.version import DISTRIBUTION

ACME_PORT, MANAGEMENT_PORT, DNS_PORT, CHALLTEST_PORT = 14000, 15000, 8053, 8055


@dataclass(frozen=True)
class Pebble:
    directory: str  # the ACME directory URL
    listener_ca: Path  # trusts Pebble's own HTTPS listener (the ca_bundle setting)
    root: Path  # the root that signs the certificates Pebble issues (curl --cacert)


def core_wheels(wheels: Path, target: Path) -> Path:
    """The wheels of deploykit without its acme extra (what the app's venv needs), copied from WHEELS:
    deploykit's own requirements, followed through the installed distributions of this venv."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted, todo = set(), [DISTRIBUTION]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in wanted:
            continue
        wanted.add(name)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    target.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.glob("*.whl"):
        if canonicalize_name(wheel.name.split("-")[0]) in wanted:
            shutil.copy(wheel, target / wheel.name)
    return target


def missing() -> str | None:
    for tool in ("pebble", "pebble-challtestsrv", "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (make system-packages installs Debian's pebble package)"
    return None


def _listener_cert(folder: Path, address: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for ADDRESS (Pebble's own HTTPS listener)."""
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "listener.key", "listener.csr", "listener.pem")
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = [["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=pebble listener CA",
            "-keyout", str(ca_key), "-out", str(ca)],
           ["openssl", "req", *ec, "-subj", f"/CN={address}", "-keyout", str(key), "-out", str(csr)]]  # fmt: skip
    for argv in run:
        subprocess.run(argv, check=True, capture_output=True)
    ext = folder / "san.ext"
    ext.write_text(f"subjectAltName=IP:{address}\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                    "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    return ca, cert, key


@contextmanager
def pebble(folder: Path, address: str, names: Sequence[str], target: str) -> Iterator[Pebble]:
    """Pebble and its DNS on ADDRESS; NAMES resolve to TARGET (the container), nothing else resolves."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = _listener_cert(folder, address)
    config = {"pebble": {"listenAddress": f"{address}:{ACME_PORT}",
                         "managementListenAddress": f"{address}:{MANAGEMENT_PORT}",
                         "certificate": str(cert), "privateKey": str(key), "httpPort": 80, "tlsPort": 443,
                         "ocspResponderURL": "", "externalAccountBindingRequired": False}}  # fmt: skip
    (folder / "pebble.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    env["PEBBLE_VA_NOSLEEP"] = "1"  # no random 0-15 s wait before each validation; validation stays real
    with (folder / "challtestsrv.log").open("wb") as dns_log, (folder / "pebble.log").open("wb") as log:
        dns = subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "", "-defaultIPv6", "", "-dns01", f"{address}:{DNS_PORT}",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", f"{address}:{CHALLTEST_PORT}"],
            stdout=dns_log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        server = subprocess.Popen(
            ["pebble", "-config", str(folder / "pebble.json"), "-dnsserver", f"{address}:{DNS_PORT}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            context = ssl.create_default_context(cafile=str(ca))
            for name in names:
                _post(f"http://{address}:{CHALLTEST_PORT}/add-a", {"host": name, "addresses": [target]})
            root = folder / "pebble-root.pem"
            root.write_bytes(_get(f"https://{address}:{MANAGEMENT_PORT}/roots/0", context))
            yield Pebble(f"https://{address}:{ACME_PORT}/dir", ca, root)
        finally:
            for proc in (server, dns):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _retry(call: object, url: str) -> bytes:
    deadline = time.monotonic() + 20
    while True:
        try:
            return call()  # type: ignore[operator,no-any-return]
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer: {exc}") from exc
            time.sleep(0.2)


def _post(url: str, body: dict[str, object]) -> bytes:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return _retry(lambda: opener.open(request, timeout=5).read(), url)


def _get(url: str, context: ssl.SSLContext) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    return _retry(lambda: opener.open(url, timeout=5).read(), url)
