"""Every finding `deploykit doctor` can report has a code, and every code an entry in
docs/troubleshooting.md (and no entry is left for a code that no longer exists)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import deploykit.operate.doctor as doctor

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "troubleshooting.md"


def _values(node: ast.expr | None) -> set[str]:
    """The strings a code= expression can take: a constant, or either branch of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _values(node.body) | _values(node.orelse)
    return set()


def _finding_codes() -> tuple[set[str], list[int]]:
    """The codes doctor.py gives its findings, and the lines of Finding(...) calls without one."""
    tree = ast.parse(Path(doctor.__file__).read_text())
    codes: set[str] = set()
    without: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Finding":
            code = next((kw.value for kw in node.keywords if kw.arg == "code"), None)
            found = _values(code)
            if not found:
                without.append(node.lineno)
            codes |= found
    return codes, without


def _entries() -> set[str]:
    return set(re.findall(r"^### `([a-z0-9-]+)`$", PAGE.read_text(), re.M))


def test_every_doctor_finding_has_a_code() -> None:
    codes, without = _finding_codes()
    assert len(codes) >= 20
    assert not without, f"doctor.py: Finding(...) without code= on lines {without}"


def test_every_code_has_a_troubleshooting_entry_and_no_entry_is_stale() -> None:
    codes, _ = _finding_codes()
    entries = _entries()
    assert not codes - entries, f"add an entry to docs/troubleshooting.md for: {sorted(codes - entries)}"
    assert not entries - codes, (
        f"docs/troubleshooting.md describes codes doctor.py no longer has: {sorted(entries - codes)}"
    )


def test_a_finding_carries_its_code_into_the_json_report() -> None:
    from deploykit.check.findings import CheckResult, Report
    from deploykit.check.report import to_json

    findings = doctor.disk_findings([("/var/log", doctor.DiskUsage("/dev/sda1", 99, 10240, "/"))])
    assert [f.code for f in findings] == ["disk-full"]
    assert '"code": "disk-full"' in to_json(Report((CheckResult("disk", tuple(findings)),)))
