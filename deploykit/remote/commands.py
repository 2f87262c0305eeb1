"""The CLI's commands on ``ssh://`` hosts: which hosts a command works on
(``where``), and what each command sends there (``Remote``). The CLI parses
options and calls one of these; the session (``session.run_on``) does the SSH.

Rules:
- a command that changes the hosts (apply, rollback) asks first unless told
  ``--yes``: ``confirm`` raises when the answer is no (or nobody can answer);
- an interactive apply without ``--yes`` shows the hosts' plans first, and
  stops there when none of them has anything to change;
- ``logs --follow`` ends with Ctrl-C and exit 0, as it does on this machine;
- apply ships app wheels when it has them: ``--wheelhouse`` (a folder here), or
  a wheelhouse built here from ``deploy.project`` under code releases (as a
  local apply builds it), so the host needs neither the project nor network.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploykit.errors import UsageError
from deploykit.remote.target import SshTarget, choose
from deploykit.settings.model import Settings

Say = Callable[[str], None]
#: Asks "QUESTION" before a change; returns when the answer is yes, raises otherwise.
Confirm = Callable[[str], None]
#: ``session.run_on``'s shape: COMMAND ARGS on each target in turn, APP_WHEELS (a folder here) shipped first.
RunOn = Callable[[Sequence[SshTarget], Settings, str, Sequence[str], Path | None, Say], int]
#: Builds the project of SETTINGS (deploy.project, relative to CONFIG's folder) into OUT; the wheels' folder.
Build = Callable[[Settings, Path | None, Path], Path]


def where(
    flags: Sequence[str] | None,
    configured: Sequence[str],
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, list[SshTarget]]:
    """``(local_target, [])`` for this machine, a --root tree or a container, or ``(None, targets)``
    for ssh:// hosts (from --host, ``$DEPLOYKIT_HOST`` or deploy.hosts; see ``target.choose``)."""
    return choose(flags, os.environ if environ is None else environ, configured, root_given=root is not None)


def _run_on(
    targets: Sequence[SshTarget],
    settings: Settings,
    command: str,
    args: Sequence[str],
    app_wheels: Path | None,
    say: Say,
) -> int:
    from deploykit.remote.session import run_on

    return run_on(targets, settings, command, args, app_wheels=app_wheels, say=say)


def _build(settings: Settings, config: Path | None, out: Path) -> Path:
    from deploykit.apply.run import project_folder
    from deploykit.build import build

    return build(project_folder(settings, config), out).folder


@dataclass(frozen=True)
class Remote:
    """The ssh:// hosts one command works on, with the settings it ships there."""

    targets: list[SshTarget]
    settings: Settings
    say: Say
    run_on: RunOn | None = None  # session.run_on; tests give a fake
    build: Build | None = None  # build.build of deploy.project into a folder; tests give a fake

    def run(self, command: str, args: Sequence[str] = (), app_wheels: Path | None = None) -> int:
        """COMMAND ARGS on every host (the same command line as here, ``--host local`` there); the exit code."""
        run_on = self.run_on or _run_on
        return run_on(self.targets, self.settings, command, list(args), app_wheels, self.say)

    def _confirm(self, confirm: Confirm, what: str) -> None:
        confirm(f"{what.capitalize()} on {', '.join(map(str, self.targets))}?")

    def apply(
        self,
        *,
        config: Path | None,
        preview: bool,
        confirm: Confirm,
        dry_run: bool,
        fmt: str,
        wheelhouse: str | None,
        health: bool,
    ) -> int:
        """Plan (DRY_RUN, or PREVIEW before asking), then apply on each host in turn."""
        if dry_run:
            return self.run("plan")
        if preview and self.run("plan") == 0:
            return 0
        self._confirm(confirm, "apply these changes")
        wheels = Path(wheelhouse) if wheelhouse else None
        if wheels is not None and not wheels.is_dir():
            raise UsageError(
                f"--wheelhouse {wheelhouse}: not a folder here", hint="Over SSH it names a local folder of wheels."
            )
        args = ["--yes", "--format", fmt, *([] if health else ["--no-health"])]
        deploy = self.settings.deploy
        if wheels is not None or not (deploy.code_releases and deploy.project):
            return self.run("apply", args, wheels)
        with tempfile.TemporaryDirectory(prefix="deploykit-build-") as tmp:
            self.say(f"building deploy.project {deploy.project} here")
            built = (self.build or _build)(self.settings, config, Path(tmp))
            return self.run("apply", args, built)

    def rollback(self, *, confirm: Confirm, to: str | None, fmt: str, health: bool) -> int:
        self._confirm(confirm, "roll back")
        args = ["--yes", "--format", fmt, *(["--to", to] if to else []), *([] if health else ["--no-health"])]
        return self.run("rollback", args)

    def logs(self, *, follow: bool, since: str | None, lines: int | None, fmt: str) -> int:
        if follow and len(self.targets) > 1:
            raise UsageError("logs --follow works on one host at a time", hint="Give one --host.")
        args = ["--format", fmt, *(["--follow"] if follow else []), *(["--since", since] if since else [])]
        try:
            return self.run("logs", [*args, *(["--lines", str(lines)] if lines is not None else [])])
        except KeyboardInterrupt:
            if not follow:
                raise
            return 0  # Ctrl-C is how --follow ends, as on this machine (the host's side ends with the connection)
