"""Settings -> /etc/default/<app>: the only place secrets are written."""

from __future__ import annotations

from collections.abc import Iterable

from deploykit.render.bundle import Kind, RenderedFile
from deploykit.render.jinja import render_template
from deploykit.settings.model import Settings


def render_env(settings: Settings) -> RenderedFile:
    app = settings.app
    entries = sorted(app.env.items()) + sorted((k, v.get_secret_value()) for k, v in app.secrets.items())
    content = render_template("envfile.j2", app=app.name, entries=entries)
    return RenderedFile(
        path=settings.paths.env_file,
        kind=Kind.ENV_FILE,
        content=content,
        mode=0o600,
        secret=bool(app.secrets),
    )


MASK = "********"


def mask_secrets(content: str, keys: Iterable[str]) -> str:
    """The env file with the values of KEYS replaced, for screens and diffs.
    Works on any version of the file, so an old secret on disk is hidden too."""
    hidden = set(keys)
    lines = []
    for line in content.splitlines(keepends=True):
        key, sep, _ = line.partition("=")
        lines.append(f'{key}="{MASK}"\n' if sep and key in hidden else line)
    return "".join(lines)
