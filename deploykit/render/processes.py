"""Settings -> the units of ``[processes.<name>]`` and ``[timers.<name>]``.

Each service shares the app unit's [Service] body (``systemd.service_body``:
working directory, env file, identity, state folders, limits, sandbox), so a
process runs with the app's code, environment and hardening, and follows any
change to them. Unit names come from ``settings/processes.py``."""

from __future__ import annotations

from pathlib import PurePosixPath

from deploykit.render.bundle import Kind, RenderedFile
from deploykit.render.jinja import render_template
from deploykit.render.systemd import exec_line, service_body
from deploykit.settings import processes
from deploykit.settings.layout import code_location
from deploykit.settings.model import Settings
from deploykit.settings.processes import MARKER, SYSTEM_PATH


def environment(settings: Settings, instance: bool = False) -> list[tuple[str, str]]:
    """PATH with the venv's bin first (a bare command is the venv's), and the instance number."""
    found = [("PATH", f"{code_location(settings).bin}:{SYSTEM_PATH}")]
    if instance:
        found.append(("DEPLOYKIT_INSTANCE", "%i"))
    return found


def _identity_shared(settings: Settings) -> list[tuple[str, str]]:
    """A DynamicUser is allocated per unit name; naming the app unit's user shares its UID (and files)."""
    if settings.app.user is not None:
        return []
    return [("User", PurePosixPath(settings.paths.service_unit).stem)]


def _service(
    settings: Settings, file: str, kind: Kind, what: str, command: str | tuple[str, ...], **extra: object
) -> RenderedFile:
    body = service_body(settings, file)
    body["identity"] = [*body["identity"], *_identity_shared(settings)]
    content = render_template(
        "process.j2",
        **body,
        what=what,
        marker=MARKER,
        exec_start=exec_line(processes.argv(command)),
        **{
            "part_of": "",
            "oneshot": False,
            "wanted_by": "",
            "environment": environment(settings),
            "timeout_stop_sec": settings.timeout_stop_sec,
            **extra,
        },  # fmt: skip
    )
    return RenderedFile(path=f"{processes.unit_dir(settings)}/{file}", kind=kind, content=content)


def render_processes(settings: Settings) -> list[RenderedFile]:
    """The unit files of every process and timer, in settings order."""
    app = settings.app.name
    units = processes.groups(settings)
    files = []
    for name, process in settings.processes.items():
        group = units[f"processes.{name}"]
        stop = {"timeout_stop_sec": process.stop_timeout} if process.stop_timeout is not None else {}
        if process.instances == 1:
            description = f"deploykit app {app}: process {name}"
            files.append(_service(settings, group.main, Kind.PROCESS_UNIT, f"process {name}", process.command,
                                  description=description, wanted_by="multi-user.target", **stop))  # fmt: skip
            continue
        template = f"{group.stem}@.service"
        files.append(_service(settings, template, Kind.PROCESS_UNIT, f"process {name} (one instance)",
                              process.command, description=f"deploykit app {app}: process {name}, instance %i",
                              part_of=group.main, environment=environment(settings, instance=True),
                              **stop))  # fmt: skip
        target = render_template("process_target.j2", app=app, name=name, marker=MARKER, instances=group.services)
        files.append(RenderedFile(f"{processes.unit_dir(settings)}/{group.main}", Kind.PROCESS_UNIT, target))
    for name, timer in settings.timers.items():
        group = units[f"timers.{name}"]
        service = group.services[0]
        files.append(_service(settings, service, Kind.TIMER_UNIT, f"timer {name}", timer.command,
                              description=f"deploykit app {app}: timer {name} (its job)", oneshot=True,
                              timeout_start_sec=timer.timeout))  # fmt: skip
        content = render_template(
            "timer.j2", app=app, name=name, marker=MARKER, on_calendar=timer.on_calendar, service=service
        )
        files.append(RenderedFile(f"{processes.unit_dir(settings)}/{group.main}", Kind.TIMER_UNIT, content))
    return files
