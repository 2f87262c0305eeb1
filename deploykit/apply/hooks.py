"""``[deploy.hooks]``: commands run in a release as the service would run, through one host method.

Each hook runs in a transient ``systemd-run --wait --pipe --collect`` unit with the
service's properties (``appcheck.properties``: identity, working directory, env
file, state directories, limits and sandbox), in the release's folder, with the
release's ``venv/bin`` first on ``PATH`` and ``RuntimeMaxSec=`` set to the hook
timeout (``deploy.hooks.timeout``: at that point systemd stops the unit, and kills
what is left ``STOP_GRACE`` seconds later). A command runs as a process's does
(``settings.processes.argv``): a string is a shell line (``/bin/sh -c``); a list
is an argv, a bare first word looked up on that ``PATH`` (``/usr/bin/env``).

``--pipe`` hands the unit's output to the caller only, so the wrapper around
``systemd-run`` (run as root, outside the sandbox) copies it: ``tee`` sends each
line on to the apply's progress and to ``systemd-cat`` under the identifier
``<app>-hook`` (``journalctl -t <app>-hook``). A journal that refuses the copy
costs the copy only (``tee -p``). The exit status comes back on a last marker line.

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
#: seconds a hook has, once its timeout has come, between systemd's SIGTERM and its SIGKILL
STOP_GRACE = 10
#: $1: the journal identifier, then the systemd-run line. The hook's output goes to the caller (fd 3)
#: and the journal; its status comes back on fd 4. 255: systemd-cat or tee never let it through.
WRAPPER = (
    "ident=$1; shift; exec 3>&1; "
    'status=$( { { "$@" 2>&1 3>&- 4>&-; echo "$?" >&4; } | tee -p /dev/fd/3 4>&- '
    '| systemd-cat -t "$ident" --level-prefix=false >/dev/null 2>&1 3>&- 4>&-; } 4>&1 ); '
    f'echo; echo "{EXIT_MARK}${{status:-255}}"'
)


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
    props = [p for p in properties(settings, env_file, location, max_seconds=timeout) if p[0] != "TimeoutStopSec"]
    props += [("TimeoutStopSec", str(STOP_GRACE))]
    props += [("Environment", f"PATH={location.bin}:{SYSTEM_PATH}"), ("Environment", f"DEPLOYKIT_RELEASE={release}")]
    run = ["systemd-run", "--wait", "--pipe", "--collect", "--quiet", "--service-type=exec"]
    run += [f"--property={key}={value}" for key, value in props]
    # systemd-run's own status (the hook's, or a refusal) is printed after its output, whatever it was
    return ["/bin/sh", "-c", WRAPPER, "deploykit-hook", journal_id(settings), *run, "--", *hook.argv()]


def journal_id(settings: Settings) -> str:
    """The SyslogIdentifier of the hooks' output in the journal: ``journalctl -t <app>-hook``."""
    return f"{settings.app.name}-hook"


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
        why = f"killed after {settings.deploy.hooks.timeout}s (deploy.hooks.timeout)"
    else:
        why = f"exit {result.status}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    headline = why + (f": {lines[-1].strip()}" if lines else "")
    return "\n".join([headline, *lines[-tail:]])
