"""Load a gunicorn conf.py with Gunicorn's own loader, in a child process.

Run as ``python -m deploykit.check.gunicorn_probe PATH``; prints one JSON
object: the names Gunicorn would ignore, the loader's error if any, and the
resolved values the consistency check needs. A child process because
Gunicorn's loader prints and calls ``sys.exit`` on a bad file.
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys
import types
from typing import Any

from gunicorn.app.base import Application


class _Probe(Application):  # type: ignore[misc]  # gunicorn ships no type hints
    def load_config(self) -> None:
        return None

    def load(self) -> None:  # pragma: no cover - never serves
        return None


def probe(path: str) -> dict[str, Any]:
    app = _Probe()
    result: dict[str, Any] = {"unknown": [], "error": None, "values": {}}
    try:
        namespace = runpy.run_path(path)
    except Exception as exc:  # noqa: BLE001 - reported, not handled
        result["error"] = f"cannot execute the file: {exc!r}"
        return result
    result["unknown"] = sorted(
        name
        for name, value in namespace.items()
        if not name.startswith("_") and name not in app.cfg.settings and not isinstance(value, types.ModuleType)
    )
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            app.load_config_from_file(path)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported, not handled
        lines = list(dict.fromkeys(line.strip() for line in stderr.getvalue().splitlines() if line.strip()))
        result["error"] = "; ".join(lines[:1] + lines[-1:]) if len(lines) > 1 else (lines or [repr(exc)])[0]
        return result
    cfg = app.cfg
    result["values"] = {"bind": list(cfg.bind), "graceful_timeout": cfg.graceful_timeout, "workers": cfg.workers}
    return result


def main() -> None:
    print(json.dumps(probe(sys.argv[1])))


if __name__ == "__main__":
    main()
