"""Apply a rendered bundle to a host as one transaction.

Order: lock → facts → plan (nothing to do: stop, say so) → confirm → prepare
(service user, directories, optional app install) → save the release (the
files about to be replaced first) → write files atomically and link the site
→ validate on the host (``nginx -t``, ``systemd-analyze verify``) →
``daemon-reload``, enable, start/restart/reload → health through the socket
and through nginx. When any step after "prepare" fails, ``restore`` puts the
previous files, site link, unit states, user, directories and venv back, and
checks that the old stack answers again."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from deploykit.apply.probe import probe
from deploykit.apply.releases import Release, ReleaseStore
from deploykit.apply.report import Progress, Quiet, Report, Step, StepStatus
from deploykit.apply.restore import restore
from deploykit.errors import ApplyFailed, DeployKitError
from deploykit.facts import HostState, gather
from deploykit.host.base import CommandResult, Host
from deploykit.plan import LinkSite, Plan, ReloadNginx, Systemctl, WriteFile, plan
from deploykit.render.bundle import Bundle, Kind
from deploykit.settings.model import Settings

UNIT_SUFFIXES = (".service", ".socket")


class StepFailed(Exception):
    """A step's reason for failing, caught by the engine (never leaves this package)."""


@dataclass
class Prepared:
    """What "prepare" created or set aside, so a failure can undo it."""

    user: str | None = None
    group: str | None = None
    dirs: list[str] = field(default_factory=list)
    venv_created: str | None = None
    venv_saved: str | None = None
    code_changed: bool = False


Confirm = Callable[[Plan], bool]


