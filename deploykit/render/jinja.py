"""The one Jinja environment: strict about undefined values, no autoescaping
(the targets are config files, not HTML), and two filters that quote for a
target syntax: ``pyrepr`` for gunicorn's Python config, ``envquote`` for
systemd EnvironmentFile / shell."""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from deploykit.errors import RenderError

_ENV_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "`": "\\`", "$": "\\$"})


def envquote(value: str) -> str:
    """Double-quote for an EnvironmentFile. Inside double quotes systemd, like
    sh, treats a backslash as an escape only before \\ " ` $ — so escaping
    exactly those four gives the same value to both readers. Control
    characters never get here: the settings model rejects them."""
    return '"' + value.translate(_ENV_ESCAPES) + '"'


def pyrepr(value: Any) -> str:
    """A Python literal for gunicorn's conf.py (repr of str/int/float/bool/list)."""
    return repr(value)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deploykit", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - config files, every value validated by the model
    )
    env.filters["envquote"] = envquote
    env.filters["pyrepr"] = pyrepr
    return env


def render_template(template: str, **context: Any) -> str:
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {template}: {exc}") from exc
