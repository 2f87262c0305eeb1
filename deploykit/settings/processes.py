"""``[processes.<name>]`` and ``[timers.<name>]``: commands that run beside the app, each
as its own systemd units, with the app's identity, env file, sandbox and code.

This module is the one place that names units: the app's own (from ``paths``) and
those of each process and timer. The model refuses a name whose units would
collide with another's; render, plan, apply, status, logs and doctor all take the
names from here.

- A process with one instance is ``<app>-<name>.service``. With ``instances`` N > 1
  it is a template ``<app>-<name>@.service`` and a ``<app>-<name>.target`` that
  wants instances 1..N; every instance is ``PartOf=`` the target, so stopping
  the target stops them all, the instances it no longer wants included (a plain
  list of enabled instances would leave those running).
- A timer is a oneshot ``<app>-<name>.service`` started by ``<app>-<name>.timer``.

The *main* unit of a group is the one apply enables, starts, restarts and stops:
the timer, the target, or the process's service.

A command is a shell line (``/bin/sh -c``) or an argv list, like a deploy hook;
the venv's ``bin`` comes first on ``PATH``.

``on_calendar`` gets a pure syntax screen here (``calendar_spec``), which covers
the forms of systemd.time(7) that tests/settings compares with
``systemd-analyze calendar``; ``check`` runs ``systemd-analyze calendar`` itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, field_validator, model_validator

from deploykit.settings.base import Model
from deploykit.settings.syntax import no_control
from deploykit.settings.types import Syntax

#: X-* keys are ignored by systemd: this line marks a unit file as one of APP's processes or timers,
#: so apply finds the units of a process deleted from the settings (and never another app's).
MARKER = "X-Deploykit-App"
#: after the venv's bin, the search path of a process's or timer's command (as for deploy hooks)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def unit_word(value: str) -> str:
    no_control(value)
    if not _WORD.fullmatch(value):
        raise ValueError(
            "must be a unit name part: 1-64 letters, digits, _ or -, starting with a letter or digit "
            "(it becomes <app>-<name>.service)"
        )
    return value


# --- on_calendar: a pure screen of systemd.time(7)'s calendar events ---------------------------
_SHORTHANDS = {"minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "quarterly", "semiannually"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {*_DAYS, "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_ZONE = re.compile(r"UTC|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)+")
_NUMBER = r"[0-9]+"
_VALUE = re.compile(rf"(\*|(?P<a>{_NUMBER})(\.\.(?P<b>{_NUMBER}))?)(/(?P<step>{_NUMBER}))?")
_FRACTION = r"(\.[0-9]{1,6})?"
_SECONDS = re.compile(rf"(\*|(?P<a>{_NUMBER}){_FRACTION}(\.\.(?P<b>{_NUMBER}){_FRACTION})?)(/[0-9]+(\.[0-9]+)?)?")


def _component(text: str, low: int, high: int, what: str, seconds: bool = False) -> None:
    """A comma list of *, N, N..M, each with an optional /STEP; N and M within LOW..HIGH."""
    for part in text.split(","):
        found = (_SECONDS if seconds else _VALUE).fullmatch(part)
        if found is None:
            raise ValueError(f"{what} {part!r} is not *, a number, a range N..M or one of those with /STEP")
        for key in ("a", "b"):
            number = found.group(key)
            if number is not None and not low <= int(number) <= high:
                raise ValueError(f"{what} {number} is outside {low}..{high}")
        if found.group("b") is not None and int(found.group("b")) < int(found.group("a")):
            raise ValueError(f"{what} range {part!r} runs backwards")
        step = found.groupdict().get("step")
        if step is not None and int(step) == 0:
            raise ValueError(f"{what} {part!r}: a repetition of 0 never advances")


def _weekdays(text: str) -> None:
    """A comma list of days and ranges (Mon..Fri or Mon-Fri), each range forwards."""
    for part in text.split(","):
        days = part.split("..") if ".." in part else part.split("-")
        if len(days) > 2:
            raise ValueError(f"{part!r} is not a weekday or a range of two")
        for day in days:
            if day.lower() not in _DAY_NAMES:
                raise ValueError(
                    f"{day!r} is neither a weekday (Mon, Tue, ... or Monday, ...) "
                    f"nor a shorthand ({', '.join(sorted(_SHORTHANDS))})"
                )
        first, last = (_DAYS.index(d[:3].lower()) for d in (days[0], days[-1]))
        if first > last:
            raise ValueError(f"{part!r} runs backwards (weeks start on Monday)")


def _date(text: str) -> None:
    found = re.fullmatch(r"(?:(?P<year>[^-~]+)-)?(?P<month>[^-~]+)(?P<sep>[-~])(?P<day>[^-~]+)", text)
    if found is None:
        raise ValueError(f"date {text!r} is not [YEAR-]MONTH-DAY (or MONTH~DAY, counted from the month's end)")
    if found.group("year") is not None:
        _component(found.group("year"), 1970, 2199, "year")
    _component(found.group("month"), 1, 12, "month")
    _component(found.group("day"), 1, 31, "day")


def _time(text: str) -> None:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"time {text!r} is not HOUR:MINUTE[:SECOND]")
    _component(parts[0], 0, 23, "hour")
    _component(parts[1], 0, 59, "minute")
    if len(parts) == 3:
        _component(parts[2], 0, 60, "second", seconds=True)


def calendar_spec(value: str) -> str:
    """A calendar event systemd accepts: a shorthand (daily, hourly, ...), or
    ``[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]``, or ``@EPOCH``."""
    no_control(value)
    tokens = value.split()
    if not tokens:
        raise ValueError("must not be empty")
    if len(tokens) == 1 and re.fullmatch(r"@[0-9]+", tokens[0]):
        return value
    if len(tokens) > 1 and _ZONE.fullmatch(tokens[-1]) and tokens[-1].lower() not in _SHORTHANDS:
        tokens = tokens[:-1]
    if len(tokens) == 1 and tokens[0].lower() in _SHORTHANDS:
        return value
    if tokens and tokens[0][:1].isalpha():
        _weekdays(tokens.pop(0))
    if tokens and ":" not in tokens[0]:
        _date(tokens.pop(0))
    if tokens:
        _time(tokens.pop(0))
    if tokens:
        raise ValueError(f"unexpected {' '.join(tokens)!r} after the time (a calendar event is "
                         "[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE])")  # fmt: skip
    return value


UnitWord = Annotated[str, AfterValidator(unit_word), Syntax("unit name part")]
CalendarSpec = Annotated[str, AfterValidator(calendar_spec), Syntax("calendar event")]


def _shape(value: object) -> object:
    """A string or a list of strings, each one line: one clear refusal, not one per union member."""
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list | tuple) or not all(isinstance(v, str) for v in words):
        raise ValueError("must be a string (a shell line) or a list of strings (an argv)")
    for word in words:
        no_control(word)
    return value


#: a shell line (/bin/sh -c) or an argv list (its first word looked up on PATH, the venv's bin first)
Command = Annotated[str | tuple[str, ...], BeforeValidator(_shape), Syntax("command")]


def _command(value: str | tuple[str, ...]) -> str | tuple[str, ...]:
    if (isinstance(value, str) and not value.strip()) or value == () or (not isinstance(value, str) and not value[0]):
        raise ValueError("must not be empty")
    return value


def _turned_off(kind: str) -> Callable[[Any], Any]:
    """``enabled = false`` with no command: nothing (no profile, no earlier source) defines that name."""

    def check(data: Any) -> Any:
        if isinstance(data, dict) and data.get("enabled") is False and "command" not in data:
            raise ValueError(
                f"enabled = false turns off a {kind} that a profile or deploykit.toml defines, "
                f"but none defines this one (check the name)"
            )
        return data

    return check


ENABLED = "false: leave out a {} a profile defines (apply stops and removes its units)"


class ProcessSettings(Model):
    command: Command = Field(description="a shell line, or an argv list; the venv's bin is first on PATH")
    instances: int = Field(default=1, ge=1, le=64, description="more than 1: <app>-<name>@1..N.service")
    enabled: StrictBool = Field(default=True, description=ENABLED.format("process"))
    stop_timeout: int | None = Field(
        default=None, ge=1, le=86400, description="TimeoutStopSec= (seconds); default: the app's stop timeout"
    )

    _not_empty = field_validator("command")(_command)
    _defined = model_validator(mode="before")(_turned_off("process"))


class TimerSettings(Model):
    command: Command = Field(description="a shell line, or an argv list; run as a oneshot service")
    on_calendar: CalendarSpec = Field(description="OnCalendar= (systemd.time(7)), e.g. daily or *-*-* 03:00")
    timeout: int = Field(
        default=3600, ge=1, le=7 * 86400, description="seconds a run may take (TimeoutStartSec=): then it is killed"
    )
    enabled: StrictBool = Field(default=True, description=ENABLED.format("timer"))

    _not_empty = field_validator("command")(_command)
    _defined = model_validator(mode="before")(_turned_off("timer"))


def without_disabled(value: Any) -> Any:
    """The [processes] or [timers] table less the entries turned off (``enabled = false``) over a
    definition; one with no definition stays, for ``_turned_off`` to refuse by its name."""
    if not isinstance(value, dict):
        return value
    return {
        name: entry
        for name, entry in value.items()
        if not (isinstance(entry, dict) and entry.get("enabled") is False and "command" in entry)
    }


def shown(command: str | tuple[str, ...]) -> str:
    """The command as a reader sees it in plan and apply output: the shell line, or the argv quoted."""
    return command if isinstance(command, str) else shlex.join(command)


def argv(command: str | tuple[str, ...]) -> list[str]:
    """What ExecStart= runs: a shell line through /bin/sh, a list as it is (a bare first word through env)."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if command[0].startswith("/"):
        return list(command)
    return ["/usr/bin/env", *command]


