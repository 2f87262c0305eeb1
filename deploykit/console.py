"""The only module that prints with rich: errors, finding tables, bundles, diffs."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress as Bars
from rich.progress import ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn
from rich.progress_bar import ProgressBar
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from deploykit.check.findings import Report
from deploykit.errors import DeployKitError, SettingsError
from deploykit.plan import Plan
from deploykit.render.bundle import Bundle
from deploykit.render.envfile import mask_secrets

if TYPE_CHECKING:
    from deploykit.operate.logparse import LogEntry
    from deploykit.operate.status import StatusReport

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}
_LEXER = {
    "nginx-site": "nginx",
    "gunicorn-conf": "python",
    "service-unit": "ini",
    "socket-unit": "ini",
    "env-file": "bash",
}
_DIFF_STYLE = {"+": "green", "-": "red", "@": "cyan"}


@functools.cache
def out() -> Console:
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)


@functools.cache
def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def error(exc: DeployKitError, *, debug: bool = False) -> None:
    """One clear line, the problems (for settings errors), a hint; a traceback only with --debug."""
    if debug:
        err().print(escape("".join(traceback.format_exception(exc))), style="dim")
    headline = exc.message.split(": ", 1)[0] if isinstance(exc, SettingsError) and exc.problems else exc.message
    err().print(f"[bold red]error:[/] {escape(headline)}")
    for problem in getattr(exc, "problems", ()):
        err().print(f"  • {escape(problem)}")
    if exc.hint:
        err().print(f"[cyan]hint:[/] {escape(exc.hint)}")


def unexpected(exc: BaseException, *, debug: bool) -> None:
    if debug:
        err().print(escape("".join(traceback.format_exception(exc))), style="dim")
    err().print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))}")
    err().print("[cyan]hint:[/] this is a bug in deploykit; run again with --debug and report the traceback")


def write_report(path: Path, text: str) -> None:
    """`--output PATH`: the report as a file; a path that cannot be written is one clear error."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DeployKitError(f"--output {path}: cannot write: {exc.strerror}") from exc


def info(message: str) -> None:
    err().print(message)


def prompt(text: str) -> str | None:
    """One answer typed in the terminal; None at end of input (Ctrl-D)."""
    try:
        return input(text)
    except EOFError:
        return None


def ask_again(problem: str) -> None:
    err().print(f"[yellow]invalid:[/] {escape(problem)}; try again")


