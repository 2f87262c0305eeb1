"""Pure renderers: Settings -> Bundle. Nothing here touches the host."""

from __future__ import annotations

from deploykit.render.acme import render_renewal
from deploykit.render.bundle import Bundle, Kind, RenderedFile
from deploykit.render.envfile import render_env
from deploykit.render.gunicorn import render_conf
from deploykit.render.nginx import render_site
from deploykit.render.processes import render_processes
from deploykit.render.systemd import render_service, render_socket
from deploykit.settings.model import Settings


def render(settings: Settings) -> Bundle:
    """Every file the host needs, in a stable order."""
    files = [render_site(settings)]
    if settings.app.run_mode == "gunicorn":
        files.append(render_conf(settings))
    files.append(render_service(settings))
    if settings.systemd.socket_activation:
        files.append(render_socket(settings))
    files += render_processes(settings)
    files.append(render_env(settings))
    files += render_renewal(settings)
    return Bundle(tuple(files))


__all__ = ["Bundle", "Kind", "RenderedFile", "render"]
