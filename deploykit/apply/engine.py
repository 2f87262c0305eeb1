"""Apply a rendered bundle to a host as one transaction.

Order: lock → an interrupted apply's journal? restore it first → facts → plan
(nothing to do: stop, say so) → confirm → journal → prepare (service user,
directories) → install new app code (see below) → save the release (the files about to be
replaced first) → check the new app (imports, lifespan, as the service) →
write files atomically and link the site → validate on the host (``nginx
-t``, ``systemd-analyze verify``) → ``daemon-reload``, enable,
start/restart/reload → health through the socket and through nginx. When any
step fails, ``restore`` undoes what the journal says was done (previous
files, site link, unit states, user, directories, venv) and checks that the
old stack answers again. See ``journal`` for what a killed apply leaves.

With ``deploy.code_releases`` a code change adds (see plan.py for the order):
install the new release folder first, check the app and run the
``before_switch`` hooks in it, switch ``current`` after the file writes, and run
the ``after_switch`` hooks after the health gate; a failure anywhere switches the
link back, restarts the old release and removes the new folder. Without code
releases, new code (``--wheelhouse``, or its old name ``--install-app``) goes
into ``app.venv`` in place by the same plan: the venv is copied aside first and
put back by ``restore``; no hooks, no switch."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import PurePosixPath
from typing import Any

from deploykit.apply import hooks
from deploykit.apply import journal as journals
from deploykit.apply.appcheck import check_app
from deploykit.apply.code import CodeReleases, read_wheelhouse
from deploykit.apply.journal import Journal, Prepared, UnitBefore
from deploykit.apply.probe import probe
from deploykit.apply.recover import Recovery, pending_recovery
from deploykit.apply.releases import Release, ReleaseStore
from deploykit.apply.report import Progress, Quiet, Report, Step, StepStatus
from deploykit.apply.restore import restore
from deploykit.errors import ApplyFailed, DeployKitError
from deploykit.facts import HostState, bundle_workers, gather, worker_groups
from deploykit.host.base import CommandResult, Host
from deploykit.plan import CodeChange, LinkSite, Plan, ReloadNginx, RemoveFile, Systemctl, WriteFile, plan
from deploykit.render.bundle import Bundle, Kind
from deploykit.render.nginx import render_site
from deploykit.settings.layout import code_location, release_dir
from deploykit.settings.model import Settings
from deploykit.tls.certbot import acme_of
from deploykit.tls.issue import issue

UNIT_SUFFIXES = (".service", ".socket", ".timer", ".target")


class StepFailed(Exception):
    """A step's reason for failing, caught by the engine (never leaves this package)."""


Confirm = Callable[[Plan], bool]


