"""[nginx.tls.acme] -> the renewal service and its timer (nothing without acme).

The service runs certbot's renew for this app's certificate and reloads nginx
when it renewed one. It runs as root (it writes the root-only key and talks to
systemd for the reload) inside a sandbox: the file system read-only except the
client's folder and the ACME webroot, no capabilities, no kernel or device
access, a system-call allow list. The timer fires twice a day at a random
point of each half day, so a fleet does not hit the CA at once."""

from __future__ import annotations

from deploykit.render.bundle import Kind, RenderedFile
from deploykit.render.jinja import render_template
from deploykit.render.systemd import STRICT_SANDBOX, exec_line
from deploykit.settings.model import Settings
from deploykit.tls.certbot import acme_of, environment, renew_argv


def _root_sandbox() -> tuple[tuple[str, str], ...]:
    """The app's strict sandbox (render/systemd.py), adjusted for a job that runs as root: no
    user namespace (root must own the keys it writes), the privileged calls certbot needs
    (chown, chmod of the keys), no writable+executable memory, and files only root reads."""
    found: list[tuple[str, str]] = []
    for key, value in STRICT_SANDBOX:
        if key == "PrivateUsers":
            continue
        if key == "SystemCallFilter" and value.startswith("~"):
            value = "~@resources"
        found.append((key, "0077" if key == "UMask" else value))
        if key == "LockPersonality":
            found.append(("MemoryDenyWriteExecute", "yes"))
    return tuple(found)


HARDENING = _root_sandbox()


def render_renewal(settings: Settings) -> list[RenderedFile]:
    acme = acme_of(settings)
    if acme is None:
        return []
    paths = settings.paths
    timer = paths.acme_timer_unit.rsplit("/", 1)[-1]
    service = paths.acme_service_unit.rsplit("/", 1)[-1]
    writable = [acme.config_dir, settings.nginx.acme_root or acme.config_dir]
    service_text = render_template(
        "acme_renew.service.j2",
        app=settings.app.name,
        exec_start=exec_line(renew_argv(settings, env=False)),
        environment=environment(acme),
        hardening=[*HARDENING, ("ReadWritePaths", " ".join(dict.fromkeys(writable)))],
        timer=timer,
    )
    timer_text = render_template("acme_renew.timer.j2", app=settings.app.name, service=service)
    return [
        RenderedFile(path=paths.acme_service_unit, kind=Kind.ACME_SERVICE, content=service_text),
        RenderedFile(path=paths.acme_timer_unit, kind=Kind.ACME_TIMER, content=timer_text),
    ]
