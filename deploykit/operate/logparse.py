"""Pure log parsing for `deploykit logs`: journal JSON lines, nginx access and
error log lines, the ``--since`` argument, and merging sources by time. No I/O."""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo

from deploykit.errors import UsageError

ACCESS = "nginx access"
ERROR = "nginx error"
#: nginx error log levels, as syslog priorities (for colouring like the journal's)
_LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}
_ACCESS_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]")
_ERROR_LINE = re.compile(r"^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(\w+)\]")
_RELATIVE = re.compile(r"^-?\s*(\d+)\s*([a-z]+)(?:\s+ago)?$")
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_END_OF_SECOND = timedelta(microseconds=999_999)


@dataclass(frozen=True)
class LogEntry:
    time: datetime | None  # aware (UTC or the host's offset); None when the line has none
    source: str  # a unit name, ACCESS or ERROR
    message: str
    priority: int | None = None  # syslog priority: 0 emerg .. 7 debug
    #: the time has whole seconds only (nginx); it sorts at the end of its second, since nginx
    #: logs a request when it ends, after the app's own (microsecond) lines for it
    coarse: bool = False

    def to_dict(self) -> dict[str, object]:
        stamp = self.time.astimezone(UTC).isoformat(timespec="microseconds") if self.time else None
        return {"time": stamp, "source": self.source, "message": self.message, "priority": self.priority}


def journal_line(line: str, cursor: list[str] | None = None) -> LogEntry | None:
    """One ``journalctl -o json`` line; text that is not JSON (journalctl's own
    notes) becomes a message without a time. CURSOR, when given, receives the
    entry's ``__CURSOR`` (to follow from exactly there)."""
    text = line.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return LogEntry(None, "journal", text)
    if not isinstance(data, dict):
        return LogEntry(None, "journal", text)
    if cursor is not None and isinstance(data.get("__CURSOR"), str):
        cursor.append(data["__CURSOR"])
    micros = str(data.get("__REALTIME_TIMESTAMP", ""))
    when = _EPOCH + timedelta(microseconds=int(micros)) if micros.isdigit() else None
    source = data.get("UNIT") or data.get("_SYSTEMD_UNIT") or data.get("SYSLOG_IDENTIFIER") or "journal"
    priority = str(data.get("PRIORITY", ""))
    return LogEntry(when, str(source), _message(data.get("MESSAGE")), int(priority) if priority.isdigit() else None)


def _message(value: object) -> str:
    """MESSAGE is a string, a list of byte values (not UTF-8), or null (too large)."""
    if isinstance(value, str):
        return value.rstrip("\n")
    if isinstance(value, list) and all(isinstance(b, int) for b in value):
        return bytes(value).decode("utf-8", "replace").rstrip("\n")
    return "" if value is None else str(value)


def access_line(line: str) -> LogEntry:
    """An nginx access log line (combined format): the time is between [ and ]."""
    text = line.rstrip("\r\n")
    match = _ACCESS_TIME.search(text)
    when = datetime.strptime(match.group(1), "%d/%b/%Y:%H:%M:%S %z") if match else None
    return LogEntry(when, ACCESS, text, coarse=when is not None)


def error_line(line: str, tz: tzinfo) -> LogEntry:
    """An nginx error log line: "2026/11/28 08:11:46 [error] ..." in the host's local time (TZ)."""
    text = line.rstrip("\r\n")
    match = _ERROR_LINE.match(text)
    if match is None:
        return LogEntry(None, ERROR, text)
    when = datetime.strptime(match.group(1), "%Y/%m/%d %H:%M:%S").replace(tzinfo=tz)
    return LogEntry(when, ERROR, text, _LEVELS.get(match.group(2)), coarse=True)


def utc_offset(text: str) -> tzinfo:
    """``date +%z`` output (e.g. "+0100") as a fixed offset; UTC when it does not parse."""
    value = text.strip()
    if re.fullmatch(r"[+-]\d{4}", value):
        sign = -1 if value[0] == "-" else 1
        return timezone(sign * timedelta(hours=int(value[1:3]), minutes=int(value[3:5])))
    return UTC


def carry_times(entries: Iterable[LogEntry]) -> Iterator[LogEntry]:
    """Lines without a time (continuations) take the time of the line before them."""
    last: tuple[datetime, bool] | None = None
    for entry in entries:
        if entry.time is None and last is not None:
            entry = replace(entry, time=last[0], coarse=last[1])
        if entry.time is not None:
            last = (entry.time, entry.coarse)
        yield entry


def merge(*sources: Iterable[LogEntry]) -> list[LogEntry]:
    """Sources (each already in time order) merged by time; ties keep source order.
    A source's leading lines without any time sort first."""
    return list(heapq.merge(*(carry_times(s) for s in sources), key=sort_key))


def sort_key(entry: LogEntry) -> datetime:
    if entry.time is None:
        return _EPOCH
    return entry.time + _END_OF_SECOND if entry.coarse else entry.time


def since_filter(entries: Iterable[LogEntry], since: datetime | None) -> list[LogEntry]:
    if since is None:
        return list(entries)
    return [e for e in entries if e.time is not None and e.time >= since]


def parse_since(text: str, now: datetime, tz: tzinfo) -> datetime:
    """``--since``: "2026-11-28 08:00[:00]", "08:00", "today", "yesterday", "now",
    "1h ago", "-30min", "2d". Times without an offset are the host's local time (TZ)."""
    value = text.strip().lower()
    local_now = now.astimezone(tz)
    midnight = datetime.combine(local_now.date(), time(), tz)
    named = {"now": local_now, "today": midnight, "yesterday": midnight - timedelta(days=1)}
    if value in named:
        return named[value]
    relative = _RELATIVE.match(value)
    if relative and relative.group(2) in _UNITS:
        return now - timedelta(seconds=int(relative.group(1)) * _UNITS[relative.group(2)])
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
        hour, minute, second = (int(part) for part in (value + ":00").split(":")[:3])
        if hour < 24 and minute < 60 and second < 60:
            return datetime.combine(local_now.date(), time(hour, minute, second), tz)
    try:
        return _aware(datetime.fromisoformat(text.strip().replace("Z", "+00:00")), tz)
    except ValueError:
        pass
    raise UsageError(
        f"--since {text!r}: not a time",
        hint='Use e.g. "2026-11-28 08:00", "08:00", "today", "yesterday", "1h ago" or "-30min".',
    )


def _aware(when: datetime, tz: tzinfo) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def journal_since(when: datetime) -> str:
    """A time journalctl's --since accepts exactly: "@" and seconds since the epoch."""
    return f"@{int(when.timestamp())}"


def last(entries: list[LogEntry], count: int | None) -> list[LogEntry]:
    return entries if count is None else entries[-count:] if count > 0 else []
