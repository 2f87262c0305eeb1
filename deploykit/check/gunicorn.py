"""The rendered conf.py through Gunicorn's own config loader."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from deploykit.check.findings import CheckResult, Finding
from deploykit.check.tools import run
from deploykit.render.bundle import Bundle, Kind

NAME = "gunicorn config"


def probe_conf(bundle: Bundle, workdir: Path) -> dict[str, Any] | None:
    conf = bundle.by_kind(Kind.GUNICORN_CONF)
    if conf is None:
        return None
    local = workdir / "gunicorn" / "gunicorn.conf.py"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(conf.content, encoding="utf-8")
    out = run([sys.executable, "-m", "deploykit.check.gunicorn_probe", str(local)])
    try:
        result: dict[str, Any] = json.loads(out.stdout)
    except json.JSONDecodeError:
        result = {"error": out.text or f"probe exited {out.returncode}", "unknown": [], "values": {}}
    return result


def check_gunicorn(bundle: Bundle, probed: dict[str, Any] | None) -> CheckResult:
    conf = bundle.by_kind(Kind.GUNICORN_CONF)
    if conf is None or probed is None:
        return CheckResult(NAME, ran=False)
    findings = [
        Finding(NAME, "error", f"{name!r} is not a Gunicorn setting; Gunicorn would ignore it silently", conf.path)
        for name in probed["unknown"]
    ]
    if probed["error"]:
        findings.append(Finding(NAME, "error", f"Gunicorn rejects the file: {probed['error']}", conf.path))
    return CheckResult(NAME, tuple(findings))
