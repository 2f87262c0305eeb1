"""Prove the new app starts before a running service is touched: import the
module (and call the factory), then run the ASGI lifespan startup and
shutdown, as the service would, in a transient ``systemd-run`` unit with the
service's identity, working directory, env file, limits and sandbox.

The properties come from the same helpers that render the service unit
(``render.systemd.identity / directories / limits / hardening``), so the check cannot drift
from the unit. The probe is a stdlib-only script handed to the venv's Python
with ``-c`` (like the health probe) and prints one JSON line:
``{"ok": true, "lifespan": "complete" | "unsupported"}`` or
``{"ok": false, "stage": "import" | "lifespan", "error": "..."}``.

A Gunicorn HUP or a restart onto an app that cannot import is what took the
app down before this check (Gunicorn halts when its new workers fail to boot)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from deploykit.apply.probe import python_on
from deploykit.host.base import CommandResult, Host
from deploykit.render.systemd import directories, hardening, identity, limits
from deploykit.settings.layout import CodeLocation, code_location
from deploykit.settings.model import Settings

SCRIPT = r"""
import asyncio, importlib, json, os, sys, traceback

spec = json.loads(sys.argv[1])
sys.path.insert(0, os.getcwd())


def finish(result):
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0 if result["ok"] else 1)


def failed(stage, exc):
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    finish({"ok": False, "stage": stage, "error": text.splitlines()[-1] + where if text else type(exc).__name__})


try:
    name, _, attr = spec["module"].partition(":")
    app = importlib.import_module(name)
    for part in (attr or "app").split("."):
        app = getattr(app, part)
    if spec["factory"]:
        app = app()
    if not callable(app):
        raise TypeError(f"{spec['module']} is not callable")
except BaseException as exc:
    failed("import", exc)


async def lifespan():
    inbox, outbox = asyncio.Queue(), asyncio.Queue()

    async def receive():
        return await inbox.get()

    async def send(message):
        await outbox.put(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, receive, send))

    async def reply():
        getter = asyncio.ensure_future(outbox.get())
        done, _ = await asyncio.wait({getter, task}, timeout=spec["timeout"], return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if task in done:
            return None
        raise TimeoutError(f"lifespan did not answer in {spec['timeout']}s")

    await inbox.put({"type": "lifespan.startup"})
    message = await reply()
    if message is None:
        # the app returned or raised on the lifespan scope: it does not support lifespan ("auto" goes on)
        return "unsupported"
    if message.get("type") == "lifespan.startup.failed":
        raise RuntimeError(f"lifespan startup failed: {message.get('message', '')}")
    await inbox.put({"type": "lifespan.shutdown"})
    await reply()
    return "complete"


try:
    state = asyncio.run(lifespan())
except BaseException as exc:
    failed("lifespan", exc)
finish({"ok": True, "lifespan": state})
"""


@dataclass(frozen=True)
class AppCheck:
    ok: bool
    detail: str


def properties(
    settings: Settings, env_file: str, location: CodeLocation | None = None, max_seconds: int | None = None
) -> list[tuple[str, str]]:
    """The service's execution properties, from the helpers that render its unit; LOCATION: the code
    to run (default: the live one), MAX_SECONDS: how long the transient unit may run."""
    folder = (location or code_location(settings)).working_dir
    where = [("WorkingDirectory", folder), ("EnvironmentFile", env_file)]
    bound = [("RuntimeMaxSec", str(max_seconds or int(settings.deploy.health_timeout) + 30))]
    return [*where, *identity(settings), *directories(settings), *limits(settings), *hardening(settings), *bound]


def command(host: Host, settings: Settings, env_file: str, location: CodeLocation | None = None) -> list[str]:
    """The systemd-run line that runs the probe as the service would run the app (LOCATION's code)."""
    argv = ["systemd-run", "--wait", "--pipe", "--collect", "--quiet", "--service-type=exec"]
    argv += [f"--property={key}={value}" for key, value in properties(settings, env_file, location)]
    spec = {"module": settings.app.module, "factory": settings.app.factory, "timeout": settings.deploy.health_timeout}
    return [*argv, "--", python_on(host, settings, location), "-c", SCRIPT, json.dumps(spec)]


def verdict(result: CommandResult) -> AppCheck:
    """Read the probe's answer; anything else (systemd-run refused, a crash) is a failure with its output."""
    for line in reversed(result.stdout.splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and "ok" in answer:
            if answer["ok"] and result.ok:
                return AppCheck(True, f"imports; lifespan {answer.get('lifespan', '?')}")
            return AppCheck(False, f"the new app fails at {answer.get('stage', '?')}: {answer.get('error', '')}")
    tail = "\n".join((result.output() or f"exit {result.returncode}").splitlines()[-8:])
    return AppCheck(False, f"the app check did not run: {tail}")


def check_app(host: Host, settings: Settings, env_file: str, location: CodeLocation | None = None) -> AppCheck:
    """Run the probe on HOST (recorded, not run, on a staging root)."""
    result = host.run(command(host, settings, env_file, location), timeout=settings.deploy.health_timeout + 60)
    if not host.runs_commands:
        return AppCheck(True, "skipped: commands are not run on a staging root (recorded)")
    return verdict(result)