@dataclass
class Deploy:
    host: Host
    settings: Settings
    bundle: Bundle
    source: str = "apply"
    install_app: str | None = None  # the wheelhouse: a directory of wheels on the host
    health: bool = True
    #: prove the new app imports and starts (as the service) before touching the service
    check_app: bool = True
    progress: Progress = field(default_factory=Quiet)
    report: Report = field(default_factory=Report)
    #: what this apply has done so far (also on disk, for the next run when this one is killed)
    journal: Journal | None = None
    #: the release this apply records, once "save the release" has begun it
    release: Release | None = None
    #: rollback: the code release folder to switch back to (code releases only)
    code_target: str | None = None
    #: the code change this apply makes (a release switch, or app.venv in place), decided when planning
    code: CodeChange | None = None
    release_id: str = ""

    @property
    def state_dir(self) -> str:
        return self.settings.paths.state_dir

    def run(self, confirm: Confirm = lambda _plan: True) -> Report:
        self.report.source = self.source
        store = ReleaseStore(self.host, self.state_dir)
        store.ensure_private()
        with self.host.lock(f"{self.state_dir}/lock"):
            recovery = pending_recovery(self.host, store)
            self.report.warnings = store.scan()[1]
            before = gather(self.host, self.bundle, self.settings)
            self.release_id = store.new_id()
            self.code = self._code_change()
            pending = plan(self.bundle, recovery.overlay(before) if recovery else before, self.settings, self.code)
            self.report.actions = [a.describe() for a in pending.actions]
            self.report.diff = list(pending.diff)
            if not pending.changes:
                return self.report
            if not confirm(pending):
                raise DeployKitError("apply cancelled; nothing was changed", hint="Pass --yes to skip the question.")
            with _signals_as_interrupt():
                if recovery is not None:
                    self._step("recover the interrupted apply", lambda: self._recover(recovery, store))
                    self.report.changed = True
                    before = gather(self.host, self.bundle, self.settings)
                    self.code = self._code_change()
                    pending = plan(self.bundle, before, self.settings, self.code)
                    self.report.actions = [a.describe() for a in pending.actions]
                if pending.changes:
                    self._transaction(before, pending, store)
        return self.report

    def _code_change(self) -> CodeChange | None:
        """The code change: to the rollback's folder, to the wheelhouse's code, or none."""
        code = CodeReleases(self.host, self.settings)
        if self.code_target is not None:
            return code.switch_back_to(self.code_target)
        if self.install_app is None:
            if self.settings.deploy.code_releases and code.live() is None and self.host.runs_commands:
                raise DeployKitError(
                    "deploy.code_releases is on but no code release is in place yet",
                    hint="Pass the app's wheelhouse (--wheelhouse DIR, made by `deploykit build`), "
                    "or set deploy.project so apply builds it.",
                )
            return None
        return code.planned(read_wheelhouse(self.host, self.install_app), self.release_id)

    def _recover(self, recovery: Recovery, store: ReleaseStore) -> str:
        problems = recovery.undo(self.host, store)
        if problems:
            raise StepFailed("RESTORE INCOMPLETE: " + "; ".join(problems))
        return f"release {recovery.journal.release} undone (killed during {recovery.journal.step!r})"

    # the transaction
    def _transaction(self, before: HostState, pending: Plan, store: ReleaseStore) -> None:
        units = []
        names = [_unit_name(self.bundle, kind) for kind in (Kind.SOCKET_UNIT, Kind.SERVICE_UNIT, Kind.ACME_TIMER)]
        names += [g.main for g in [*bundle_workers(self.bundle), *worker_groups(before.orphans)]]
        for name in filter(None, names):
            facts = before.units.get(name)
            units.append(UnitBefore(name, facts.enabled if facts else None, facts.active if facts else None))
        code = CodeReleases(self.host, self.settings)
        switches = self.code is not None and bool(self.code.link)
        self.journal = Journal(
            self.release_id,
            self.source,
            "prepare the host",
            site_link=self.settings.paths.nginx_site_enabled,
            site_link_before=before.site_link,
            units=tuple(units),
            prepared=Prepared(venv=self.settings.app.venv),
            code_link=code.link if switches else "",
            code_link_before=self.host.link_target(code.link) if switches else None,
        )
        journals.write(self.host, self.state_dir, self.journal)  # before the first change
        try:
            self._step("prepare the host", self._prepare)
        except StepFailed as exc:
            self._undo(before, store, "prepare the host", exc)
        self.report.changed = True
        for name, action in self._steps(pending, before, store):
            try:
                self._step(name, partial(self._journaled, name, action))
            except StepFailed as exc:
                self._undo(before, store, name, exc)
        assert self.release is not None
        store.finish(self.release, "applied")
        journals.clear(self.host, self.state_dir)
        self._cleanup_prepare()
        pruned = store.prune(self.settings.deploy.keep_releases)
        if self.settings.deploy.code_releases:
            pruned += [f"code {f}" for f in code.prune(store.kept_code())]
        done = self.release.id + (f"; pruned {', '.join(pruned)}" if pruned else "")
        self._step("record the release", lambda: done)

    def _journaled(self, name: str, action: Callable[[], str]) -> str:
        self._note(step=name)  # a journal the host refuses to write fails the step like any other write
        return action()

    def _note(self, **changes: Any) -> None:
        """Write-ahead: the journal on disk names what is about to happen before it does."""
        assert self.journal is not None
        self.journal = replace(self.journal, **changes)
        journals.write(self.host, self.state_dir, self.journal)

    def _steps(self, pending: Plan, before: HostState, store: ReleaseStore) -> list[tuple[str, Callable[[], str]]]:
        code = self.code
        steps: list[tuple[str, Callable[[], str]]] = []
        if code is not None and code.install:
            name = "install the release" if code.link else "install the app"
            steps.append((name, lambda: self._install_release(code)))
        steps.append(("save the release", lambda: self._save_release(before, store)))
        if self.check_app and self._touches_service(pending):
            steps.append(("check the new app", lambda: self._check_app(store)))
        with_hooks = code is not None and code.hooks
        if with_hooks:
            before_switch = hooks.hooks(self.settings, "before_switch")
            steps += [(h.describe(), partial(self._hook, h, store)) for h in before_switch]
        if acme_of(self.settings) is not None and self.host.runs_commands:
            steps.append(("certificate", lambda: self._certificate(pending)))
        steps.append(("write files", lambda: self._write(pending)))
        if code is not None and code.link:
            steps.append(("switch the release", lambda: self._switch(code)))
        steps += [
            ("validate on the host", lambda: self._validate(pending)),
            ("services", lambda: self._services(pending)),
        ]
        if self.health and self.host.runs_commands:
            steps.append(("health", self._health))
        if with_hooks:
            steps += [(h.describe(), partial(self._hook, h, store)) for h in hooks.hooks(self.settings, "after_switch")]
        return steps

    def _install_release(self, code: CodeChange) -> str:
        assert self.install_app is not None
        releases = CodeReleases(self.host, self.settings)
        wheelhouse = read_wheelhouse(self.host, self.install_app)
        if not code.link:
            created = self._venv_aside(code.target)
            return releases.install_in_place(code, wheelhouse, self.progress.update, created=created)
        self._prepared(release_dir=release_dir(self.settings, code.release))  # write-ahead
        return releases.install(code, wheelhouse, self.progress.update)

    def _venv_aside(self, venv: str) -> bool:
        """Before new code goes into VENV in place: copy it aside for restore (True: there is none yet)."""
        if self.host.read(f"{venv}/bin/python3") is None and self.host.link_target(f"{venv}/bin/python3") is None:
            self._prepared(venv_created=True)  # write-ahead: a half-made venv is removed too
            return True
        saved = f"{venv}.deploykit-previous"
        self.host.remove_tree(saved)
        _check(self.host.run(["cp", "-a", venv, saved], timeout=300), "saving the venv")
        self._prepared(venv_saved=saved)
        return False

    def _switch(self, code: CodeChange) -> str:
        self._note(code_switched=True)  # write-ahead: restore puts the link back
        CodeReleases(self.host, self.settings).switch(code)
        return f"{code.link} -> {code.target} (code {code.version})"

    def _hook(self, hook: hooks.Hook, store: ReleaseStore) -> str:
        assert self.release is not None and self.code is not None
        location = code_location(self.settings, self.code.release)
        env = self.bundle.by_kind(Kind.ENV_FILE)
        env_file = store.saved_file(self.release, env.path) if env is not None else "/dev/null"
        emit = self.progress.output
        result = hooks.run_hook(self.host, self.settings, hook, env_file, location, self.code.release, emit)
        if not result.ok:
            raise StepFailed(hooks.failure(result, self.settings))
        last = result.output.strip().splitlines()[-1:] if result.output.strip() else []
        return f"ok in {result.seconds:.1f}s" + (f": {last[0]}" if last else "")

    def _step(self, name: str, action: Callable[[], str]) -> None:
        self.progress.start(name)
        started = time.monotonic()
        try:
            detail = action()
        except (StepFailed, DeployKitError, OSError, KeyboardInterrupt) as exc:
            # a host error (a write refused, a disk full) or Ctrl-C fails the step like a failed command
            why = "interrupted (Ctrl-C, SIGTERM or SIGHUP)" if isinstance(exc, KeyboardInterrupt) else str(exc)
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
        assert self.journal is not None
        self.release = store.begin(self.bundle, before, self.source, self.journal.release, self._code_record())
        self.report.release = self.release.id
        return "previous files saved"

    def _code_record(self) -> tuple[str, str]:
        """The code release and version the new release runs ("" without code releases)."""
        if self.code is not None and self.code.link:
            return self.code.release, self.code.version
        code = CodeReleases(self.host, self.settings)
        live = code.live() if self.settings.deploy.code_releases else None
        return (live, code.version(live) or "") if live else ("", "")

    def _touches_service(self, pending: Plan) -> bool:
        service = _unit_name(self.bundle, Kind.SERVICE_UNIT)
        return any(isinstance(a, Systemctl) and a.unit == service for a in pending.actions)

    def _check_app(self, store: ReleaseStore) -> str:
        assert self.release is not None
        env = self.bundle.by_kind(Kind.ENV_FILE)
        env_file = store.saved_file(self.release, env.path) if env is not None else "/dev/null"
        location = code_location(self.settings, self.code.release) if self.code is not None else None
        verdict = check_app(self.host, self.settings, env_file, location)
        if not verdict.ok:
            raise StepFailed(verdict.detail)
        return verdict.detail

    def _undo(self, before: HostState, store: ReleaseStore, name: str, exc: Exception) -> None:
        assert self.journal is not None
        self.report.failed_step, self.report.error = name, str(exc)
        self.progress.start("restore the previous state")
        started = time.monotonic()
        problems = restore(self.host, self.journal, before.files, lambda: self._old_stack_answers(before))
        self.report.restored = not problems
        detail = "previous state back in place" if not problems else "; ".join(problems)
        self._record("restore the previous state", "ok" if not problems else "failed", detail, started)
        if self.release is not None:
            store.finish(self.release, "rolled-back" if not problems else "failed", f"{name}: {exc}")
        else:
            store.discard(self.journal.release)  # a save that failed half-way (a disk full) leaves nothing behind
        if not problems:
            journals.clear(self.host, self.state_dir)  # else the next run tries the restore again
        outcome = "the previous state was restored" if not problems else "RESTORE INCOMPLETE: " + "; ".join(problems)
        headline = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        cause = exc.__cause__ if isinstance(exc.__cause__, DeployKitError) else None
        raise ApplyFailed(
            f"{name} failed: {headline}; {outcome}",
            restored=not problems,
            hint=(cause.hint if cause is not None and cause.hint else None)
            or "Fix the cause above and apply again; `deploykit doctor` looks for the usual problems.",
        ) from exc

    def _old_stack_answers(self, before: HostState) -> list[str]:
        """When the app was serving before, it must serve again now."""
        was = before.units.get(_unit_name(self.bundle, Kind.SERVICE_UNIT))
        if was is None or not was.active:
            return []
        return [f"after restoring, {r.describe()}" for r in probe(self.host, self.settings) if not r.ok]

    # prepare
    def _prepare(self) -> str:
        done = [self._ensure_user(), *self._ensure_dirs()]
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
            self._prepared(group=group)
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
        self._prepared(user=app.user)
        return f"created user {app.user}"

    def _ensure_dirs(self) -> list[str]:
        wanted = [self.settings.app.working_dir] if self.install_app else []
        made = []
        for path in wanted:
            if self.host.make_dir(path, mode=0o755):
                made.append(path)
                self._prepared(dirs=(*self._journal().prepared.dirs, path))
        return [f"created {d}" for d in made]

    def _journal(self) -> Journal:
        assert self.journal is not None
        return self.journal

    def _prepared(self, **changes: Any) -> None:
        self._note(prepared=replace(self._journal().prepared, **changes))

    def _cleanup_prepare(self) -> None:
        saved = self._journal().prepared.venv_saved
        if saved is not None:
            self.host.remove_tree(saved)

    # the ACME certificate
    def _certificate(self, pending: Plan) -> str:
        """Before the TLS site is written: a first issue installs the site HTTP-only (the ACME
        webroot answers on port 80) and reloads nginx, then asks the CA; a site already serving
        answers the challenge from its port-80 server. The TLS site follows in "write files"."""
        tls = self.settings.nginx.tls
        acme = acme_of(self.settings)
        assert tls is not None and acme is not None and self.settings.nginx.acme_root is not None
        for path, mode in ((acme.config_dir, 0o700), (self.settings.nginx.acme_root, 0o755)):
            if self.host.make_dir(path, mode=mode):
                self._prepared(dirs=(*self._journal().prepared.dirs, path))
        self.host.set_mode(acme.config_dir, 0o700)
        first = self.host.read(tls.cert_path) is None
        if first:
            self._http_only_site(pending)
        outcome = issue(self.host, self.settings)
        return outcome.detail + (" (HTTP-01 through the HTTP-only site)" if first else "")

    def _http_only_site(self, pending: Plan) -> None:
        site = render_site(self.settings, http_only=True)
        links = any(isinstance(a, LinkSite) for a in pending.actions)
        self._note(written=(site.path,), links_site=links)
        self.host.write(site.path, site.content.encode(), mode=site.mode, owner=site.owner, group=site.group)
        if links:
            self.host.symlink(self.settings.paths.nginx_site_enabled, site.path)
        result = self.host.run(["nginx", "-t"])
        if not result.ok:
            raise StepFailed(f"nginx -t (the HTTP-only site): {_tail(result)}")
        self._note(nginx_reload=True)
        self._systemctl(["reload-or-restart", "nginx.service"])

    # change
    def _write(self, pending: Plan) -> str:
        files = self.bundle.as_mapping()
        written = tuple(a.path for a in pending.actions if isinstance(a, WriteFile | RemoveFile))
        self._note(written=written, links_site=any(isinstance(a, LinkSite) for a in pending.actions))
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
        units = [a.path for a in pending.actions if isinstance(a, WriteFile) and a.path.endswith(UNIT_SUFFIXES)]
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
                self._started(action)
            if isinstance(action, Systemctl):
                self._systemctl(action.verb.split() + ([action.unit] if action.unit else []))
                done.append(action.describe())
            elif isinstance(action, ReloadNginx):
                self._systemctl(["reload-or-restart", "nginx.service"])
                done.append("systemctl reload nginx")
            elif isinstance(action, RemoveFile):  # its units were stopped and disabled just before
                self.host.remove(action.path)
                done.append(action.describe())
        return "; ".join(done) or "no service changes"

    def _started(self, action: Systemctl | ReloadNginx) -> None:
        """Write-ahead: restore undoes only the service actions that were begun (a failed nginx -t reloads nothing)."""
        journal = self._journal()
        if isinstance(action, ReloadNginx):
            self._note(nginx_reload=True)
        elif action.verb == "daemon-reload":
            self._note(daemon_reload=True)
        else:
            if action.unit not in journal.touched:
                self._note(touched=(*journal.touched, action.unit))
            if action.verb == "disable --now" and action.unit not in self._journal().disabled:
                self._note(disabled=(*self._journal().disabled, action.unit))

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
        self.progress.update("waiting for an answer", total=self.settings.deploy.health_timeout, timed=True)
        results = probe(self.host, self.settings)
        self.report.health = results
        failed = [r for r in results if not r.ok]
        if failed:
            raise StepFailed("; ".join(r.describe() for r in failed))
        return ", ".join(r.describe() for r in results)


#: SIGTERM (a CI job cancelled, an Ansible timeout) and SIGHUP (a dropped SSH session) restore like Ctrl-C
INTERRUPTS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """The INTERRUPTS fail the running step and restore the host, like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # a signal the caller ignores (`nohup deploykit apply`) stays ignored
    wanted = [sig for sig in INTERRUPTS if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, interrupt) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _unit_name(bundle: Bundle, kind: Kind) -> str:
    file = bundle.by_kind(kind)
    return PurePosixPath(file.path).name if file is not None else ""


def _check(result: CommandResult, what: str) -> None:
    if not result.ok:
        raise StepFailed(f"{what}: {_tail(result)}")


def _tail(result: CommandResult, lines: int = 8) -> str:
    text = result.output() or f"exit {result.returncode}"
    return "\n".join(text.splitlines()[-lines:])
