"""[processes.<name>] and [timers.<name>]: what validation refuses (naming the field and the
source that set it), the unit names, and the on_calendar screen compared with systemd's parser."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploykit.errors import SettingsError
from deploykit.settings import processes
from deploykit.settings.load import load
from deploykit.settings.processes import calendar_spec
from tests.conftest import require

GOOD = '[app]\nname = "demo"\n'


def load_toml(tmp_path: Path, text: str) -> object:
    project = tmp_path / "deploykit.toml"
    project.write_text(GOOD + text)
    return load(project=project, environ={}).settings


WORKER = '[processes.worker]\ncommand = "x"\n'
NIGHTLY = '[timers.nightly]\ncommand = "x"\n'
#: (TOML after [app], the one problem expected: "deploykit.toml: <field>..." and a piece of the reason)
REFUSED = [
    ("[processes.worker]\ncommand = 3\n", "processes.worker.command = 3: must be a string (a shell line) or a list"),
    ('[processes.worker]\ncommand = ["celery", 3]\n', "processes.worker.command = ['celery', 3]: must be a string"),
    ("[processes.worker]\ncommand = { a = 1 }\n", "processes.worker.command: must be a string"),
    ('[processes.worker]\ncommand = ""\n', "processes.worker.command = '': must not be empty"),
    ("[processes.worker]\ncommand = []\n", "processes.worker.command = []: must not be empty"),
    ('[processes.worker]\ncommand = ["", "x"]\n', "processes.worker.command = ['', 'x']: must not be empty"),
    ('[processes.worker]\ncommand = "a\\nb"\n', "processes.worker.command = 'a\\nb': contains a newline"),
    ('[processes.worker]\ncommand = ["a\\u2028b"]\n', "processes.worker.command = ['a\\u2028b']: contains U+2028"),
    (f"{WORKER}instances = 0\n", "processes.worker.instances = 0: Input should be greater than or equal to 1"),
    (f"{WORKER}instances = -2\n", "processes.worker.instances = -2: Input should be greater"),
    (f'{WORKER}instances = "two"\n', "processes.worker.instances = 'two': Input should be a valid integer"),
    (f'{WORKER}user = "root"\n', "processes.worker.user = 'root': unknown setting"),
    ('[processes."a.b"]\ncommand = "x"\n', "processes.a.b = 'a.b': must be a unit name part"),
    ('[processes."w@1"]\ncommand = "x"\n', "must be a unit name part"),
    ('[processes."-w"]\ncommand = "x"\n', "must be a unit name part"),
    ('[processes."../../etc/x"]\ncommand = "x"\n', "must be a unit name part"),
    ('[processes."w\\n"]\ncommand = "x"\n', "contains a newline"),
    ('[processes.worker]\ncommand = "x"\n[timers.worker]\ncommand = "x"\non_calendar = "daily"\n',
     "timers.worker: timers.worker would install demo-worker.*, which processes.worker already names"),
    # with instances the files differ (demo-worker@.service, .target), but one stem groups a process's units
    (f'{WORKER}instances = 2\n[timers.worker]\ncommand = "x"\non_calendar = "daily"\n',
     "timers.worker: timers.worker would install demo-worker.*, which processes.worker already names"),
    ('[paths]\nservice_unit = "/etc/systemd/system/demo-web.service"\n[processes.web]\ncommand = "x"\ninstances = 3\n',
     "processes.web: processes.web would install demo-web.*, which paths.service_unit already names"),
    ('[paths]\nservice_unit = "/etc/systemd/system/demo-web.service"\n[processes.web]\ncommand = "x"\n',
     "processes.web: processes.web would install demo-web.*, which paths.service_unit already names"),
    ('[paths]\nsocket_unit = "/etc/systemd/system/demo-tick.timer"\n'
     '[timers.tick]\ncommand = "x"\non_calendar = "daily"\n',
     "timers.tick: timers.tick would install demo-tick.*, which paths.socket_unit already names"),
    # with ACME on, <app>-acme-renew.service and .timer are the renewal job's
    ('[nginx]\nserver_names = ["shop.example.com"]\n[nginx.tls.acme]\n[processes.acme-renew]\ncommand = "x"\n',
     "processes.acme-renew: processes.acme-renew would install demo-acme-renew.*, which paths.acme_timer_unit"),
    ('[timers.nightly]\ncommand = "x"\non_calendar = "bogus"\n',
     "timers.nightly.on_calendar = 'bogus': 'bogus' is neither a weekday"),
    (f'{NIGHTLY}on_calendar = "25:00"\n', "timers.nightly.on_calendar = '25:00': hour 25 is outside 0..23"),
    ('[timers.nightly]\ncommand = "x"\non_calendar = "daily\\nOnCalendar=hourly"\n', "timers.nightly.on_calendar = "),
    ('[timers.nightly]\ncommand = "x"\non_calendar = ""\n', "timers.nightly.on_calendar = '': must not be empty"),
    (f"{NIGHTLY}on_calendar = 3\n", "timers.nightly.on_calendar = 3: Input should be a valid string"),
    ('[timers.nightly]\ncommand = "x"\n', "timers.nightly.on_calendar: required, but no source sets it"),
    ('[timers.nightly]\non_calendar = "daily"\n', "timers.nightly.command: required, but no source sets it"),
    ('[timers.nightly]\ncommand = 1.5\non_calendar = "daily"\n', "timers.nightly.command = 1.5: must be a string"),
    # enabled = false turns off what a profile (or an earlier source) defines; a name nothing defines is refused
    ("[processes.wroker]\nenabled = false\n", "processes.wroker: enabled = false turns off a process that a profile"),
    ("[timers.nightly]\nenabled = false\n", "timers.nightly: enabled = false turns off a timer that a profile"),
    (f'{WORKER}enabled = "no"\n', "processes.worker.enabled = 'no': Input should be a valid boolean"),
    (f'{NIGHTLY}on_calendar = "daily"\ntimeout = 0\n', "timers.nightly.timeout = 0: Input should be greater"),
    (f"{WORKER}stop_timeout = 0\n", "processes.worker.stop_timeout = 0: Input should be greater than or equal to 1"),
]  # fmt: skip


@pytest.mark.parametrize(("toml", "expected"), REFUSED, ids=[f"refused-{i}" for i in range(len(REFUSED))])
def test_bad_processes_and_timers_are_refused_naming_the_field_and_source(
    tmp_path: Path, toml: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_toml(tmp_path, toml)
    problems = info.value.problems
    assert any(expected in p for p in problems), problems
    source = f"{tmp_path / 'deploykit.toml'}: "  # the source that set it
    assert all(p.startswith(source) or ": required, but" in p for p in problems), problems


def test_a_bare_set_value_is_a_shell_line_of_a_process() -> None:
    """--set without TOML quotes: the command takes text (the loader looks through the table of processes)."""
    settings = load(environ={}, overrides=("app.name=demo", "processes.worker.command=celery -A proj worker")).settings
    assert settings.processes["worker"].command == "celery -A proj worker"


def test_unit_names_come_from_one_place() -> None:
    settings = load(
        environ={},
        overrides=(
            "app.name=shop",
            'processes.worker.command="w"',
            'processes.pool.command="p"',
            "processes.pool.instances=2",
            'timers.nightly.command="n"',
            'timers.nightly.on_calendar="daily"',
        ),
    ).settings
    found = {field: (g.files, g.main, g.services) for field, g in processes.groups(settings).items()}
    assert found == {
        "processes.worker": (("shop-worker.service",), "shop-worker.service", ("shop-worker.service",)),
        "processes.pool": (("shop-pool@.service", "shop-pool.target"), "shop-pool.target",
                           ("shop-pool@1.service", "shop-pool@2.service")),
        "timers.nightly": (("shop-nightly.service", "shop-nightly.timer"), "shop-nightly.timer",
                           ("shop-nightly.service",)),
    }  # fmt: skip
    assert processes.app_units(settings) == ("shop.service", "shop.socket")
    # the groups found from files on a host are the ones the settings name
    back = processes.from_files([name for g in processes.groups(settings).values() for name in g.files])
    assert {(g.main, g.kind) for g in back} == {(g.main, g.kind) for g in processes.groups(settings).values()}


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("celery -A proj worker", ["/bin/sh", "-c", "celery -A proj worker"]),
        (("celery", "-A", "proj"), ["/usr/bin/env", "celery", "-A", "proj"]),
        (("/opt/tool/run", "--x"), ["/opt/tool/run", "--x"]),
    ],
)
def test_a_command_is_a_shell_line_or_an_argv(command: str | tuple[str, ...], argv: list[str]) -> None:
    assert processes.argv(command) == argv


#: calendar events, valid and not, each compared with `systemd-analyze calendar` on this machine
CALENDAR = [
    "daily", "hourly", "minutely", "weekly", "monthly", "yearly", "annually", "quarterly", "semiannually",
    "Daily", "daily UTC", "weekly Europe/Berlin", "*-*-* 03:00:00", "*-*-* 03:00", "03:00", "*:0/15",
    "*:*:0/5", "Mon..Fri 09:00", "Sat,Sun 12:00", "Mon,Wed..Fri *-*-* 08:30", "monday 10:00",
    "Mon *-*-1 00:00 UTC", "2026-01-01", "2026-01-01 00:00:00", "*-02~03", "*-*~1 23:00", "*-01,07-01 00:00",
    "*-*-1..7 06:00", "12:30:15.5", "@1700000000", "Mon", "*-*-* 00/2:00", "*-1/2-1", "Mon-Fri 09:00",
    "mon-tue,fri", "*-*-5..5",
    # refused
    "bogus", "25:00", "12:60", "*-13-01", "*-*-32", "Mon..Funday", "daily daily", "Europe/Berlin",
    "*-*-* 1:2:3:4", "1970-01-01 00:00 UTC extra", "0:0/0", "12", "every day", "*-*-* 03:00 +",
    "Fri-Mon", "Fri..Mon", "*-*-10..5", "*-*-* 10..5:00", "Mon..Wed..Fri", "Mon,,Tue",
]  # fmt: skip
#: The screen is syntax only: a well-formed zone name this machine's systemd does not know passes it,
#: and `deploykit check` (systemd-analyze calendar) refuses it (tests/check/test_real_validators.py).
SYNTAX_ONLY = ["*-*-* 03:00 MyZone/Nowhere"]


def systemd_accepts(spec: str) -> bool:
    done = subprocess.run([require("systemd-analyze"), "calendar", spec], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.parametrize("spec", CALENDAR)
def test_the_calendar_screen_agrees_with_systemd(spec: str) -> None:
    try:
        calendar_spec(spec)
        screened = True
    except ValueError:
        screened = False
    assert screened == systemd_accepts(spec), f"{spec!r}: screen {screened}, systemd {not screened}"


@pytest.mark.parametrize("spec", SYNTAX_ONLY)
def test_what_only_systemd_can_refuse_passes_the_screen(spec: str) -> None:
    assert calendar_spec(spec) == spec
    assert not systemd_accepts(spec)


def test_a_profiles_process_or_timer_is_turned_off_by_enabled_false(tmp_path: Path) -> None:
    (tmp_path / "off").mkdir()
    project = tmp_path / "off" / "deploykit.toml"
    project.write_text(GOOD + "[processes.worker]\nenabled = false\n")
    settings = load(profile="celery", project=project, environ={}).settings
    assert list(settings.processes) == [] and list(settings.timers) == ["nightly"]
    assert [g for g in processes.groups(settings)] == ["timers.nightly"]
    off = load(profile="celery", environ={}, overrides=("app.name=demo", "timers.nightly.enabled=false")).settings
    assert list(off.processes) == ["worker"] and list(off.timers) == []
    again = load(profile="celery", environ={}, overrides=("app.name=demo", "processes.worker.enabled=true")).settings
    assert list(again.processes) == ["worker"]


def test_timeouts_default_to_an_hour_for_a_timers_run_and_the_apps_for_a_stop() -> None:
    settings = load(profile="celery", environ={}, overrides=("app.name=demo",)).settings
    assert settings.timers["nightly"].timeout == 3600 and settings.processes["worker"].stop_timeout is None
