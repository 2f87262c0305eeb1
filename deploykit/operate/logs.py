"""`deploykit logs`: the journal of the service, the socket and every process's and
timer job's service, plus the app's nginx access and error logs, merged by time;
with ``follow``, every source is streamed from the host (one thread per source
feeding a queue) until Ctrl-C.

The tail ends exactly where following starts: the journal continues after
the last entry's cursor, each nginx log after the bytes already read."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo

from deploykit.errors import DeployKitError, ToolMissing
from deploykit.host.base import Host
from deploykit.operate.logparse import (
    ACCESS,
    ERROR,
    LogEntry,
    access_line,
    error_line,
    journal_line,
    journal_since,
    last,
    merge,
    parse_since,
    since_filter,
    utc_offset,
)
from deploykit.operate.status import Units, require_commands
from deploykit.settings.model import Settings

DEFAULT_LINES = 50
Emit = Callable[[LogEntry], None]
Parser = Callable[[str], LogEntry | None]


@dataclass
class Position:
    """Where the tail ended: the journal's last cursor, and the bytes read per nginx log."""

    cursor: str | None = None
    offsets: dict[str, int] = field(default_factory=dict)


def nginx_logs(settings: Settings) -> list[tuple[str, str]]:
    """(source, path) of the app's nginx logs (the access log may be off)."""
    found = [] if settings.nginx.access_log == "off" else [(ACCESS, settings.nginx.access_log)]
    return [*found, (ERROR, settings.nginx.error_log)]


def journal_argv(settings: Settings) -> list[str]:
    units = Units.of(settings)
    argv = ["journalctl", "-u", units.service, *(["-u", units.socket] if units.socket else [])]
    argv += [arg for unit in units.commands for arg in ("-u", unit)]  # processes' and timers' output
    return [*argv, "-o", "json", "--no-pager"]


def read_journal(
    host: Host, settings: Settings, lines: int | None, since: datetime | None
) -> tuple[list[LogEntry], str | None]:
    argv = journal_argv(settings) + (["--since", journal_since(since)] if since else [])
    result = host.run(argv + (["-n", str(lines)] if lines is not None else []))
    if result.returncode == 127:
        raise ToolMissing("journalctl is not installed on the host", hint="deploykit logs reads the systemd journal.")
    cursors: list[str] = []
    entries = [e for line in result.stdout.splitlines() if (e := journal_line(line, cursors)) is not None]
    if not result.ok and not entries:
        raise DeployKitError(f"journalctl failed: {result.output() or f'exit {result.returncode}'}")
    return entries, (cursors[-1] if cursors else None)


def read_nginx(
    host: Host, path: str, parse: Parser, lines: int | None, since: datetime | None
) -> tuple[list[LogEntry], int]:
    """The last LINES lines (or all since SINCE) of an nginx log, and how many bytes were read."""
    facts = host.read(path)
    if facts is None:
        return [], 0
    text = facts.content.decode("utf-8", "replace").splitlines()
    if since is None and lines is not None:
        text = text[-lines:] if lines > 0 else []
    entries = [e for line in text if (e := parse(line)) is not None]
    return since_filter(entries, since), len(facts.content)


def tail(
    host: Host, settings: Settings, tz: tzinfo, *, lines: int | None, since: datetime | None
) -> tuple[list[LogEntry], Position]:
    """The newest entries of every source, merged by time."""
    journal, cursor = read_journal(host, settings, lines, since)
    position = Position(cursor)
    sources = [journal]
    for source, path in nginx_logs(settings):
        entries, position.offsets[path] = read_nginx(host, path, _parser(source, tz), lines, since)
        sources.append(entries)
    return last(merge(*sources), lines), position


def _parser(source: str, tz: tzinfo) -> Parser:
    return access_line if source == ACCESS else lambda line: error_line(line, tz)


def follow_streams(settings: Settings, position: Position, tz: tzinfo) -> list[tuple[list[str], Parser]]:
    """The commands that stream each source from where the tail ended."""
    after = ["--after-cursor", position.cursor] if position.cursor else ["-n", "0"]
    streams: list[tuple[list[str], Parser]] = [([*journal_argv(settings), "--follow", *after], journal_line)]
    for source, path in nginx_logs(settings):
        start = position.offsets.get(path, 0) + 1
        streams.append((["tail", "-F", "-c", f"+{start}", path], _parser(source, tz)))
    return streams


def follow(host: Host, streams: list[tuple[list[str], Parser]], emit: Emit) -> None:
    """Emit each source's new entries as they come, until every stream ends or Ctrl-C."""
    entries: queue.Queue[LogEntry | None] = queue.Queue()
    with ExitStack() as stack:  # leaving it stops every stream, which ends the pumping threads
        for argv, parse in streams:
            lines = stack.enter_context(host.stream(argv))
            threading.Thread(target=_pump, args=(lines, parse, entries), daemon=True).start()
        _drain(entries, len(streams), emit)


def _pump(lines: Iterator[str], parse: Parser, sink: queue.Queue[LogEntry | None]) -> None:
    try:
        for line in lines:
            entry = parse(line)
            if entry is not None:
                sink.put(entry)
    except (OSError, ValueError):  # the stream was closed under us: we are stopping
        pass
    finally:
        sink.put(None)


def _drain(entries: queue.Queue[LogEntry | None], sources: int, emit: Emit) -> None:
    ended = 0
    while ended < sources:
        try:
            entry = entries.get(timeout=0.25)
        except queue.Empty:
            continue
        if entry is None:
            ended += 1
        else:
            emit(entry)


def logs(
    host: Host,
    settings: Settings,
    emit: Emit,
    *,
    lines: int | None = None,
    since: str | None = None,
    follow_new: bool = False,
) -> None:
    """`deploykit logs`: emit the merged tail (LINES, default 50; or all since SINCE), then
    with FOLLOW_NEW keep emitting new entries until Ctrl-C. Times are in the host's zone."""
    require_commands(host, "logs")
    tz = utc_offset(host.run(["date", "+%z"]).stdout)
    start = parse_since(since, datetime.now(UTC), tz) if since else None
    count = lines if lines is not None else (None if start else DEFAULT_LINES)

    def local(entry: LogEntry) -> None:
        emit(replace(entry, time=entry.time.astimezone(tz)) if entry.time else entry)

    entries, position = tail(host, settings, tz, lines=count, since=start)
    for entry in entries:
        local(entry)
    if follow_new:
        try:
            follow(host, follow_streams(settings, position, tz), local)
        except KeyboardInterrupt:
            return
