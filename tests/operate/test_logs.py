"""`deploykit logs` on a FakeHost: the merged tail, and following every source."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest

from deploykit.errors import ToolMissing
from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from deploykit.operate.logparse import ACCESS, ERROR, LogEntry
from deploykit.operate.logs import follow_streams, logs, tail
from deploykit.settings.model import Settings
from tests.operate.conftest import Canned

ACCESS_LOG = (
    '127.0.0.1 - - [28/Nov/2026:08:18:01 +0000] "GET / HTTP/1.1" 200 90 "-" "deploykit-health"\n'
    '127.0.0.1 - - [28/Nov/2026:08:18:24 +0000] "GET /logs-probe-1 HTTP/1.1" 200 102 "-" "curl/7.88.1"\n'
)
ERROR_LOG = '2026/11/28 09:18:10 [error] 111#111: *10 open() "/srv/demo/static/x" failed (2: No such file)\n'


def journal_json(micros: int, message: str, cursor: str) -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": str(micros), "MESSAGE": message, "_SYSTEMD_UNIT": "demo.service",
                       "PRIORITY": "6", "__CURSOR": cursor})  # fmt: skip


def with_logs(host: FakeHost, canned: Canned) -> FakeHost:
    host.files["/var/log/nginx/demo.access.log"] = FileFacts(ACCESS_LOG.encode(), 0o644, "root", "root")
    host.files["/var/log/nginx/demo.error.log"] = FileFacts(ERROR_LOG.encode(), 0o644, "root", "root")
    canned.offset = "+0100\n"  # the error log is in local time: 09:18:10 +0100 is 08:18:10 UTC
    canned.journal = "\n".join([
        journal_json(1795853881361735, "worker 107 ready", "c1"),
        journal_json(1795853904125000, 'GET /logs-probe-1 HTTP/1.1" 200', "c2"),
    ]) + "\n"  # fmt: skip
    return host


def collect(host: FakeHost, settings: Settings, **options: object) -> list[LogEntry]:
    got: list[LogEntry] = []
    logs(host, settings, got.append, **options)  # type: ignore[arg-type]
    return got


def test_the_tail_merges_journal_and_nginx_logs_by_time(host: FakeHost, settings: Settings, canned: Canned) -> None:
    entries = collect(with_logs(host, canned), settings)
    assert [(e.source, e.time.strftime("%H:%M:%S") if e.time else None) for e in entries] == [
        ("demo.service", "09:18:01"),
        (ACCESS, "09:18:01"),  # whole seconds: after the app's lines of the same second
        (ERROR, "09:18:10"),
        ("demo.service", "09:18:24"),
        (ACCESS, "09:18:24"),
    ]  # shown in the host's zone (+0100)
    assert all(e.time is not None and e.time.utcoffset() == timedelta(hours=1) for e in entries)
    assert "/logs-probe-1" in entries[4].message and entries[0].message == "worker 107 ready"
    journal = next(c for c in host.commands if c[0] == "journalctl")
    assert journal == ["journalctl", "-u", "demo.service", "-u", "demo.socket", "-o", "json", "--no-pager", "-n", "50"]


def test_lines_keeps_the_newest_of_the_merge(host: FakeHost, settings: Settings, canned: Canned) -> None:
    entries = collect(with_logs(host, canned), settings, lines=2)
    assert [e.source for e in entries] == ["demo.service", ACCESS]


def test_since_filters_nginx_lines_and_passes_an_exact_time_to_journalctl(
    host: FakeHost, settings: Settings, canned: Canned
) -> None:
    entries = collect(with_logs(host, canned), settings, since="2026-11-28T08:18:05Z")
    # the canned journal ignores --since; the nginx lines before 08:18:05 UTC are filtered here
    assert [e.source for e in entries] == ["demo.service", ERROR, "demo.service", ACCESS]
    journal = next(c for c in host.commands if c[0] == "journalctl")
    assert journal[-2:] == ["--since", "@1795853885"] and "-n" not in journal


def test_missing_nginx_logs_are_empty_and_journalctl_missing_is_an_error(
    host: FakeHost, settings: Settings, canned: Canned
) -> None:
    assert collect(host, settings) == []
    host.hook = lambda argv: (
        CommandResult(127, "", "journalctl: not found") if argv[0] == "journalctl" else canned.answer(argv)
    )
    with pytest.raises(ToolMissing, match="journalctl is not installed"):
        collect(host, settings)


def test_follow_streams_start_exactly_where_the_tail_ended(host: FakeHost, settings: Settings, canned: Canned) -> None:
    _, position = tail(with_logs(host, canned), settings, UTC, lines=50, since=None)
    argvs = [argv for argv, _ in follow_streams(settings, position, UTC)]
    assert argvs == [
        ["journalctl", "-u", "demo.service", "-u", "demo.socket", "-o", "json", "--no-pager", "--follow",
         "--after-cursor", "c2"],
        ["tail", "-F", "-c", f"+{len(ACCESS_LOG) + 1}", "/var/log/nginx/demo.access.log"],
        ["tail", "-F", "-c", f"+{len(ERROR_LOG) + 1}", "/var/log/nginx/demo.error.log"],
    ]  # fmt: skip


def test_follow_emits_every_source_until_they_end(host: FakeHost, settings: Settings, canned: Canned) -> None:
    streamed = {
        "journalctl": journal_json(1795853999000000, "new journal line", "c3") + "\n",
        "tail": '127.0.0.1 - - [28/Nov/2026:08:20:00 +0000] "GET /follow HTTP/1.1" 200 1 "-" "curl"\n',
    }

    def answer(argv: list[str]) -> CommandResult | None:
        if "--follow" in argv or argv[:2] == ["tail", "-F"]:
            return CommandResult(0, streamed[argv[0]])
        return canned.answer(argv)

    host.hook = answer
    entries = collect(with_logs(host, canned), settings, lines=0, follow_new=True)
    messages = sorted(e.message for e in entries)
    assert messages == sorted(["new journal line"] + [streamed["tail"].strip()] * 2)  # access and error tails
    assert {e.source for e in entries} == {"demo.service", ACCESS, ERROR}
