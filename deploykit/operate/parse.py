"""Pure parsers of the command output `status` and `doctor` read from a host:
``systemctl show``, ``ps``, ``stat``, ``id``, ``ss``, ``df``. Each takes text and
returns plain data; none runs anything, so the unit tests feed them canned output."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

#: the properties `status` asks systemd for, per unit
UNIT_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "StatusText",
    "NRestarts",
    "ActiveEnterTimestamp",
    "UnitFileState",
)
_SERVED = re.compile(r"(\d+) workers?, (\d+) requests? served")
_PROCESS = re.compile(r'\("([^"]*)",pid=(\d+)')


@dataclass(frozen=True)
class UnitState:
    name: str
    load: str = "unknown"
    active: str = "unknown"
    sub: str = "unknown"
    main_pid: int | None = None
    status_text: str = ""
    restarts: int = 0
    since: str = ""  # ISO 8601 UTC, "" when the unit never started
    enabled: str = ""


def show_properties(text: str) -> dict[str, str]:
    """``Key=value`` lines of ``systemctl show`` (values may contain "=")."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value
    return found


def unit_state(name: str, text: str) -> UnitState:
    """One unit from ``systemctl show --timestamp=unix -p ...`` output."""
    props = show_properties(text)
    pid = _int(props.get("MainPID", ""))
    return UnitState(
        name=props.get("Id") or name,
        load=props.get("LoadState") or "unknown",
        active=props.get("ActiveState") or "unknown",
        sub=props.get("SubState") or "unknown",
        main_pid=pid if pid else None,
        status_text=props.get("StatusText", ""),
        restarts=_int(props.get("NRestarts", "")) or 0,
        since=timestamp(props.get("ActiveEnterTimestamp", "")),
        enabled=props.get("UnitFileState", ""),
    )


def timestamp(value: str) -> str:
    """systemd's ``@EPOCH`` (``--timestamp=unix``) as ISO 8601 UTC; other text as it is."""
    value = value.strip()
    if value.startswith("@") and value[1:].isdigit():
        return datetime.fromtimestamp(int(value[1:]), UTC).isoformat(timespec="seconds")
    return "" if value in ("", "n/a") else value


def served(status_text: str) -> tuple[int | None, int | None]:
    """(workers, requests) from the server's sd_notify STATUS, e.g. "2 workers, 1234 requests served"."""
    match = _SERVED.search(status_text)
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def pids(text: str) -> list[int]:
    """``ps -o pid= --ppid N`` output: one PID a line."""
    return sorted(int(word) for word in text.split() if word.isdigit())


@dataclass(frozen=True)
class PathStat:
    mode: int
    owner: str
    group: str
    kind: str  # stat's %F: "socket", "regular file", "directory", ...


def path_stat(text: str) -> PathStat | None:
    """``stat -c '%a %U %G %F'`` output; None when it does not parse."""
    parts = text.strip().split(" ", 3)
    if len(parts) != 4:
        return None
    mode, owner, group, kind = parts
    try:
        return PathStat(int(mode, 8), owner, group, kind)
    except ValueError:
        return None


def groups(text: str) -> set[str]:
    """``id -G -n USER`` output: the user's group names."""
    return set(text.split())


def can_connect(stat: PathStat, user: str, user_groups: set[str]) -> bool:
    """Whether USER may connect to a unix socket with these permissions (connect needs write)."""
    if user == "root":
        return True
    if user == stat.owner:
        return bool(stat.mode & 0o200)
    if stat.group in user_groups:
        return bool(stat.mode & 0o020)
    return bool(stat.mode & 0o002)


@dataclass(frozen=True)
class Listener:
    address: str
    processes: tuple[str, ...]  # process names; () when ss could not tell (no root, other namespace)
    pids: tuple[int, ...]


def listeners(text: str) -> list[Listener]:
    """``ss -ltnpH 'sport = :PORT'`` lines: state, queues, local address, peer, users:(...)."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        procs = _PROCESS.findall(line)
        names = tuple(dict.fromkeys(name for name, _ in procs))
        found.append(Listener(fields[3], names, tuple(sorted({int(pid) for _, pid in procs}))))
    return found


@dataclass(frozen=True)
class DiskUsage:
    filesystem: str
    percent: int
    available_kb: int
    mount: str


def disk_usage(text: str) -> list[DiskUsage]:
    """``df -P PATH...`` output (the header line is skipped)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[4].endswith("%") and fields[4][:-1].isdigit():
            found.append(DiskUsage(fields[0], int(fields[4][:-1]), _int(fields[3]) or 0, fields[5]))
    return found


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None