def findings_table(report: Report, *, title: str = "deploykit check", skipped: str = "not part of this stack") -> None:
    table = Table(title=title, show_lines=False)
    for column in ("check", "result", "file", "finding"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        if not result.ran and not result.findings:
            table.add_row(result.name, "[dim]skipped[/]", "", f"[dim]{escape(skipped)}[/]")
            continue
        counted = [f for f in result.findings if f.counts]
        status = "[bold red]FAIL[/]" if counted else "[green]ok[/]"
        if not result.findings:
            table.add_row(result.name, status, "", f"[dim]{result.seconds * 1000:.0f} ms[/]")
        for finding in result.findings:
            text = escape(finding.message) + (f"\n[cyan]hint:[/] {escape(finding.hint)}" if finding.hint else "")
            style = _STYLE[finding.severity]
            table.add_row(result.name, status, escape(finding.file or ""), f"[{style}]{finding.severity}[/] {text}")
    out().print(table)
    total = sum(1 for f in report.findings if f.counts)
    if total:
        out().print(f"[bold red]{total} finding{'s' if total != 1 else ''}[/] (exit 3)")
    else:
        out().print("[green]all checks passed[/]")


def show_bundle(bundle: Bundle, secret_keys: Iterable[str]) -> None:
    keys = list(secret_keys)
    for file in bundle:
        content = mask_secrets(file.content, keys) if file.secret else file.content
        out().rule(f"{file.path}  ({file.mode:04o} {file.owner}:{file.group})")
        if sys.stdout.isatty():
            out().print(Syntax(content, _LEXER[file.kind.value], theme="ansi_dark"))
        else:
            out().out(content, end="")


def show_diff(lines: list[str]) -> None:
    for line in lines:
        out().print(escape(line.rstrip("\n")), style=_DIFF_STYLE.get(line[:1], ""))


def plain(text: str) -> None:
    out().out(text, end="" if text.endswith("\n") else "\n")


def show_plan(steps: list[str]) -> None:
    out().print("[bold]plan:[/]")
    for number, step in enumerate(steps, 1):
        out().print(f"  {number}. {escape(step)}")


def show_pending(pending: Plan) -> None:
    """What apply would change: an interrupted apply's undo, the masked diff, then the numbered actions."""
    if pending.recovery:
        out().print(f"[bold yellow]pending recovery:[/] {escape(pending.recovery)}")
    show_diff(list(pending.diff))
    show_plan([action.describe() for action in pending.actions])


def live(console: Console) -> bool:
    """Whether progress redraws in place: on a terminal, not a dumb one, not in CI (``CI`` set)."""
    return console.is_terminal and not console.is_dumb_terminal and not os.environ.get("CI")


class _Bar(ProgressColumn):
    """A bar only once a total is known; for a timed phase, the seconds waited of the timeout."""

    def render(self, task: Task) -> ProgressBar | Text:
        if task.total is None:
            return Text("")
        done = min(task.elapsed or 0.0, task.total) if task.fields.get("timed") else task.completed
        return ProgressBar(total=task.total, completed=done, width=40, animation_time=task.get_time())


class _Count(ProgressColumn):
    """n/N (or n), or for a timed phase "3s of 30s"."""

    def render(self, task: Task) -> Text:
        if task.fields.get("timed") and task.total is not None:
            return Text(f"{int(task.elapsed or 0)}s of {task.total:g}s", style="dim")
        if not task.fields.get("counted"):
            return Text("")
        total = "" if task.total is None else f"/{task.total:g}"
        return Text(f"{task.completed:g}{total}", style="progress.download")


class _Elapsed(ProgressColumn):
    """The whole step's time, over all its phases."""

    def render(self, task: Task) -> Text:
        seconds = int(time.monotonic() - task.fields["since"])
        return Text(f"{seconds // 60}:{seconds % 60:02d}", style="progress.elapsed")


class Activity:
    """One long step while it runs: the one seam every progress display goes through.

    Live (a terminal, see ``live``): a rich line that redraws (spinner, step and phase, a bar and
    n/N once a total is known, or seconds waited of a timeout, elapsed time) and is gone when the
    step ends. Otherwise (a pipe, a log, CI): one plain line each time the phase changes, counts
    left out, so logs and tests see the same lines on every run."""

    def __init__(self, console: Console, name: str) -> None:
        self.console, self.name = console, name
        self._phase: str | None = None
        self._bars: Bars | None = None
        self._since = time.monotonic()
        if live(console):
            columns = (SpinnerColumn(), TextColumn("{task.description}"), _Bar(), _Count(), _Elapsed())
            self._bars = Bars(*columns, console=console, transient=True)
            self._task = self._add(escape(name), None, None, timed=False)
            self._bars.start()

    def _add(self, description: str, done: float | None, total: float | None, *, timed: bool) -> TaskID:
        assert self._bars is not None
        counted = done is not None and not timed
        return self._bars.add_task(
            description, total=total, completed=int(done or 0), counted=counted, timed=timed, since=self._since
        )

    def update(self, phase: str, done: float | None = None, total: float | None = None, *, timed: bool = False) -> None:
        if self._bars is None:
            if phase != self._phase:
                self.console.print(f"  [dim]…[/] {escape(self.name)}: {escape(phase)}")
        elif phase != self._phase:  # a phase of its own: its total (or none), its timeout counted from now
            self._bars.remove_task(self._task)
            self._task = self._add(escape(f"{self.name}: {phase}"), done, total, timed=timed)
            self._bars.refresh()
        else:
            self._bars.update(self._task, total=total, completed=done or 0, refresh=True)
        self._phase = phase

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None


@contextlib.contextmanager
def step(name: str, console: Console | None = None) -> Iterator[Activity]:
    """Show NAME's progress while the block runs (on stderr unless CONSOLE is given)."""
    activity = Activity(console or err(), name)
    try:
        yield activity
    finally:
        activity.close()


class StepLines:
    """apply's progress: a live line while a step runs (``Activity``), then one line per step."""

    _MARK = {"ok": "[green]✓[/]", "failed": "[bold red]✗[/]", "skipped": "[dim]-[/]"}

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or out()
        self._activity: Activity | None = None

    def start(self, name: str) -> None:
        self._close()
        self._activity = Activity(self.console, name)

    def update(self, phase: str, done: float | None = None, total: float | None = None, *, timed: bool = False) -> None:
        if self._activity is not None:
            self._activity.update(phase, done, total, timed=timed)

    def output(self, line: str) -> None:
        """A hook's output line, shown as it comes (above the live line on a terminal)."""
        self.console.print(f"      [dim]│[/] {escape(line)}", highlight=False)

    def done(self, step: Any) -> None:
        self._close()
        detail = f" [dim]{escape(step.detail)}[/]" if step.detail and step.status == "ok" else ""
        self.console.print(f"  {self._MARK[step.status]} {escape(step.name)}{detail} [dim]({step.seconds:.2f}s)[/]")
        if step.status == "failed":
            for line in step.detail.splitlines():
                self.console.print(f"      [red]{escape(line)}[/]")

    def _close(self) -> None:
        if self._activity is not None:
            self._activity.close()
            self._activity = None


def confirm(question: str) -> bool:
    return bool(out().input(f"{escape(question)} [y/N] ").strip().lower() in ("y", "yes"))


def apply_summary(report: Any) -> None:
    """The last line of apply/rollback: what happened, and where the release is kept (warnings first)."""
    for warning in report.warnings:
        out().print(f"[yellow]warning:[/] {escape(warning)}")
    if not report.changed:
        out().print("[green]no changes:[/] the host already runs this stack")
        return
    out().print(f"[green]applied[/] release {escape(str(report.release))} ({len(report.actions)} action(s))")


_LOG_STYLE = {"serve": "cyan", "access": "green", "nginx": "yellow"}


def up_ready(url: str, notes: list[str]) -> None:
    """`deploykit up`'s banner: the URL, then one line per note."""
    out().print(f"[bold green]deploykit up:[/] ready on [bold]{escape(url)}[/]")
    for note in notes:
        out().print(f"  [dim]{escape(note)}[/]")


def log_lines(lines: Iterable[tuple[str, str]]) -> None:
    """Followed log lines, each prefixed with its source (serve, access, nginx)."""
    for label, line in lines:
        out().print(f"[{_LOG_STYLE.get(label, 'dim')}]{label:>6} │[/] {escape(line)}")


def _state(ok: bool, text: str) -> str:
    return f"[green]{escape(text)}[/]" if ok else f"[bold red]{escape(text)}[/]"


def status_view(report: StatusReport) -> None:
    """`deploykit status`: units, workers, socket, health, then the releases kept."""
    table = Table(title=f"deploykit status: {report.app}", show_lines=False)
    for column in ("unit", "state", "pid", "since", "restarts", "status"):
        table.add_column(column, overflow="fold")
    for unit in report.units:
        state = _state(report.unit_ok(unit), f"{unit.active} ({unit.sub})")
        pid = str(unit.main_pid) if unit.main_pid else "-"
        table.add_row(unit.name, state, pid, unit.since or "-", str(unit.restarts), escape(unit.status_text))
    out().print(table)
    workers = report.workers
    count = "?" if workers.count is None else str(workers.count)
    served = "" if workers.requests is None else f", {workers.requests} requests served"
    out().print(f"[bold]workers[/]  {count} (pids {', '.join(map(str, workers.pids)) or '-'}){served}")
    sock = report.socket
    facts = f"{sock.kind} {sock.mode} {sock.owner}:{sock.group}" if sock.exists else "[bold red]missing[/]"
    out().print(f"[bold]socket[/]   {escape(sock.path)} {facts}")
    health = "  ".join(_state(p.ok, p.describe()) for p in report.health)
    out().print(f"[bold]health[/]   {health or '-'}")
    for cert in report.certificates:
        days = _state(cert.days_left > 14, f"{cert.days_left} days left")
        names = ", ".join(cert.names)
        out().print(f"[bold]cert[/]     {escape(names)}: expires {cert.not_after} ({days}), serial {cert.serial}")
    if report.renewal is not None:
        timer = report.renewal
        last = f", last run {timer.last_result}" if timer.last_result else ""
        state = _state(timer.enabled, "enabled" if timer.enabled else "not enabled")
        out().print(f"[bold]renewal[/]  {timer.timer} {state}, next run {escape(timer.next_run or '-')}{last}")
    _releases(report)
    problems = report.problems()
    if problems:
        out().print(f"[bold red]{len(problems)} problem(s):[/] {escape('; '.join(problems))} (exit 3)")
    else:
        out().print("[green]all units active, health checks pass[/]")


def _releases(report: StatusReport) -> None:
    current = report.current
    if current is None:
        out().print("[bold]release[/]  [yellow]none recorded[/] (not deployed with deploykit apply)")
        return
    out().print(f"[bold]release[/]  {current.id} ({escape(current.source)}, {current.finished or current.created})")
    table = Table(title=f"releases kept ({len(report.releases)})", show_lines=False)
    for column in ("", "id", "status", "code", "config", "source", "finished"):
        table.add_column(column)
    for release in report.releases:
        mark = "[green]*[/]" if release.current else ""
        code = release.code_version or "-"
        config, finished = release.config_version, release.finished or "-"
        row = (release.id, release.status, code, config, escape(release.source), finished)
        table.add_row(mark, *row)
    out().print(table)


_SOURCE_STYLES = ("cyan", "blue", "magenta", "bright_cyan")
_FIXED_SOURCE_STYLE = {"nginx access": "green", "nginx error": "yellow"}
_PRIORITY_STYLE = {0: "bold red", 1: "bold red", 2: "bold red", 3: "red", 4: "yellow"}


def _source_style(source: str) -> str:
    """A colour per source: fixed for nginx's logs, derived from the name for units (stable across runs)."""
    return _FIXED_SOURCE_STYLE.get(source) or _SOURCE_STYLES[sum(source.encode()) % len(_SOURCE_STYLES)]


def log_entry(entry: LogEntry) -> None:
    """One `deploykit logs` line: time, source (a colour each), message (red/yellow by priority)."""
    when = entry.time.strftime("%Y-%m-%d %H:%M:%S") if entry.time else " " * 19
    when += "    " if entry.coarse or not entry.time else f".{entry.time.microsecond // 1000:03d}"
    style = _PRIORITY_STYLE.get(entry.priority if entry.priority is not None else 6, "")
    message = f"[{style}]{escape(entry.message)}[/]" if style else escape(entry.message)
    out().print(f"[dim]{when}[/] [{_source_style(entry.source)}]{escape(entry.source):>12} │[/] {message}")


def log_entry_json(entry: LogEntry) -> None:
    """One `deploykit logs --format json` line."""
    import json

    out().out(json.dumps(entry.to_dict()))