# --- unit names -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitGroup:
    """The units of one process or timer (see the module's docstring)."""

    kind: Literal["process", "timer"]
    stem: str  # <app>-<name>
    files: tuple[str, ...]  # unit file names
    main: str
    #: the services that run the command: the process's, its instances, or the timer's job
    services: tuple[str, ...]

    @property
    def restarts_with_code(self) -> bool:
        """A process runs the app's code and env all the time; a timer's job reads them at its next run."""
        return self.kind == "process"


class _UnitPaths(Protocol):
    @property
    def service_unit(self) -> str: ...
    @property
    def socket_unit(self) -> str: ...
    @property
    def acme_service_unit(self) -> str: ...
    @property
    def acme_timer_unit(self) -> str: ...


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _SocketActivation(Protocol):
    @property
    def socket_activation(self) -> bool: ...


class _Tls(Protocol):
    @property
    def acme(self) -> object | None: ...


class _Nginx(Protocol):
    @property
    def tls(self) -> _Tls | None: ...


class Settings(Protocol):
    """The parts of the settings model (settings/model.py's Settings) the unit names come from: a
    Protocol, so this module, which the model imports, imports nothing of the model's."""

    @property
    def app(self) -> _Named: ...
    @property
    def paths(self) -> _UnitPaths: ...
    @property
    def systemd(self) -> _SocketActivation: ...
    @property
    def nginx(self) -> _Nginx: ...
    @property
    def processes(self) -> Mapping[str, ProcessSettings]: ...
    @property
    def timers(self) -> Mapping[str, TimerSettings]: ...


