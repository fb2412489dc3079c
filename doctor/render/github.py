"""GitHub Actions output: workflow-command annotations for every non-ok finding.

`fail`/`error` become `::error`, `warn` becomes `::warning` (or `::error` when warnings count).
When GITHUB_STEP_SUMMARY names a file, a Markdown table of the findings is appended to it.
"""

from __future__ import annotations

from typing import Any


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(data: dict[str, Any], *, fail_on: str = "fail") -> str:
    lines = []
    for f in data["findings"]:
        status = f["status"]
        if status in ("ok", "skip"):
            continue
        level = "error" if status in ("fail", "error") or fail_on == "warn" else "warning"
        message = f["summary"]
        fix = f.get("fix")
        if fix:
            message += f"\nfix: {fix['description']}"
            if fix.get("shim"):
                message += f"\n$ tts-doctor shims install {fix['shim']}"
            for cmd in fix.get("commands") or []:
                message += f"\n$ {cmd}"
        title = _escape_property(f"tts-doctor {f['id']} ({status})")
        lines.append(f"::{level} title={title}::{_escape_data(message)}")
    return "\n".join(lines) + ("\n" if lines else "")


def step_summary(data: dict[str, Any]) -> str:
    """A Markdown table for the job summary page."""
    icon = {"ok": "✅", "warn": "⚠️", "fail": "❌", "error": "💥", "skip": "⏭️"}
    rows = ["### tts-doctor check", "", "| | probe | summary |", "|---|---|---|"]
    for f in data["findings"]:
        summary = f["summary"].replace("|", "\\|")
        rows.append(f"| {icon[f['status']]} | `{f['id']}` | {summary} |")
    counts = data["summary"]["counts"]
    rows += ["", ", ".join(f"{v} {k}" for k, v in counts.items()), ""]
    return "\n".join(rows) + "\n"
