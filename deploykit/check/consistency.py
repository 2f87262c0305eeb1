"""Cross-file consistency, read from the rendered files themselves (not from
the settings), so a bug in one renderer is caught by comparing it with the
others. Also the facts of this machine a deploy depends on: the service
user, and the TLS certificate files."""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Iterator
from typing import Any

from deploykit.check.findings import CheckResult, Finding, Severity
from deploykit.check.tools import run, which
from deploykit.render.bundle import Bundle, Kind
from deploykit.render.systemd import exec_split
from deploykit.settings import serving
from deploykit.settings.model import Settings

NAME = "consistency"
FILES = "files"
_UPSTREAM = re.compile(r"^\s*server unix:([^\s;]+)", re.M)


def unit_values(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file; repeated keys keep every value."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def check_consistency(settings: Settings, bundle: Bundle, probed: dict[str, Any] | None) -> CheckResult:
    return CheckResult(NAME, tuple(_consistency(settings, bundle, probed)))


def _consistency(settings: Settings, bundle: Bundle, probed: dict[str, Any] | None) -> Iterator[Finding]:
    site = bundle.by_kind(Kind.NGINX_SITE)
    service = bundle.by_kind(Kind.SERVICE_UNIT)
    socket = bundle.by_kind(Kind.SOCKET_UNIT)
    env = bundle.by_kind(Kind.ENV_FILE)
    assert site is not None and service is not None and env is not None
    svc = unit_values(service.content)
    argv = exec_split(svc["ExecStart"][0])
    sockets: dict[str, str] = {f"{site.path} (upstream)": p for p in _UPSTREAM.findall(site.content)}
    if socket is not None:
        sock = unit_values(socket.content)
        sockets[f"{socket.path} (ListenStream)"] = sock["ListenStream"][0]
        yield from _socket_permissions(settings, sock, svc, socket.path)
    else:
        yield from _self_bound_socket(settings, svc, service.path)
        if settings.app.run_mode == "serve":
            sockets[f"{service.path} (--uds)"] = _flag(argv, "--uds") or "(none)"
    if probed is not None:
        conf = bundle.by_kind(Kind.GUNICORN_CONF)
        for bind in probed.get("values", {}).get("bind", []):
            sockets[f"{conf.path if conf else 'gunicorn'} (bind)"] = bind.removeprefix("unix:")
    if len(set(sockets.values())) > 1:
        detail = ", ".join(f"{where} = {path}" for where, path in sockets.items())
        yield Finding(NAME, "error", f"the files disagree on the app's socket: {detail}", site.path)
    yield from _timeouts(svc, argv, probed, service.path)
    if svc.get("EnvironmentFile", [""])[0].lstrip("-") != env.path:
        yield Finding(NAME, "error", f"EnvironmentFile is not {env.path}", service.path)
    if env.mode & 0o077:
        yield Finding(NAME, "error", f"{env.path} has mode {env.mode:o}; secrets need 0600", env.path)
    proxied = site.content.count("proxy_pass ")
    if site.content.count("X-Forwarded-Proto $scheme") < proxied:
        yield Finding(
            NAME,
            "error",
            "a proxied location does not set X-Forwarded-Proto",
            site.path,
            "without it the app builds http:// URLs behind TLS",
        )
    yield from _websocket_timeouts(settings, site.path)
    yield from _private_state(settings, site.path)


def _timeouts(
    svc: dict[str, list[str]], argv: list[str], probed: dict[str, Any] | None, path: str
) -> Iterator[Finding]:
    stop = float(svc.get("TimeoutStopSec", ["90"])[0])
    graceful_raw = _flag(argv, "--timeout-graceful-shutdown")
    graceful = float(graceful_raw) if graceful_raw else None
    if graceful is None and argv[1:2] == ["serve"]:
        graceful = float(serving.default("timeout_graceful_shutdown"))  # not on the command line: the default
    if probed is not None:
        graceful = float(probed.get("values", {}).get("graceful_timeout", 30))
    if graceful is not None and stop <= graceful:
        yield Finding(
            NAME,
            "error",
            f"TimeoutStopSec={stop:g} is not above the graceful timeout {graceful:g}s",
            path,
            "systemd would SIGKILL workers that are still draining requests",
        )


def _socket_permissions(
    settings: Settings, sock: dict[str, list[str]], svc: dict[str, list[str]], path: str
) -> Iterator[Finding]:
    listen = sock["ListenStream"][0]
    group, mode = sock.get("SocketGroup", ["root"])[0], sock.get("SocketMode", ["0666"])[0]
    if mode != "0666" and group != settings.nginx.user and sock.get("SocketUser", ["root"])[0] != settings.nginx.user:
        yield Finding(
            NAME,
            "error",
            f"nginx runs as {settings.nginx.user!r} but the socket is {mode} group {group!r}",
            path,
            "nginx would get 502 Permission denied",
        )
    if listen.startswith(("/tmp/", "/var/tmp/")) and svc.get("PrivateTmp") == ["yes"]:
        yield Finding(NAME, "error", f"socket {listen} is in /tmp; the service has PrivateTmp=yes", path)
    for runtime in svc.get("RuntimeDirectory", []):
        if listen.startswith(f"/run/{runtime}/"):
            yield Finding(NAME, "error", f"socket {listen} is inside RuntimeDirectory, deleted on every stop", path)


def _self_bound_socket(settings: Settings, svc: dict[str, list[str]], path: str) -> Iterator[Finding]:
    """Without socket activation the app creates its socket itself."""
    socket = settings.paths.socket
    runtime = [f"/run/{d}/" for d in svc.get("RuntimeDirectory", [])]
    if not any(socket.startswith(r) and "/" not in socket.removeprefix(r) for r in runtime):
        yield Finding(
            NAME,
            "error",
            f"socket {socket} is outside the RuntimeDirectory ({', '.join(runtime) or 'none'})",
            path,
            f'the service cannot create it there; set paths.socket = "/run/{settings.app.name}/'
            f'{settings.app.name}.sock" or enable systemd.socket_activation',
        )
    if settings.app.group != settings.nginx.user:
        yield Finding(
            NAME,
            "error",
            f"the socket's group would be {settings.app.group or 'the dynamic user'}, "
            f"not nginx's {settings.nginx.user!r}",
            path,
            f'set app.group = "{settings.nginx.user}" or enable systemd.socket_activation',
        )


def _websocket_timeouts(settings: Settings, path: str) -> Iterator[Finding]:
    ping = settings.server.ws_ping_interval
    for ws in settings.nginx.websockets:
        if ping is None or ws.read_timeout <= ping:
            yield Finding(
                NAME,
                "warning",
                f"location {ws.url}: proxy_read_timeout {ws.read_timeout}s is not above "
                f"the server's ping interval ({ping}); nginx will cut idle WebSockets",
                path,
            )


def _private_state(settings: Settings, path: str) -> Iterator[Finding]:
    """A DynamicUser's StateDirectory= is reached through /var/lib/private (mode 0700), so nginx
    cannot serve files from it."""
    if settings.app.user is not None:
        return
    for folder in settings.app.state_paths().values():
        for static in settings.nginx.static:
            if static.path.rstrip("/") == folder or static.path.startswith(folder + "/"):
                yield Finding(
                    NAME,
                    "error",
                    f"static location {static.url} serves {folder}, a DynamicUser's state directory; "
                    "nginx cannot read it (it lives under /var/lib/private, mode 0700)",
                    path,
                    f"set app.user (and app.group = {settings.nginx.user!r} so nginx can read the files)",
                )


def check_files(settings: Settings, bundle: Bundle) -> CheckResult:
    return CheckResult(FILES, tuple(_files(settings, bundle)))


def _files(settings: Settings, bundle: Bundle) -> Iterator[Finding]:
    service = bundle.by_kind(Kind.SERVICE_UNIT)
    where = service.path if service else None
    user = settings.app.user
    if user is not None and not _user_exists(user):
        if settings.app.create_user:
            yield Finding(FILES, "info", f"user {user!r} does not exist on this machine; apply creates it", where)
        else:
            yield Finding(FILES, "error", f"user {user!r} does not exist and app.create_user is false", where)
    yield from _read_write_paths(settings, where)
    tls = settings.nginx.tls
    if tls is None:
        return
    if tls.acme is not None and not all(os.path.exists(p) for p in (tls.cert_path, tls.key_path)):
        names = ", ".join(settings.nginx.server_names)
        yield Finding(
            FILES,
            "info",
            f"{tls.cert_path}: not here yet; issued by apply (ACME HTTP-01 for {names})",
            settings.paths.nginx_site,
            "nginx -t ran with a throwaway certificate in its place",
        )
        return
    cert_readable = True
    for path in (tls.cert_path, tls.key_path):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            cert_readable = cert_readable and path != tls.cert_path
            hint = "issue the certificate first (e.g. certbot certonly --webroot) or fix nginx.tls"
            yield Finding(FILES, "error", f"{path}: cannot read ({exc.strerror})", settings.paths.nginx_site, hint)
    if cert_readable:
        yield from _certificate_facts(settings)


def _read_write_paths(settings: Settings, where: str | None) -> Iterator[Finding]:
    """systemd sets up ReadWritePaths= as bind mounts before the service starts: a missing
    folder fails the start (status=226/NAMESPACE), and nothing creates it."""
    if settings.systemd.hardening == "off":
        return  # not rendered
    for path in settings.systemd.read_write_paths:
        if not os.path.exists(path):
            yield Finding(
                FILES,
                "error",
                f"ReadWritePaths={path} does not exist on this machine; the service would fail "
                "to start (226/NAMESPACE)",
                where,
                "for the app's own writable data use app.state_directories (systemd creates and owns "
                "those), or create the folder, owned by the service user, before apply",
            )


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def certificate_expiry(file: str, shown: str, where: str, check: str = FILES) -> Iterator[Finding]:
    """Expired (error) or expiring within 14 days (warning), for the PEM certificate in FILE
    (a local file; SHOWN is the path the findings name). `doctor` passes a copy read from the host."""
    openssl = which("openssl")
    if openssl is None:
        return
    if run([openssl, "x509", "-in", file, "-noout", "-checkend", "0"]).returncode != 0:
        yield Finding(check, "error", f"{shown}: the certificate has expired or cannot be parsed", where)
    elif run([openssl, "x509", "-in", file, "-noout", "-checkend", str(14 * 86400)]).returncode != 0:
        yield Finding(check, "warning", f"{shown}: the certificate expires within 14 days", where)


def _certificate_facts(settings: Settings) -> Iterator[Finding]:
    tls = settings.nginx.tls
    openssl = which("openssl")
    if tls is None or openssl is None:
        return
    cert = tls.cert_path
    yield from certificate_expiry(cert, cert, settings.paths.nginx_site)
    if tls.stapling and not run([openssl, "x509", "-in", cert, "-noout", "-ocsp_uri"]).stdout.strip():
        severity: Severity = "error" if tls.ocsp_stapling == "on" else "warning"
        yield Finding(
            FILES,
            severity,
            f"{cert} has no OCSP URL, so ssl_stapling cannot work",
            settings.paths.nginx_site,
            'set nginx.tls.ocsp_stapling = "off" (Let\'s Encrypt ended OCSP in 2025)',
        )
