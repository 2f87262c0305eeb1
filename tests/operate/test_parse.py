"""The pure parsers of command output, fed real output captured on Debian 12."""

from __future__ import annotations

import pytest

from deploykit.operate.parse import (
    DiskUsage,
    Listener,
    PathStat,
    can_connect,
    disk_usage,
    groups,
    listeners,
    path_stat,
    pids,
    served,
    show_properties,
    timestamp,
    unit_state,
)
from tests.operate.conftest import NGINX_SHOW, SERVICE_SHOW, SS_NGINX


def test_systemctl_show_becomes_a_unit_state() -> None:
    state = unit_state("demo.service", SERVICE_SHOW)
    assert (state.name, state.load, state.active, state.sub) == ("demo.service", "loaded", "active", "running")
    assert (state.main_pid, state.restarts, state.enabled) == (105, 0, "disabled")
    assert state.status_text == "2 workers, 1234 requests served"
    assert state.since == "2026-11-28T08:18:01+00:00"
    assert unit_state("nginx.service", NGINX_SHOW).main_pid == 38


def test_a_stopped_or_unknown_unit_has_no_pid_and_no_since() -> None:
    state = unit_state("demo.service", "ActiveState=inactive\nSubState=dead\nMainPID=0\nActiveEnterTimestamp=\n")
    assert (state.active, state.main_pid, state.since, state.load) == ("inactive", None, "", "unknown")
    assert unit_state("x.service", "").active == "unknown"


def test_show_values_keep_their_equals_signs() -> None:
    assert show_properties("StatusText=a=b\nbroken line\n") == {"StatusText": "a=b"}


def test_timestamps_without_unix_form_pass_through() -> None:
    assert timestamp("Sat 2026-11-28 08:18:01 UTC") == "Sat 2026-11-28 08:18:01 UTC"
    assert timestamp("n/a") == timestamp("") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 workers, 1234 requests served", (2, 1234)),
        ("1 worker, 1 request served", (1, 1)),
        ("Gunicorn arbiter booted", (None, None)),
        ("", (None, None)),
    ],
)
def test_sd_notify_status_gives_workers_and_requests(text: str, expected: tuple[int | None, int | None]) -> None:
    assert served(text) == expected


def test_ps_pids() -> None:
    assert pids("    108\n    107\n") == [107, 108]
    assert pids("") == []


def test_stat_output() -> None:
    assert path_stat("660 root www-data socket\n") == PathStat(0o660, "root", "www-data", "socket")
    assert path_stat("644 root root regular empty file") == PathStat(0o644, "root", "root", "regular empty file")
    assert path_stat("") is None and path_stat("xyz a b c") is None


def test_id_groups() -> None:
    assert groups("www-data adm\n") == {"www-data", "adm"}


@pytest.mark.parametrize(
    ("mode", "owner", "group", "user", "user_groups", "ok"),
    [
        (0o660, "root", "www-data", "www-data", {"www-data"}, True),
        (0o600, "root", "www-data", "www-data", {"www-data"}, False),
        (0o640, "root", "www-data", "www-data", {"www-data"}, False),  # connect() needs write
        (0o600, "www-data", "root", "www-data", {"www-data"}, True),
        (0o660, "root", "demo", "www-data", {"www-data"}, False),
        (0o660, "root", "demo", "www-data", {"www-data", "demo"}, True),
        (0o666, "root", "root", "nginx", {"nginx"}, True),
        (0o600, "root", "root", "root", {"root"}, True),
    ],
)
def test_who_can_connect_to_a_unix_socket(
    mode: int, owner: str, group: str, user: str, user_groups: set[str], ok: bool
) -> None:
    assert can_connect(PathStat(mode, owner, group, "socket"), user, user_groups) is ok


def test_ss_listeners_with_and_without_process_names() -> None:
    assert listeners(SS_NGINX) == [
        Listener("0.0.0.0:80", ("nginx",), (38, 112)),
        Listener("[::]:80", ("nginx",), (38, 112)),
    ]
    apache = 'LISTEN 0 511 *:80 *:* users:(("apache2",pid=901,fd=4),("apache2",pid=900,fd=4))\n'
    assert listeners(apache) == [Listener("*:80", ("apache2",), (900, 901))]
    assert listeners("LISTEN 0 4096 0.0.0.0:80 0.0.0.0:*\n") == [Listener("0.0.0.0:80", (), ())]
    assert listeners("") == []


def test_df_lines_mount_points_may_have_spaces() -> None:
    text = (
        "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
        "/dev/vda         264212084 24175664  82215248      23% /\n"
        "/dev/sdb1            1000      950        50      95% /mnt/big disk\n"
    )
    assert disk_usage(text) == [
        DiskUsage("/dev/vda", 23, 82215248, "/"),
        DiskUsage("/dev/sdb1", 95, 50, "/mnt/big disk"),
    ]
    assert disk_usage("df: /srv/demo: No such file or directory\n") == []
