"""`nginx -t` on the rendered site, wrapped in a throwaway nginx.conf under a
temporary prefix, so it runs without root and without touching /etc or /var.

The rendered text is tested as it is, except for what `nginx -t` opens: the
log files (pointed into the prefix), when the certificate files are not
readable on this machine, a throwaway self-signed pair, and, when the check
runs without root, the listening ports (`nginx -t` binds each one, and only
root may bind a port below net.ipv4.ip_unprivileged_port_start, usually 1024):
such a port P is tested as P + PORT_SHIFT, and findings name P again. Missing
certificates are reported by the files check instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from deploykit.check.findings import CheckResult, Finding
from deploykit.check.tools import INSTALL_HINTS, run, which
from deploykit.render.bundle import Bundle, Kind
from deploykit.settings.model import Settings

NAME = "nginx -t"
_LINE = re.compile(r"^nginx: \[(emerg|alert|crit|error|warn)\] (.*)$")
_LOGS = re.compile(r"^(\s*)(access_log|error_log) (?!off;)[^\s;]+;", re.M)
_CERT = re.compile(r"^(\s*)ssl_certificate [^\s;]+;", re.M)
_KEY = re.compile(r"^(\s*)ssl_certificate_key [^\s;]+;", re.M)
_LISTEN = re.compile(r"^(\s*listen\s+)([^\s;]+)", re.M)
PORT_SHIFT = 64000  # 1..1023 -> 64001..65023: still valid ports, far from the usual ones

WRAPPER = """\
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
{mime}    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
"""


def check_nginx(settings: Settings, bundle: Bundle, workdir: Path) -> CheckResult:
    nginx = which("nginx")
    site = bundle.by_kind(Kind.NGINX_SITE)
    if site is None:
        return CheckResult(NAME, ran=False)
    if nginx is None:
        return CheckResult(
            NAME, (Finding(NAME, "error", "nginx is not installed", hint=INSTALL_HINTS["nginx"]),), False
        )
    folder = workdir / "nginx"
    content, shifted = shift_ports(site.content, 0 if os.geteuid() == 0 else _unprivileged_start())
    wrap(settings, content, folder)
    out = run([nginx, "-t", "-p", f"{folder}/", "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")])
    findings = []
    for line in out.text.splitlines():
        match = _LINE.match(line)
        if match:
            level, message = match.groups()
            message = message.replace(str(folder / "site.conf"), site.path)
            for tested, port in shifted.items():
                message = re.sub(rf":{tested}\b", f":{port}", message)
            findings.append(Finding(NAME, "warning" if level == "warn" else "error", message, file=site.path))
    if out.returncode != 0 and not findings:
        findings.append(Finding(NAME, "error", f"nginx -t failed: {out.text}", file=site.path))
    return CheckResult(NAME, tuple(findings))


def wrap(settings: Settings, site: str, folder: Path) -> Path:
    """Write FOLDER/nginx.conf including FOLDER/site.conf (the testable site); returns nginx.conf."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.conf").write_text(testable(site, settings, folder), encoding="utf-8")
    mime = "/etc/nginx/mime.types"
    mime_line = f"    include {mime};\n" if os.path.exists(mime) else ""
    conf = folder / "nginx.conf"
    conf.write_text(WRAPPER.format(d=folder, mime=mime_line), encoding="utf-8")
    return conf


def _unprivileged_start() -> int:
    """The lowest port a process without root may bind (Linux's sysctl; 1024 when unreadable)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def shift_ports(content: str, below: int) -> tuple[str, dict[int, int]]:
    """CONTENT with each `listen` port under BELOW moved up by PORT_SHIFT (an address without a
    port means 80, as in nginx; unix sockets stay), and the map tested port -> original port.
    A bijection, so duplicate and conflicting listens are still found."""
    shifted: dict[int, int] = {}

    def move(match: re.Match[str]) -> str:
        lead, address = match.groups()
        if address.startswith("unix:"):
            return match.group(0)
        host, port = _split(address)
        if port >= below:
            return match.group(0)
        shifted[port + PORT_SHIFT] = port
        return f"{lead}{host}{':' if host else ''}{port + PORT_SHIFT}"

    return _LISTEN.sub(move, content), shifted


def _split(address: str) -> tuple[str, int]:
    """nginx's listen address as (host, port): `80`, `[::]:80`, `127.0.0.1:80`, `127.0.0.1`, `*:80`."""
    if address.isdigit():
        return "", int(address)
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and (not host.startswith("[") or host.endswith("]")):
        return host, int(port)
    return address, 80


def testable(content: str, settings: Settings, folder: Path) -> str:
    """The site text with the files `nginx -t` would open swapped for throwaway ones.
    Line numbers stay the same, so findings point at the real file's lines."""
    content = _LOGS.sub(lambda m: f"{m.group(1)}{m.group(2)} {folder}/{m.group(2)}.log;", content)
    tls = settings.nginx.tls
    if tls is not None and not (_readable(tls.cert_path) and _readable(tls.key_path)):
        cert, key = _throwaway_cert(folder)
        content = _CERT.sub(lambda m: f"{m.group(1)}ssl_certificate {cert};", content)
        content = _KEY.sub(lambda m: f"{m.group(1)}ssl_certificate_key {key};", content)
    return content


def _readable(path: str) -> bool:
    return os.access(path, os.R_OK)


def _throwaway_cert(folder: Path) -> tuple[str, str]:
    cert, key = folder / "throwaway.crt", folder / "throwaway.key"
    openssl = which("openssl")
    if openssl is not None:
        run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=deploykit-check", "-keyout", str(key), "-out", str(cert)]
        )  # fmt: skip
    return str(cert), str(key)