@dataclass
class Deploy:
    host: Host
    settings: Settings
    bundle: Bundle
    source: str = "apply"
    install_app: str | None = None  # a directory of wheels on the host
    health: bool = True
    progress: Progress = field(default_factory=Quiet)
    report: Report = field(default_factory=Report)
    prepared: Prepared = field(default_factory=Prepared)
    #: service actions started so far: restore undoes only these (a failed nginx -t reloads nothing)
    executed: list[Systemctl | ReloadNginx] = field(default_factory=list)
    #: the release this apply records, once "save the release" has begun it
    release: Release | None = None

    def run(self, confirm: Confirm = lambda _plan: True) -> Report:
        self.report.source = self.source
        self.host.make_dir(self.settings.paths.state_dir, mode=0o700)
        with self.host.lock(f"{self.settings.paths.state_dir}/lock"):
            before = gather(self.host, self.bundle, self.settings)
            pending = plan(self.bundle, before, self.settings)
            self.report.actions = [a.describe() for a in pending.actions]
            self.report.diff = list(pending.diff)
            if not pending.changes and self.install_app is None:
                return self.report
            if not confirm(pending):
                raise DeployKitError("apply cancelled; nothing was changed", hint="Pass --yes to skip the question.")
            with _term_as_interrupt():
                self._transaction(before, pending)
        return self.report

    # the transaction
    def _transaction(self, before: HostState, pending: Plan) -> None:
        store = ReleaseStore(self.host, self.settings.paths.state_dir)
        try:
            self._step("prepare the host", self._prepare)
        except StepFailed as exc:
            self._undo(before, pending, store, "prepare the host", exc)
        pending = self._with_code_restart(pending, before)
        if not pending.changes:
            self._step("app packages", lambda: "already installed, no change")
            return
        self.report.changed = True
        self.report.actions = [a.describe() for a in pending.actions]
        for name, action in self._steps(pending, before, store):
            try:
                self._step(name, action)
            except StepFailed as exc:
                self._undo(before, pending, store, name, exc)
        assert self.release is not None
        store.finish(self.release, "applied")
        self._cleanup_prepare()
        pruned = store.prune(self.settings.deploy.keep_releases)
        done = self.release.id + (f"; pruned {len(pruned)}" if pruned else "")
        self._step("record the release", lambda: done)

    def _steps(self, pending: Plan, before: HostState, store: ReleaseStore) -> list[tuple[str, Callable[[], str]]]:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("save the release", lambda: self._save_release(before, store)),
            ("write files", lambda: self._write(pending)),
            ("validate on the host", lambda: self._validate(pending)),
            ("services", lambda: self._services(pending)),
        ]
        if self.health and self.host.runs_commands:
            steps.append(("health", self._health))
        return steps

    def _step(self, name: str, action: Callable[[], str]) -> None:
        self.progress.start(name)
        started = time.monotonic()
        try:
            detail = action()
        except (StepFailed, DeployKitError, OSError, KeyboardInterrupt) as exc:
            # a host error (a write refused, a disk full) or Ctrl-C fails the step like a failed command
            why = "interrupted (Ctrl-C or SIGTERM)" if isinstance(exc, KeyboardInterrupt) else str(exc)
            self._record(name, "failed", why, started)
            if isinstance(exc, StepFailed):
                raise
            raise StepFailed(why) from exc
        self._record(name, "ok", detail, started)

    def _record(self, name: str, status: StepStatus, detail: str, started: float) -> None:
        step = Step(name, status, detail, round(time.monotonic() - started, 3))
        self.report.steps.append(step)
        self.progress.done(step)

    def _save_release(self, before: HostState, store: ReleaseStore) -> str:
        """The files about to be replaced, then the new ones, before anything changes."""
        self.release = store.begin(self.bundle, before, self.source)
        self.report.release = self.release.id
        return "previous files saved"

    def _undo(self, before: HostState, pending: Plan, store: ReleaseStore, name: str, exc: Exception) -> None:
        self.report.failed_step, self.report.error = name, str(exc)
        self.progress.start("restore the previous state")
        started = time.monotonic()
        problems = restore(self, before, pending)
        self.report.restored = not problems
        detail = "previous state back in place" if not problems else "; ".join(problems)
        self._record("restore the previous state", "ok" if not problems else "failed", detail, started)
        if self.release is not None:
            store.finish(self.release, "rolled-back" if not problems else "failed", f"{name}: {exc}")
        outcome = "the previous state was restored" if not problems else "RESTORE INCOMPLETE: " + "; ".join(problems)
        headline = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApplyFailed(
            f"{name} failed: {headline}; {outcome}",
            restored=not problems,
            hint="Fix the cause above and apply again; `deploykit doctor` looks for the usual problems.",
        ) from exc

    # prepare
    def _prepare(self) -> str:
        done = [self._ensure_user(), *self._ensure_dirs(), self._install_app()]
        return "; ".join(d for d in done if d) or "nothing to prepare"

    def _ensure_user(self) -> str:
        app = self.settings.app
        if app.user is None:
            return "DynamicUser: systemd allocates the service user"
        if self.host.run(["id", "-u", app.user]).ok or not app.create_user:
            return ""
        group = app.group or app.user
        if group != app.user and not self.host.run(["getent", "group", group]).ok:
            _check(self.host.run(["groupadd", "--system", group]), "groupadd")
            self.prepared.group = group
        argv = [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            app.working_dir,
            "--shell",
            "/usr/sbin/nologin",
        ]
        argv += ["--gid", group] if group != app.user else ["--user-group"]
        _check(self.host.run([*argv, app.user]), "useradd")
        self.prepared.user = app.user
        return f"created user {app.user}"

    def _ensure_dirs(self) -> list[str]:
        wanted = [self.settings.app.working_dir] if self.install_app else []
        made = [d for d in wanted if self.host.make_dir(d, mode=0o755)]
        self.prepared.dirs += made
        return [f"created {d}" for d in made]

    def _install_app(self) -> str:
        if self.install_app is None:
            return ""
        venv = self.settings.app.venv
        wheels = [f"{self.install_app}/{n}" for n in self.host.list_dir(self.install_app) if n.endswith(".whl")]
        if not wheels:
            raise StepFailed(f"no wheels in {self.install_app} on the host")
        if self.host.read(f"{venv}/bin/python3") is None and self.host.link_target(f"{venv}/bin/python3") is None:
            _check(self.host.run(["python3", "-m", "venv", venv], timeout=300), "python3 -m venv")
            self.prepared.venv_created = venv
            before = ""
        else:
            before = self.host.run([f"{venv}/bin/python3", "-m", "pip", "freeze"]).stdout
            saved = f"{venv}.deploykit-previous"
            self.host.remove_tree(saved)
            _check(self.host.run(["cp", "-a", venv, saved], timeout=300), "saving the venv")
            self.prepared.venv_saved = saved
        pip = [f"{venv}/bin/python3", "-m", "pip", "install", "--quiet", "--no-index", "--disable-pip-version-check"]
        _check(self.host.run([*pip, "--find-links", self.install_app, *wheels], timeout=600), "pip install")
        after = self.host.run([f"{venv}/bin/python3", "-m", "pip", "freeze"]).stdout
        self.prepared.code_changed = before != after
        return f"installed {len(wheels)} wheel(s) into {venv}" if before != after else "app packages unchanged"

    def _with_code_restart(self, pending: Plan, before: HostState) -> Plan:
        """New app code needs a restart of a running service the plan does not already (re)start."""
        if not self.prepared.code_changed:
            return pending
        service = _unit_name(self.bundle, Kind.SERVICE_UNIT)
        starts = any(isinstance(a, Systemctl) and a.unit == service for a in pending.actions)
        if starts or before.files.get(self.settings.paths.service_unit) is None:
            return pending
        return Plan((*pending.actions, Systemctl("restart", service)), pending.diff)

    def _cleanup_prepare(self) -> None:
        if self.prepared.venv_saved is not None:
            self.host.remove_tree(self.prepared.venv_saved)

    # change
    def _write(self, pending: Plan) -> str:
        files = self.bundle.as_mapping()
        count = 0
        for action in pending.actions:
            if isinstance(action, WriteFile):
                file = files[action.path]
                self.host.write(file.path, file.content.encode(), mode=file.mode, owner=file.owner, group=file.group)
                count += 1
            elif isinstance(action, LinkSite):
                self.host.symlink(action.link, action.target)
        return f"{count} file(s) written"

    def _validate(self, pending: Plan) -> str:
        if not self.host.runs_commands:
            return "skipped: commands are not run on a staging root"
        done = []
        if any(isinstance(a, ReloadNginx) for a in pending.actions):
            result = self.host.run(["nginx", "-t"])
            if not result.ok:
                raise StepFailed(f"nginx -t: {_tail(result)}")
            done.append("nginx -t ok")
        units = [
            a.path for a in pending.actions if isinstance(a, WriteFile) and a.path.endswith((".service", ".socket"))
        ]
        if units:
            result = self.host.run(["systemd-analyze", "verify", "--man=no", *units])
            ours = [line for line in result.output().splitlines() if any(PurePosixPath(u).name in line for u in units)]
            if ours or result.returncode not in (0,):
                raise StepFailed(f"systemd-analyze verify: {' | '.join(ours) or _tail(result)}")
            done.append("systemd-analyze verify ok")
        return ", ".join(done) or "nothing to validate"

    def _services(self, pending: Plan) -> str:
        done = []
        for action in pending.actions:
            if isinstance(action, Systemctl | ReloadNginx):
                self.executed.append(action)
            if isinstance(action, Systemctl):
                self._systemctl(action.verb.split() + ([action.unit] if action.unit else []))
                done.append(action.describe())
            elif isinstance(action, ReloadNginx):
                self._systemctl(["reload-or-restart", "nginx.service"])
                done.append("systemctl reload nginx")
        return "; ".join(done) or "no service changes"

    def _systemctl(self, args: list[str]) -> None:
        if not self.host.runs_commands:
            self.host.run(["systemctl", *args])
            return
        if args[0] in ("restart", "start"):
            self.host.run(["systemctl", "reset-failed", args[-1]])
        result = self.host.run(["systemctl", *args], timeout=180)
        if not result.ok:
            log = self.host.run(["journalctl", "-u", args[-1], "-n", "12", "--no-pager", "-o", "cat"]).stdout.strip()
            raise StepFailed(f"systemctl {' '.join(args)}: {_tail(result)}" + (f"\n{log}" if log else ""))

    def _health(self) -> str:
        results = probe(self.host, self.settings)
        self.report.health = results
        failed = [r for r in results if not r.ok]
        if failed:
            raise StepFailed("; ".join(r.describe() for r in failed))
        return ", ".join(r.describe() for r in results)


@contextlib.contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, an Ansible timeout) restores the host like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _unit_name(bundle: Bundle, kind: Kind) -> str:
    file = bundle.by_kind(kind)
    return PurePosixPath(file.path).name if file is not None else ""


def _check(result: CommandResult, what: str) -> None:
    if not result.ok:
        raise StepFailed(f"{what}: {_tail(result)}")


def _tail(result: CommandResult, lines: int = 8) -> str:
    text = result.output() or f"exit {result.returncode}"
    return "\n".join(text.splitlines()[-lines:])
