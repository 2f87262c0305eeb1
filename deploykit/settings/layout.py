"""Where the app's code and venv live on the host: the one place that says so.

Without code releases the service runs from ``app.working_dir`` with
``app.venv``. With ``deploy.code_releases`` each code version is a folder
``<app.working_dir>/releases/<id>/`` holding its own ``venv/``, and
``<app.working_dir>/current`` is a symlink to the live one. Units, hooks and
the app check all take their paths from ``code_location`` (the units from
``current``, so a switch is one rename of the link and a restart)."""

from __future__ import annotations

from dataclasses import dataclass

from deploykit.settings.model import Settings

RELEASES = "releases"
CURRENT = "current"
VENV = "venv"


@dataclass(frozen=True)
class CodeLocation:
    working_dir: str
    venv: str

    @property
    def bin(self) -> str:
        return f"{self.venv}/bin"


def code_root(settings: Settings) -> str:
    """The app's root folder (``app.working_dir``): releases/ and current live in it."""
    return settings.app.working_dir.rstrip("/") or "/"


def releases_dir(settings: Settings) -> str:
    return f"{code_root(settings)}/{RELEASES}"


def current_link(settings: Settings) -> str:
    return f"{code_root(settings)}/{CURRENT}"


def release_dir(settings: Settings, release_id: str) -> str:
    return f"{releases_dir(settings)}/{release_id}"


def code_location(settings: Settings, release_id: str | None = None) -> CodeLocation:
    """Where the app's code and venv are: the live ones (through ``current``), or release RELEASE_ID's own."""
    if not settings.deploy.code_releases:
        return CodeLocation(settings.app.working_dir, settings.app.venv)
    folder = current_link(settings) if release_id is None else release_dir(settings, release_id)
    return CodeLocation(folder, f"{folder}/{VENV}")
