"""Code releases on the host: each code version in its own folder with its own venv, and a
``current`` link that says which one serves (paths from ``settings.layout``)::

    <app.working_dir>/releases/<id>/venv/         the app and its dependencies, from a wheelhouse
    <app.working_dir>/releases/<id>/.deploykit-code  the code version (``build.code_version``)
    <app.working_dir>/current -> releases/<id>    what the units run

Without ``deploy.code_releases`` a wheelhouse goes into ``app.venv`` in place
(``in_place``), its version in ``<app.venv>/.deploykit-code``: the same plan
(install, restart the service and processes) without a folder or a link.

A release folder is made once and never changed; a switch is one atomic rename of
the link (``Host.symlink``). A wheelhouse whose version matches a folder still on
disk switches to that folder instead of installing again."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from deploykit.build import code_version, wheel_names
from deploykit.errors import DeployKitError
from deploykit.host.base import CommandResult, Host
from deploykit.pipprogress import PipInstall, Update, ignore
from deploykit.plan import CodeChange
from deploykit.settings.layout import RELEASES, VENV, current_link, release_dir, releases_dir
from deploykit.settings.model import Settings

VERSION_FILE = ".deploykit-code"


@dataclass(frozen=True)
class Wheelhouse:
    path: str
    wheels: tuple[str, ...]
    version: str


class CodeFailed(DeployKitError):
    pass


def read_wheelhouse(host: Host, path: str) -> Wheelhouse:
    """The wheels in folder PATH on the host, and their code version."""
    names = wheel_names(host.list_dir(path))
    if not names:
        raise CodeFailed(f"no wheels in {path} on the host", hint="Make one with `deploykit build`.")
    contents = []
    for name in names:
        facts = host.read(f"{path}/{name}")
        if facts is None:
            raise CodeFailed(f"{path}/{name}: cannot read it on the host")
        contents.append((name, facts.content))
    return Wheelhouse(path, tuple(names), code_version(contents))


class CodeReleases:
    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.settings = settings

    @property
    def link(self) -> str:
        return current_link(self.settings)

    def live(self) -> str | None:
        """The release folder ``current`` points at, or None before the first code release."""
        target = self.host.link_target(self.link)
        return posixpath.basename(target.rstrip("/")) if target else None

    def version(self, release: str) -> str | None:
        facts = self.host.read(f"{release_dir(self.settings, release)}/{VERSION_FILE}")
        return facts.content.decode(errors="replace").strip() if facts is not None else None

    def folders(self) -> list[str]:
        return self.host.list_dir(releases_dir(self.settings))

    def change_to(self, wheelhouse: Wheelhouse, new_id: str) -> CodeChange | None:
        """What installing WHEELHOUSE means: None when it is the live code, a switch to a folder
        that holds it already, or a new folder NEW_ID."""
        live = self.live()
        if live is not None and self.version(live) == wheelhouse.version:
            return None
        found = next((f for f in reversed(self.folders()) if self.version(f) == wheelhouse.version), None)
        release = found or new_id
        return CodeChange(release, wheelhouse.version, self.link, f"{RELEASES}/{release}", install=found is None)

    def in_place(self, wheelhouse: Wheelhouse) -> CodeChange | None:
        """Without code releases: WHEELHOUSE goes into ``app.venv`` itself (saved aside for the
        transaction's way back); None when that venv holds its code already."""
        venv = self.settings.app.venv
        facts = self.host.read(f"{venv}/{VERSION_FILE}")
        if facts is not None and facts.content.decode(errors="replace").strip() == wheelhouse.version:
            return None
        return CodeChange("", wheelhouse.version, "", venv, install=True, hooks=False)

    def planned(self, wheelhouse: Wheelhouse, new_id: str) -> CodeChange | None:
        """The code change WHEELHOUSE makes: a release folder (``deploy.code_releases``) or the venv in place."""
        return self.change_to(wheelhouse, new_id) if self.settings.deploy.code_releases else self.in_place(wheelhouse)

    def install_in_place(
        self, change: CodeChange, wheelhouse: Wheelhouse, update: Update = ignore, *, created: bool
    ) -> str:
        """pip-install WHEELHOUSE into the venv CHANGE names (made first when CREATED), then record its version;
        UPDATE hears where it is, as with install."""
        venv = change.target
        count = self._pip_install(venv, wheelhouse, update, make_venv=created)
        self.host.write(f"{venv}/{VERSION_FILE}", f"{change.version}\n".encode(), mode=0o644)
        return f"{count} wheel(s) into {venv}" + ("" if self.host.runs_commands else " (recorded, not run)")

    def _pip_install(
        self, venv: str, wheelhouse: Wheelhouse, update: Update, *, make_venv: bool, compiled: bool = True
    ) -> int:
        """Make VENV (when MAKE_VENV) and pip-install every wheel of WHEELHOUSE into it, with no index;
        UPDATE hears the wheels pip has read, n of N, then the install. The number of wheels."""
        # no --quiet: pip's "Processing <wheel>" lines are the install's progress
        pip = [f"{venv}/bin/python3", "-m", "pip", "install", "--no-index", "--disable-pip-version-check"]
        wheels = [f"{wheelhouse.path}/{name}" for name in wheelhouse.wheels]
        if make_venv:
            update("making the venv")
            result = self.host.run(["python3", "-m", "venv", venv], timeout=900)
            if self.host.runs_commands:  # a staging root records them only
                _check(result, "python3 -m venv")
        reading = PipInstall(update, len(wheels))
        update("reading the wheels", 0, len(wheels))
        argv = [*pip, *([] if compiled else ["--no-compile"]), "--find-links", wheelhouse.path, *wheels]
        result = self.host.run_lines(argv, on_line=reading.line, timeout=900)
        if self.host.runs_commands:
            _check(result, "pip install")
        return len(wheels)

    def switch_back_to(self, release: str) -> CodeChange | None:
        """The switch a rollback makes to the kept folder RELEASE (None: it is live already)."""
        if self.live() == release:
            return None
        version = self.version(release)
        if version is None:
            raise CodeFailed(
                f"the code of release {release} is gone ({release_dir(self.settings, release)} was pruned)",
                hint="Roll back to a release `deploykit status` lists, or raise deploy.keep_releases.",
            )
        return CodeChange(release, version, self.link, f"{RELEASES}/{release}", install=False, hooks=False)

    def install(self, change: CodeChange, wheelhouse: Wheelhouse, update: Update = ignore) -> str:
        """Make the release folder and its venv, and install the wheelhouse into it (no network);
        UPDATE hears where it is (the wheels pip has read, n of N, then the install and the compile)."""
        folder = release_dir(self.settings, change.release)
        venv = f"{folder}/{VENV}"
        self.host.make_dir(releases_dir(self.settings), mode=0o755)
        self.host.make_dir(folder, mode=0o755)
        python = f"{venv}/bin/python3"
        count = self._pip_install(venv, wheelhouse, update, make_venv=True, compiled=False)
        # the app cannot write __pycache__ in its read-only release: compile now, on every core (pip's own
        # compile, one file at a time, took 3x as long here); a file that does not compile (test data
        # some packages ship) is no reason to fail, as with pip
        update("compiling")
        self.host.run([python, "-m", "compileall", "-q", "-q", "-j", "0", f"{venv}/lib"], timeout=900)
        self.host.write(f"{folder}/{VERSION_FILE}", f"{change.version}\n".encode(), mode=0o644)
        recorded = "" if self.host.runs_commands else " (recorded, not run: staging root)"
        return f"{count} wheel(s) into {venv}{recorded}"

    def switch(self, change: CodeChange) -> None:
        self.host.symlink(change.link, change.target)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove every release folder but KEEP and the live one."""
        live = self.live()
        doomed = [f for f in self.folders() if f not in keep and f != live]
        for folder in doomed:
            self.host.remove_tree(release_dir(self.settings, folder))
        return doomed


def _check(result: CommandResult, what: str) -> None:
    if not result.ok:
        tail = "\n".join((result.output() or f"exit {result.returncode}").splitlines()[-8:])
        raise CodeFailed(f"{what}: {tail}")
