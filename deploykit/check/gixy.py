"""gixy-ng, nginx's security analyser, on the rendered site (inside the same
throwaway nginx.conf that `nginx -t` reads, see ``nginx.wrap``).

`nginx -t` proves the site loads; gixy finds sites that load but are unsafe:
an ``alias`` that lets ``/static../`` walk out of its folder, Host-header
spoofing, response splitting, a header dropped by a nested ``add_header``.

Severity mapping, and why:
- HIGH and MEDIUM -> error. These are exploitable as written (path traversal,
  SSRF, header injection, weak TLS), so `check` must fail.
- LOW -> warning. Hardening gaps (a missing resolver, ``if`` inside locations);
  a warning still fails `check` (only info does not), but is shown as advice.
- UNSPECIFIED -> info: gixy itself does not rate it, so it is shown, not counted.

Plugins skipped, each for a reason that holds for every site deploykit renders:
- ``nginx_cves`` rates the version of the nginx binary on *this* machine, not the
  site; `check` may run far from the host (the host's version is `doctor`'s job).
- ``worker_rlimit_nofile_vs_connections`` rates the main context of nginx.conf
  (``worker_*``), which the host owns; here that context is the throwaway wrapper.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deploykit.check.findings import CheckResult, Finding, Severity
from deploykit.check.nginx import wrap
from deploykit.check.tools import run
from deploykit.render.bundle import Bundle, Kind
from deploykit.settings.model import Settings

NAME = "gixy"
SKIPPED = ("nginx_cves", "worker_rlimit_nofile_vs_connections")
#: gixy-ng is a dependency of deploykit, so it runs with deploykit's own interpreter.
PYTHON = sys.executable
SEVERITY: dict[str, Severity] = {"HIGH": "error", "MEDIUM": "error", "LOW": "warning", "UNSPECIFIED": "info"}


def check_gixy(settings: Settings, bundle: Bundle, workdir: Path) -> CheckResult:
    site = bundle.by_kind(Kind.NGINX_SITE)
    if site is None:
        return CheckResult(NAME, ran=False)
    folder = workdir / "gixy"
    conf = wrap(settings, site.content, folder)
    argv = [PYTHON, "-m", "gixy", "--format", "json", "--skips", ",".join(SKIPPED)]
    argv += ["--nginx-version", ".".join(map(str, settings.nginx.version)), str(conf)]
    out = run(argv)
    try:
        issues = json.loads(out.stdout) if out.stdout.strip() else []
    except json.JSONDecodeError:
        issues = None
    if not isinstance(issues, list) or (out.returncode != 0 and not issues):
        return CheckResult(NAME, (Finding(NAME, "error", f"gixy failed: {out.text[-500:]}", file=site.path),))
    return CheckResult(NAME, tuple(_finding(issue, folder, site.path) for issue in issues))


def _finding(issue: dict[str, object], folder: Path, site_path: str) -> Finding:
    line = issue.get("line")
    where = f"{site_path}:{line}: " if str(issue.get("file", "")) == str(folder / "site.conf") and line else ""
    reason = str(issue.get("reason") or "").strip()
    message = f"{where}[{issue.get('plugin')}] {issue.get('summary')}" + (f": {reason}" if reason else "")
    severity = SEVERITY.get(str(issue.get("severity")), "error")
    reference = issue.get("reference")
    return Finding(NAME, severity, message, file=site_path, hint=f"See {reference}" if reference else None)
