"""`deploykit check`: render, then run the real validators on the result."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deploykit.check.consistency import check_consistency, check_files
from deploykit.check.findings import CheckResult, Finding, Report
from deploykit.check.gixy import check_gixy
from deploykit.check.gunicorn import check_gunicorn, probe_conf
from deploykit.check.nginx import check_nginx
from deploykit.check.systemd import check_calendar, check_security, check_verify
from deploykit.render import Bundle, render
from deploykit.settings.model import Settings


def run_checks(settings: Settings, bundle: Bundle | None = None) -> Report:
    """Every validator, each timed; a missing tool is a finding, never a pass."""
    bundle = bundle if bundle is not None else render(settings)
    with tempfile.TemporaryDirectory(prefix="deploykit-check-") as tmp:
        work = Path(tmp)
        probed = probe_conf(bundle, work)
        steps: list[Callable[[], CheckResult]] = [
            lambda: check_nginx(settings, bundle, work),
            lambda: check_gixy(settings, bundle, work),
            lambda: check_verify(settings, bundle, work),
            lambda: check_security(settings, bundle, work),
            lambda: check_calendar(settings),
            lambda: check_gunicorn(bundle, probed),
            lambda: check_consistency(settings, bundle, probed),
            lambda: check_files(settings, bundle),
        ]
        results = []
        for step in steps:
            started = time.perf_counter()
            result = step()
            results.append(CheckResult(result.name, result.findings, result.ran, time.perf_counter() - started))
    return Report(tuple(results))


__all__ = ["CheckResult", "Finding", "Report", "run_checks"]
