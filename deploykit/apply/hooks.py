"""``[deploy.hooks]``: commands run in a release as the service would run, through one host method.

Each hook runs in a transient ``systemd-run --wait --pipe --collect`` unit with the
service's properties (``appcheck.properties``: identity, working directory, env
file, state directories, limits and sandbox), in the release's folder, with the
release's ``venv/bin`` first on ``PATH`` and ``RuntimeMaxSec=`` set to the hook
timeout. A command runs as a process's does (``settings.processes.argv``): a string
is a shell line (``/bin/sh -c``); a list is an argv, a bare first word looked
up on that ``PATH`` (``/usr/bin/env``). The output streams, line by
line, to the apply's progress; the exit status comes back on a last marker line.

On a staging root (``--root``) the commands are recorded, never run."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from deploykit.apply.appcheck import properties
from deploykit.host.base import Host
from deploykit.settings import processes
from deploykit.settings.layout import CodeLocation
from deploykit.settings.model import Settings
from deploykit.settings.processes import SYSTEM_PATH

Phase = Literal["before_switch", "after_switch"]
EXIT_MARK = "deploykit-hook-exit="
_EXIT = re.compile(rf"^{EXIT_MARK}(\d+)$")


@dataclass(frozen=True)
class Hook:
    phase: Phase
    command: str | tuple[str, ...]

    def argv(self) -> list[str]:
        return processes.argv(self.command)  # a hook's command reads like a process's

    def describe(self) -> str:
        return f"{self.phase} hook: {processes.shown(self.command)}"


@dataclass(frozen=True)
class HookResult:
    ok: bool
    output: str
    seconds: float
    status: int | None = 0
    timed_out: bool = False


def hooks(settings: Settings, phase: Phase) -> list[Hook]:
    return [Hook(phase, command) for command in getattr(settings.deploy.hooks, phase)]


def command(settings: Settings, hook: Hook, env_file: str, location: CodeLocation, release: str) -> list[str]:
    """The systemd-run line that runs HOOK in LOCATION as the service, its exit status on a last line."""
    timeout = settings.deploy.hooks.timeout
    props = properties(settings, env_file, location, max_seconds=timeout)
    props += [("Environment", f"PATH={location.bin}:{SYSTEM_PATH}"), ("Environment", f"DEPLOYKIT_RELEASE={release}")]
    run = ["systemd-run", "--wait", "--pipe", "--collect", "--quiet", "--service-type=exec"]
    run += [f"--property={key}={value}" for key, value in props]
    # systemd-run's own status (the hook's, or a refusal) is printed after its output, whatever it was
    wrapper = f'"$@" 2>&1; status=$?; echo; echo "{EXIT_MARK}$status"'
    return ["/bin/sh", "-c", wrapper, "deploykit-hook", *run, "--", *hook.argv()]


def run_hook(
    host: Host,
    settings: Settings,
    hook: Hook,
    env_file: str,
    location: CodeLocation,
    release: str,
    emit: Callable[[str], None],
) -> HookResult:
    """Run HOOK on HOST, each output line to EMIT as it comes."""
    started = time.monotonic()
    argv = command(settings, hook, env_file, location, release)
    if not host.runs_commands:
        host.run(argv)
        return HookResult(True, "recorded, not run (staging root)", 0.0)
    lines: list[str] = []
    blank = 0  # blank lines held back: the wrapper prints one before its marker
    status: int | None = None
    with host.stream(argv) as output:
        for raw in output:
            line = raw.rstrip("\n")
            found = _EXIT.match(line)
            if found:
                status = int(found.group(1))
                break
            if not line.strip():
                blank += 1
                continue
            for held in [""] * blank + [line]:
                lines.append(held)
                emit(held)
            blank = 0
    seconds = round(time.monotonic() - started, 3)
    timed_out = status not in (0, None) and seconds >= settings.deploy.hooks.timeout
    text = "\n".join(lines)
    return HookResult(status == 0, text, seconds, status, timed_out)


def failure(result: HookResult, settings: Settings, tail: int = 10) -> str:
    """Why a hook failed, first line (the apply's headline) with its last output line, then its output's tail."""
    if result.status is None:
        why = "its exit status never came back"
    elif result.timed_out:
        why = f"timed out after {settings.deploy.hooks.timeout}s"
    else:
        why = f"exit {result.status}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    headline = why + (f": {lines[-1].strip()}" if lines else "")
    return "\n".join([headline, *lines[-tail:]])
