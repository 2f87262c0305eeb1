"""The host seam (see ``base``): pick the host a command works on."""

from __future__ import annotations

from pathlib import Path

from deploykit.errors import UsageError
from deploykit.host.base import Host


def connect(root: Path | None = None, target: str | None = None, *, create_root: bool = True) -> Host:
    """``--root DIR`` (a staging tree), ``--host nsenter:PID`` (a container), or this machine.
    With ``create_root=False`` a --root folder that does not exist is refused (a typo, not a new tree)."""
    if root is not None and target is not None:
        raise UsageError("--root and --host cannot be used together")
    if root is not None:
        if not create_root and not root.is_dir():
            what = "is not a directory" if root.exists() else "does not exist"
            raise UsageError(
                f"--root {root} {what}",
                hint="Check the path; only `deploykit apply --root DIR --create-root` starts a new staging tree.",
            )
        from deploykit.host.staging import StagingHost

        return StagingHost(root)
    if target is None or target == "local":
        from deploykit.host.local import LocalHost

        return LocalHost()
    kind, _, pid = target.partition(":")
    if kind == "nsenter" and pid.isdigit():
        from deploykit.host.nsenter import NsenterHost

        return NsenterHost(int(pid))
    raise UsageError(f"--host {target!r}: use 'local' or 'nsenter:PID' (a container's PID 1)")
