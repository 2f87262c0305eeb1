"""Every error deploykit raises on purpose derives from :class:`DeployKitError`.

The tree::

    DeployKitError                 exit 1 unless a subclass says otherwise
    ├── UsageError                 exit 2: the command line itself is wrong
    ├── SettingsError              a profile, deploykit.toml, env var or --set is invalid
    │   └── ProfileNotFound        --profile names no shipped or local profile
    ├── RenderError                a template failed to render (a bug, or a missing value)
    ├── ToolMissing                nginx / systemd-analyze / gunicorn is not installed
    ├── FileExistsRefused          init/render would overwrite a file without --force
    ├── UpError                    `deploykit up`: the local stack could not start, or a process of it died
    │   └── PortInUse              the loopback port is taken
    ├── CheckFailed                exit 3: check or doctor found problems (the findings travel with it)
    ├── StackUnhealthy             exit 3: status found a unit down, the socket missing or a failed health check
    ├── Locked                     another apply/rollback holds the host's deploy lock
    ├── NoRelease                  rollback: no such release, or nothing to roll back to
    └── ApplyFailed                a step of apply failed; the host was restored (or says what was not)

Foreign exceptions (OSError, pydantic.ValidationError, tomllib.TOMLDecodeError,
jinja2 errors, subprocess failures) are translated where they cross into
deploykit with ``raise ... from exc``, so the CLI has one place that maps an
error to one clear line, a hint and an exit code.
"""

from __future__ import annotations


class DeployKitError(Exception):
    """Root of deploykit's errors: a message, an optional hint, an exit code."""

    exit_code: int = 1
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(DeployKitError):
    exit_code = 2
    default_hint = "Run the command with --help to see its options."


class SettingsError(DeployKitError):
    """Invalid settings. ``problems`` lists one line per invalid field."""

    default_hint = "Fix the value in the file or source named above; `deploykit check` re-validates."

    def __init__(self, message: str, *, problems: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems


class ProfileNotFound(SettingsError):
    pass


class RenderError(DeployKitError):
    pass


class ToolMissing(DeployKitError):
    pass


class FileExistsRefused(DeployKitError):
    default_hint = "Pass --force to overwrite it."


class UpError(DeployKitError):
    pass


class PortInUse(UpError):
    default_hint = "Pick another with --port N, or --port 0 for any free port."


class CheckFailed(DeployKitError):
    exit_code = 3
    default_hint = "Each finding above names the file and what to change."


class StackUnhealthy(DeployKitError):
    exit_code = 3
    default_hint = "`deploykit doctor` looks for the usual causes; `deploykit logs` shows what the units said."


class Locked(DeployKitError):
    default_hint = "Wait for the other deploy to finish; the lock is released when its process exits."


class NoRelease(DeployKitError):
    default_hint = "`deploykit status` lists the releases kept on the host."


class ApplyFailed(DeployKitError):
    """A step failed. ``restored`` says whether the previous state is back in place."""

    def __init__(self, message: str, *, restored: bool, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.restored = restored
