"""deploykit: render, check and deploy an ASGI app's nginx + systemd + Gunicorn stack."""

from deploykit.check import Report, run_checks
from deploykit.errors import DeployKitError
from deploykit.render import Bundle, RenderedFile, render
from deploykit.settings import Settings, load

__all__ = ["Bundle", "DeployKitError", "RenderedFile", "Report", "Settings", "load", "render", "run_checks"]
__version__ = "0.1.0"
