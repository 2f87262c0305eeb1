"""Settings -> /etc/default/<app>: the only place secrets are written."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from deploykit.errors import RenderError
from deploykit.render.bundle import ENV_FILE_MODE, Kind, RenderedFile
from deploykit.render.jinja import render_template
from deploykit.settings.model import Settings
from deploykit.settings.syntax import control_character, lines


def render_env(settings: Settings) -> RenderedFile:
    app = settings.app
    entries = sorted(app.env.items()) + sorted((k, v.get_secret_value()) for k, v in app.secrets.items())
    content = render_template("envfile.j2", app=app.name, entries=entries)
    for key, value in entries:  # the model rejects these; settings built around it must not slip through
        found = control_character(value)
        if found is not None:
            raise RenderError(f"{settings.paths.env_file}: the value of {key} contains {found}; not written")
    written = [line.partition("=")[0] for line in lines(content) if line.strip() and not line.startswith("#")]
    if written != [key for key, _ in entries]:  # one line per variable, by the rule every reader follows
        raise RenderError(f"{settings.paths.env_file}: rendered lines do not match the variables {written}")
    return RenderedFile(
        path=settings.paths.env_file,
        kind=Kind.ENV_FILE,
        content=content,
        mode=ENV_FILE_MODE,
        secret=bool(app.secrets),
    )


MASK = "********"


def mask_secrets(content: str, keys: Iterable[str]) -> str:
    """The env file with the values of KEYS replaced, for screens and diffs.
    Works on any version of the file, so an old secret on disk is hidden too."""
    hidden = set(keys)
    out = []
    for line in lines(content):
        key, sep, _ = line.partition("=")
        out.append(f'{key}="{MASK}"\n' if sep and key in hidden else line)
    return "".join(out)


def masked_diff(path: str, current: str, new: str, secret: bool, keys: Iterable[str]) -> list[str]:
    """Unified diff of one file from CURRENT to NEW. For a file holding secrets the
    values are masked on both sides; a change only in a secret is still shown."""
    old, fresh = current, new
    if secret:
        keys = list(keys)
        old, fresh = mask_secrets(current, keys), mask_secrets(new, keys)
        if old == fresh and current != new:
            fresh += "# (a secret value differs)\n"
    return list(difflib.unified_diff(lines(old), lines(fresh), f"a{path}", f"b{path}"))
