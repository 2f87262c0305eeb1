"""Finding the app: ``module:attribute`` (optionally a factory), and the
``--env-file`` that must be in the environment before the app is imported."""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any

from deploykit.errors import DeployKitError
from deploykit.settings.syntax import lines

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOUBLE_QUOTE_ESCAPES = {"\\": "\\", '"': '"', "`": "`", "$": "$"}


def import_app(ref: str | Callable[..., Any], *, factory: bool = False, app_dir: str | None = None) -> Any:
    if callable(ref) and not isinstance(ref, str):
        app: Any = ref
    else:
        module_name, sep, attr = ref.partition(":")
        if not sep or not module_name or not attr:
            raise DeployKitError(f"app {ref!r} must be 'module:attribute'", hint="e.g. deploykit serve myapp.main:app")
        sys.path.insert(0, os.path.realpath(app_dir or "."))
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
                raise _import_failed(module_name, exc) from exc  # the app's own import failed
            raise DeployKitError(
                f"could not import module {module_name!r}", hint="check --app-dir and the name"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - whatever the app raises while it is imported
            raise _import_failed(module_name, exc) from exc
        app = module
        for part in attr.split("."):
            try:
                app = getattr(app, part)
            except AttributeError as exc:
                raise DeployKitError(f"module {module_name!r} has no attribute {attr!r}") from exc
    if factory:
        try:
            app = app()
        except Exception as exc:  # noqa: BLE001 - whatever the app's factory raises
            raise DeployKitError(f"--factory: calling {ref!r} raised {_where(exc)}") from exc
    if not callable(app):
        raise DeployKitError(f"{ref!r} is not an ASGI callable")
    return app


def _import_failed(module: str, exc: BaseException) -> DeployKitError:
    return DeployKitError(
        f"importing the app module {module!r} raised {_where(exc)}",
        hint="Fix the error in the app; --log-level debug shows the traceback.",
    )


def _where(exc: BaseException) -> str:
    """'Type: message (file:line)', the line where EXC was raised (for a SyntaxError, the bad line)."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())  # one line, whatever the app put in its message
    return f"{type(exc).__name__}: {message}{place}"


def load_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines as deploykit renders them (and as systemd and sh read
    them): '#' comments, optional ``export``, double quotes with \\ " ` $
    escapes, single quotes verbatim. Variables already set are kept. Only "\\n"
    ends a line (``syntax.lines``), so a value holding U+2028 is one value here
    too, never an extra variable; a \\r, which systemd reads as a line end and
    sh does not, is refused."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:  # newline="": no \r translation either
            text = fh.read()
    except OSError as exc:
        raise DeployKitError(f"--env-file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DeployKitError(f"--env-file {path}: not UTF-8 (byte {exc.start} cannot be decoded)") from exc
    values = {}
    for number, line in enumerate(lines(text), 1):
        stripped = line.strip(" \t\n")  # what sh and systemd strip; str.strip would also eat U+2028, U+0085...
        if not stripped or stripped.startswith("#"):
            continue
        if "\r" in stripped:  # systemd ends a line at \r, sh does not: refuse to guess
            raise DeployKitError(f"--env-file {path}:{number}: a carriage return (\\r) inside a line")
        key, sep, raw = stripped.removeprefix("export ").partition("=")
        key = key.strip(" \t")
        if not sep or not _NAME.fullmatch(key):
            raise DeployKitError(f"--env-file {path}:{number}: expected KEY=VALUE")
        values[key] = _unquote(raw.strip(" \t"))
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return values


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        out, chars = [], iter(raw[1:-1])
        for char in chars:
            if char == "\\":
                nxt = next(chars, "")
                out.append(_DOUBLE_QUOTE_ESCAPES.get(nxt, "\\" + nxt))
            else:
                out.append(char)
        return "".join(out)
    return raw
