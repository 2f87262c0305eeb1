"""Where deploykit keeps its own things on a host reached over SSH, and the
agent command lines the client sends there (one source for both sides)."""

from __future__ import annotations

from collections.abc import Sequence

#: deploykit's own virtualenv on the host (``deploykit bootstrap`` creates it).
VENV = "/opt/deploykit"
PYTHON = f"{VENV}/bin/python"
#: The wheels bootstrap ships, installed into VENV with ``pip --no-index``.
WHEELHOUSE = f"{VENV}/wheelhouse"
#: Per app: the shipped settings (0600), app wheels, the apply's output and outcome.
RUNS = "/var/lib/deploykit-remote"
#: Commands that change the host: they run under a transient unit and survive a dropped connection.
TRANSACTIONS = ("apply", "rollback")


def unit(app: str) -> str:
    """The transient unit an apply or rollback of APP runs in."""
    return f"deploykit-apply-{app}.service"


def run_dir(app: str) -> str:
    return f"{RUNS}/{app}"


def agent(verb: str, app: str, args: Sequence[str] = ()) -> list[str]:
    """The remote argv that runs the agent (``deploykit.remote.agent``) with deploykit's own venv."""
    return [PYTHON, "-m", "deploykit.remote.agent", verb, app, *args]
