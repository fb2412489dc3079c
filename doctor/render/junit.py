"""JUnit XML: one testcase per finding, so CI dashboards show each probe as a test.

`fail` becomes <failure>, `error` <error>, `skip` <skipped>; `warn` is a passing test with
its message in <system-out>, or a <failure> when warnings count (--strict / --fail-on warn).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("?", text)


def _body(f: dict[str, Any]) -> str:
    lines = [f["summary"]]
    fix = f.get("fix")
    if fix:
        lines.append(f"fix: {fix['description']}")
        if fix.get("shim"):
            lines.append(f"  $ tts-doctor shims install {fix['shim']}")
        lines.extend(f"  $ {c}" for c in fix.get("commands") or [])
    for key, value in (f.get("details") or {}).items():
        lines.append(f"{key}: {value}")
    return _clean("\n".join(lines))


def render(data: dict[str, Any], *, fail_on: str = "fail") -> str:
    findings = data["findings"]
    warn_fails = fail_on == "warn"
    root = ET.Element("testsuites", name="tts-doctor")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        by_cat.setdefault(f["category"], []).append(f)
    for cat, members in by_cat.items():
        suite = ET.SubElement(root, "testsuite", name=f"tts-doctor.{cat}",
                              timestamp=data.get("created", ""))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
        for f in members:
            case = ET.SubElement(suite, "testcase", classname=f"tts-doctor.{cat}",
                                 name=f["id"], time=f"{f['duration_s']:.3f}")
            counts["tests"] += 1
            counts["time"] += f["duration_s"]
            status = f["status"]
            message = _clean(f["summary"])
            if status == "fail" or (status == "warn" and warn_fails):
                ET.SubElement(case, "failure", message=message, type=status).text = _body(f)
                counts["failures"] += 1
            elif status == "error":
                ET.SubElement(case, "error", message=message, type="error").text = _body(f)
                counts["errors"] += 1
            elif status == "skip":
                ET.SubElement(case, "skipped", message=message)
                counts["skipped"] += 1
            elif status == "warn":
                ET.SubElement(case, "system-out").text = "WARNING: " + _body(f)
            else:
                ET.SubElement(case, "system-out").text = message
        for key, value in counts.items():
            suite.set(key, f"{value:.3f}" if key == "time" else str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, f"{value:.3f}" if key == "time" else str(value))
    ET.indent(root) if hasattr(ET, "indent") else None
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"
