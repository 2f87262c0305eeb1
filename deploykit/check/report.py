"""Machine-readable check reports: JSON, and JUnit XML for CI systems."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict

from deploykit.check.findings import Report


def to_json(report: Report) -> str:
    return json.dumps(
        {
            "ok": not report.failed,
            "checks": [
                {
                    "name": r.name,
                    "ran": r.ran,
                    "seconds": round(r.seconds, 3),
                    "findings": [asdict(f) for f in r.findings],
                }
                for r in report.results
            ],
        },
        indent=2,
    )


def to_junit(report: Report) -> str:
    failures = sum(1 for r in report.results if any(f.counts for f in r.findings))
    suite = ET.Element(
        "testsuite", name="deploykit check", tests=str(len(report.results)), failures=str(failures), errors="0"
    )
    for result in report.results:
        case = ET.SubElement(
            suite, "testcase", classname="deploykit.check", name=result.name, time=f"{result.seconds:.3f}"
        )
        counted = [f for f in result.findings if f.counts]
        if counted:
            failure = ET.SubElement(case, "failure", message=counted[0].message, type=counted[0].severity)
            failure.text = "\n".join(f"[{f.severity}] {f.file or '-'}: {f.message}" for f in counted)
        infos = [f for f in result.findings if not f.counts]
        if infos:
            ET.SubElement(case, "system-out").text = "\n".join(f"{f.file or '-'}: {f.message}" for f in infos)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
