"""The two ways into the engine the CLI (and the Ansible role) use:
apply the rendered settings, or apply a kept release again (rollback)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from deploykit.apply.code import CodeReleases, read_wheelhouse
from deploykit.apply.engine import Deploy
from deploykit.apply.recover import pending_recovery
from deploykit.apply.releases import ReleaseStore
from deploykit.apply.report import Progress, Quiet
from deploykit.build import build
from deploykit.facts import gather
from deploykit.host.base import Host
from deploykit.pipprogress import Update, ignore
from deploykit.plan import Plan, plan
from deploykit.render import render
from deploykit.render.bundle import Bundle
from deploykit.settings.load import PROJECT_FILE
from deploykit.settings.model import Settings


def deploy_settings(
    settings: Settings,
    host: Host,
    *,
    install_app: str | None = None,
    health: bool = True,
    progress: Progress | None = None,
) -> Deploy:
    """A deploy of the stack these settings render."""
    show = progress or Quiet()
    return Deploy(host, settings, render(settings), install_app=install_app, health=health, progress=show)


def deploy_release(
    settings: Settings, host: Host, release_id: str | None, *, health: bool = True, progress: Progress | None = None
) -> Deploy:
    """A deploy that puts release RELEASE_ID (default: the one before the current) back."""
    store = ReleaseStore(host, settings.paths.state_dir)
    target = store.get(release_id) if release_id else store.previous()
    bundle = store.bundle(target)
    show = progress or Quiet()
    # the release passed its app check and health gate when it was applied; with code releases its
    # code folder comes back with it (switched in the same transaction), else its app code may be gone
    code = target.code_release if settings.deploy.code_releases and target.code_release else None
    return Deploy(
        host,
        settings,
        bundle,
        source=f"rollback to {target.id}",
        health=health,
        check_app=False,
        progress=show,
        code_target=code,
    )


def plan_with_recovery(host: Host, bundle: Bundle, settings: Settings, wheelhouse: str | None = None) -> Plan:
    """What apply would do: an interrupted apply's undo first (shown), then the plan from the state after it
    (with the code change WHEELHOUSE makes)."""
    store = ReleaseStore(host, settings.paths.state_dir)
    recovery = pending_recovery(host, store)
    state = gather(host, bundle, settings)
    code = None
    if wheelhouse is not None:
        code = CodeReleases(host, settings).planned(read_wheelhouse(host, wheelhouse), "<new>")
    return plan(bundle, recovery.overlay(state) if recovery is not None else state, settings, code)


def project_folder(settings: Settings, config: Path | None) -> Path:
    """deploy.project, relative to the folder of deploykit.toml; that folder itself when unset."""
    base = (config if config is not None else Path(PROJECT_FILE)).resolve().parent
    return base / settings.deploy.project if settings.deploy.project else base


def builds_here(settings: Settings) -> bool:
    """Whether apply builds the wheelhouse itself (code releases with deploy.project set)."""
    return settings.deploy.code_releases and bool(settings.deploy.project)


def built_wheelhouse(host: Host, settings: Settings, config: Path | None, update: Update = ignore) -> str | None:
    """With code releases and deploy.project set, build the project here and copy the wheels to the
    host (``<state_dir>/wheelhouse``); the wheelhouse path on the host, or None when there is nothing to build."""
    if not builds_here(settings):
        return None
    with tempfile.TemporaryDirectory(prefix="deploykit-build-") as tmp:
        built = build(project_folder(settings, config), Path(tmp), update=update)
        target = f"{settings.paths.state_dir}/wheelhouse"
        ReleaseStore(host, settings.paths.state_dir).ensure_private()
        host.remove_tree(target)
        host.make_dir(target, mode=0o700)
        for name in built.wheels:
            host.write(f"{target}/{name}", (built.folder / name).read_bytes(), mode=0o600)
    return target
