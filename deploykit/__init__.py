"""deploykit: render, check and deploy an ASGI app's nginx + systemd + Gunicorn stack.

Exports are resolved lazily, so ``deploykit serve`` imports only the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploykit.check import Report, run_checks
    from deploykit.errors import DeployKitError
    from deploykit.render import Bundle, RenderedFile, render
    from deploykit.settings.load import load
    from deploykit.settings.model import Settings

__all__ = ["Bundle", "DeployKitError", "RenderedFile", "Report", "Settings", "load", "render", "run_checks"]

_HOMES = {
    "Bundle": "deploykit.render",
    "RenderedFile": "deploykit.render",
    "render": "deploykit.render",
    "Report": "deploykit.check",
    "run_checks": "deploykit.check",
    "DeployKitError": "deploykit.errors",
    "Settings": "deploykit.settings.model",
    "load": "deploykit.settings.load",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # pyproject.toml's version, the one place it is written
        from importlib.metadata import version

        return version("deploykit")
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'deploykit' has no attribute {name!r}")
