"""`nginx -t` on the rendered site, wrapped in a throwaway nginx.conf under a
temporary prefix, so it runs without root and without touching /etc or /var.

The rendered text is tested as it is, except for what `nginx -t` opens: the
log files (pointed into the prefix) and, when the certificate files are not
readable on this machine, a throwaway self-signed pair. Missing certificates
are reported by the files check instead.
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
    wrap(settings, site.content, folder)
    out = run([nginx, "-t", "-p", f"{folder}/", "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")])
    findings = []
    for line in out.text.splitlines():
        match = _LINE.match(line)
        if match:
            level, message = match.groups()
            message = message.replace(str(folder / "site.conf"), site.path)
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
