"""`deploykit init`: write a commented, valid deploykit.toml."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from deploykit.errors import DeployKitError, FileExistsRefused
from deploykit.render.jinja import render_template
from deploykit.settings.load import PROJECT_FILE, Source, profile_source, shipped_profiles, validate


def default_name(folder: Path) -> str:
    """A valid app name guessed from a directory name."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    cleaned = re.sub(r"^[^a-z]+", "", cleaned)[:32].rstrip("-")
    return cleaned if len(cleaned) >= 2 else "app"


def init_project(
    folder: Path,
    *,
    profile: str,
    name: str,
    module: str,
    server_names: Sequence[str] = ("_",),
    force: bool = False,
) -> Path:
    """Validate the answers against the model, then write FOLDER/deploykit.toml."""
    target = folder / PROJECT_FILE
    if target.exists() and not force:
        raise FileExistsRefused(f"{target} already exists")
    answers = {"app": {"name": name, "module": module}, "nginx": {"server_names": list(server_names)}}
    validate([profile_source(profile, (folder / "profiles",)), Source("init answers", answers)])
    text = render_template(
        "deploykit.toml.j2",
        name=name,
        module=module,
        profile=profile,
        server_names=list(server_names),
        profiles=", ".join(shipped_profiles()),
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DeployKitError(f"cannot write {target}: {exc.strerror}") from exc
    return target
