"""The two ways into the engine the CLI (and the Ansible role) use:
apply the rendered settings, or apply a kept release again (rollback)."""

from __future__ import annotations

from deploykit.apply.engine import Deploy
from deploykit.apply.recover import pending_recovery
from deploykit.apply.releases import ReleaseStore
from deploykit.apply.report import Progress, Quiet
from deploykit.facts import gather
from deploykit.host.base import Host
from deploykit.plan import Plan, plan
from deploykit.render import render
from deploykit.render.bundle import Bundle
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
    # the release passed its app check and health gate when it was applied; its app code may be gone
    return Deploy(
        host, settings, bundle, source=f"rollback to {target.id}", health=health, check_app=False, progress=show
    )


def plan_with_recovery(host: Host, bundle: Bundle, settings: Settings) -> Plan:
    """What apply would do: an interrupted apply's undo first (shown), then the plan from the state after it."""
    store = ReleaseStore(host, settings.paths.state_dir)
    recovery = pending_recovery(host, store)
    state = gather(host, bundle, settings)
    return plan(bundle, recovery.overlay(state) if recovery is not None else state, settings)
