"""deploykit's version: read once from the installed distribution's metadata
(pyproject.toml is the one place it is written), for `deploykit --version`
and `deploykit serve --version`."""

from __future__ import annotations

from functools import cache
from importlib import metadata

from deploykit.errors import DeployKitError

#: The distribution's name on PyPI (pyproject.toml's project.name; a test holds them equal): what
#: pip installs and what the wheels are named after. The import and the command stay `deploykit`.
DISTRIBUTION = "deploykit-asgi"
#: how a wheel's file name starts (PEP 427 writes the name's "-" as "_")
WHEEL_PREFIX = DISTRIBUTION.replace("-", "_") + "-"


@cache
def version() -> str:
    """The version of the distribution that installed the ``deploykit`` package
    (looked up by package, so a renamed distribution still answers)."""
    names = metadata.packages_distributions().get("deploykit") or ["deploykit"]
    try:
        return metadata.version(names[0])
    except metadata.PackageNotFoundError as exc:
        raise DeployKitError(
            "deploykit's version is unknown: the package is not installed",
            hint="Install it (`pip install -e .` in a checkout, or `make setup`).",
        ) from exc
