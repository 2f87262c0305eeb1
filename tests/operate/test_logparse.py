"""Journal JSON lines, nginx access/error lines, --since, and merging by time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from deploykit.errors import UsageError
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

CET = timezone(timedelta(hours=1))


def journal(micros: int, message: object, unit: str = "demo.service", **extra: str) -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": str(micros), "MESSAGE": message, "_SYSTEMD_UNIT": unit,
                       "PRIORITY": "6", "__CURSOR": f"s=1;i={micros}", **extra})  # fmt: skip


def test_a_journal_line_gives_time_unit_message_priority_and_cursor() -> None:
    cursors: list[str] = []
    entry = journal_line(journal(1795853881361735, 'INFO unix - "GET / HTTP/1.1" 200'), cursors)
    assert entry == LogEntry(
        datetime(2026, 11, 28, 8, 18, 1, 361735, tzinfo=UTC), "demo.service", 'INFO unix - "GET / HTTP/1.1" 200', 6
    )
    assert cursors == ["s=1;i=1795853881361735"]


def test_systemd_messages_about_a_unit_are_labelled_with_that_unit() -> None:
    line = journal(1795853880000000, "Listening on demo.socket.", unit="init.scope", UNIT="demo.socket")
    entry = journal_line(line)
    assert entry is not None and entry.source == "demo.socket"


def test_journal_messages_that_are_not_utf8_or_null() -> None:
    entry = journal_line(journal(1, [104, 105, 255]))
    assert entry is not None and entry.message == "hi\ufffd"
    empty = journal_line(journal(1, None))
    assert empty is not None and empty.message == ""


def test_journalctl_notes_and_blank_lines() -> None:
    assert journal_line("") is None
    assert journal_line("-- No entries --") == LogEntry(None, "journal", "-- No entries --")
    assert journal_line("[1, 2]") == LogEntry(None, "journal", "[1, 2]")


def test_nginx_access_line_time_has_its_own_offset() -> None:
    line = '127.0.0.1 - - [28/Nov/2026:08:11:46 +0100] "GET /x HTTP/1.1" 200 90 "-" "curl/7.88.1"\n'
    entry = access_line(line)
    assert entry.source == ACCESS and entry.message == line.rstrip("\n")
    assert entry.time is not None and entry.time.astimezone(UTC) == datetime(2026, 11, 28, 7, 11, 46, tzinfo=UTC)
    assert access_line("garbage").time is None


def test_nginx_error_line_is_in_the_hosts_local_time_with_a_level() -> None:
    line = "2026/11/28 08:11:46 [crit] 112#112: *33 connect() to unix:/run/demo.sock failed (13: Permission denied)"
    entry = error_line(line, CET)
    assert entry.source == ERROR and entry.priority == 2
    assert entry.time == datetime(2026, 11, 28, 7, 11, 46, tzinfo=UTC)
    assert error_line("2026/11/28 08:11:46 [warn] 1#1: x", UTC).priority == 4
    assert error_line("a continuation line", UTC).time is None


def test_utc_offset() -> None:
    assert utc_offset("+0100\n") == CET
    assert utc_offset("-0530") == timezone(-timedelta(hours=5, minutes=30))
    assert utc_offset("") == UTC


def test_merge_orders_by_time_and_keeps_source_order_on_ties() -> None:
    t = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
    service = [LogEntry(t, "demo.service", "a"), LogEntry(t + timedelta(seconds=2), "demo.service", "d")]
    access = [LogEntry(t, ACCESS, "b"), LogEntry(t + timedelta(seconds=1), ACCESS, "c")]
    errors = [LogEntry(t + timedelta(seconds=3), ERROR, "e"), LogEntry(None, ERROR, "e continued")]
    merged = merge(service, access, errors)
    assert [e.message for e in merged] == ["a", "b", "c", "d", "e", "e continued"]
    assert merged[-1].time == t + timedelta(seconds=3)  # a continuation takes the time of its line


def test_whole_second_nginx_times_sort_after_the_apps_lines_of_that_second() -> None:
    t = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
    app = [LogEntry(t + timedelta(milliseconds=300), "demo.service", "app"),
           LogEntry(t + timedelta(seconds=1, milliseconds=1), "demo.service", "next second")]  # fmt: skip
    nginx = [access_line('127.0.0.1 - - [28/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 2 "-" "curl"')]
    assert nginx[0].coarse and nginx[0].time == t
    assert [e.source for e in merge(nginx, app)] == ["demo.service", ACCESS, "demo.service"]
    continued = merge([error_line("2026/11/28 08:00:00 [error] x", UTC), error_line("more", UTC)])
    assert continued[1].time == t and continued[1].coarse


def test_merge_of_mixed_offsets_compares_instants() -> None:
    utc = LogEntry(datetime(2026, 11, 28, 7, 30, tzinfo=UTC), "demo.service", "first")
    local = LogEntry(datetime(2026, 11, 28, 8, 45, tzinfo=CET), ERROR, "second")  # 07:45 UTC
    assert [e.message for e in merge([local], [utc])] == ["first", "second"]


def test_last_and_since_filter() -> None:
    t = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    entries = [LogEntry(t + timedelta(minutes=i), "x", str(i)) for i in range(5)] + [LogEntry(None, "x", "no time")]
    assert [e.message for e in last(entries[:5], 2)] == ["3", "4"]
    assert last(entries, 0) == [] and last(entries, None) == entries
    assert [e.message for e in since_filter(entries, t + timedelta(minutes=3))] == ["3", "4"]


NOW = datetime(2026, 11, 28, 10, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h ago", datetime(2026, 11, 28, 9, 30, tzinfo=UTC)),
        ("-30min", datetime(2026, 11, 28, 10, 0, tzinfo=UTC)),
        ("2d", datetime(2026, 11, 26, 10, 30, tzinfo=UTC)),
        ("90 seconds ago", datetime(2026, 11, 28, 10, 28, 30, tzinfo=UTC)),
        ("now", NOW),
        ("today", datetime(2026, 11, 28, 0, 0, tzinfo=CET)),
        ("yesterday", datetime(2026, 11, 27, 0, 0, tzinfo=CET)),
        ("08:00", datetime(2026, 11, 28, 8, 0, tzinfo=CET)),
        ("8:00:30", datetime(2026, 11, 28, 8, 0, 30, tzinfo=CET)),
        ("2026-11-28 08:00", datetime(2026, 11, 28, 8, 0, tzinfo=CET)),
        ("2026-11-28T08:00:00Z", datetime(2026, 11, 28, 8, 0, tzinfo=UTC)),
        ("2026-11-28", datetime(2026, 11, 28, 0, 0, tzinfo=CET)),
    ],
)
def test_since_accepts_journalctl_like_times(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW, CET) == expected


@pytest.mark.parametrize("text", ["bogus", "25:00", "1 fortnight ago", ""])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(UsageError, match="--since"):
        parse_since(text, NOW, CET)


def test_journal_since_is_exact_epoch_seconds() -> None:
    assert journal_since(datetime(2026, 11, 28, 8, 18, 1, tzinfo=UTC)) == "@1795853881"