def app_units(settings: Settings) -> tuple[str, str | None]:
    """The app's own service unit and socket unit (None without socket activation)."""
    service = PurePosixPath(settings.paths.service_unit).name
    socket = PurePosixPath(settings.paths.socket_unit).name if settings.systemd.socket_activation else None
    return service, socket


def unit_dir(settings: Settings) -> str:
    """Where process and timer units go: beside the app's service unit."""
    return str(PurePosixPath(settings.paths.service_unit).parent)


def process_group(app: str, name: str, instances: int) -> UnitGroup:
    stem = f"{app}-{name}"
    if instances == 1:
        return UnitGroup("process", stem, (f"{stem}.service",), f"{stem}.service", (f"{stem}.service",))
    services = tuple(f"{stem}@{i}.service" for i in range(1, instances + 1))
    return UnitGroup("process", stem, (f"{stem}@.service", f"{stem}.target"), f"{stem}.target", services)


def timer_group(app: str, name: str) -> UnitGroup:
    stem = f"{app}-{name}"
    return UnitGroup("timer", stem, (f"{stem}.service", f"{stem}.timer"), f"{stem}.timer", (f"{stem}.service",))


def groups(settings: Settings) -> dict[str, UnitGroup]:
    """'processes.<name>' / 'timers.<name>' -> its units, in settings order."""
    app = settings.app.name
    found = {f"processes.{n}": process_group(app, n, p.instances) for n, p in settings.processes.items()}
    found.update({f"timers.{n}": timer_group(app, n) for n in settings.timers})
    return found


def collisions(settings: Settings) -> list[tuple[str, str, str]]:
    """(unit, field, the field or app unit it collides with) for each unit name, or name stem, used
    twice: a process and a timer of one name would share <app>-<name>.service, or (with instances)
    the stem <app>-<name> that groups a process's or timer's units."""
    service, socket = app_units(settings)
    owner = {service: "paths.service_unit", **({socket: "paths.socket_unit"} if socket else {})}
    tls = settings.nginx.tls
    if tls is not None and tls.acme is not None:  # the renewal job's units are the app's too
        owner[PurePosixPath(settings.paths.acme_service_unit).name] = "paths.acme_service_unit"
        owner[PurePosixPath(settings.paths.acme_timer_unit).name] = "paths.acme_timer_unit"
    stems = {PurePosixPath(name).stem: field for name, field in owner.items()}
    found = []
    for field, group in groups(settings).items():
        if group.stem in stems:
            found.append((f"{group.stem}.*", field, stems[group.stem]))
            continue
        stems[group.stem] = field
        for name in group.files:
            if name in owner:
                found.append((name, field, owner[name]))
            else:
                owner[name] = field
    return found


def from_files(names: list[str]) -> list[UnitGroup]:
    """The groups of unit file NAMES (from a bundle, or found on the host): the inverse of the names above."""
    stems: dict[str, set[str]] = {}
    for name in names:
        path = PurePosixPath(name)
        stems.setdefault(path.stem.removesuffix("@"), set()).add(path.name)
    found = []
    for stem, files in stems.items():
        ordered = tuple(sorted(files))
        if f"{stem}.timer" in files:
            found.append(UnitGroup("timer", stem, ordered, f"{stem}.timer", (f"{stem}.service",)))
        elif f"{stem}.target" in files:
            found.append(UnitGroup("process", stem, ordered, f"{stem}.target", ()))
        else:
            found.append(UnitGroup("process", stem, ordered, f"{stem}.service", (f"{stem}.service",)))
    return found
