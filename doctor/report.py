"""The report: findings plus the header that makes them comparable across machines.

`Report.to_dict()` is the JSON contract (docs/report-schema.md, doctor/report-schema.json).
Every renderer starts from that dict, already redacted, so no format can leak what another
hides.
"""

from __future__ import annotations

import datetime as _dt
import platform as _platform
from dataclasses import dataclass, field
from typing import Any, Optional

from tts_doctor import __version__
from tts_doctor.finding import Finding, Status, worst
from tts_doctor.redact import Redactor
from tts_doctor.redact import environment as allowed_environment
from tts_doctor.registry import CATEGORIES

# Bump the major part on an incompatible change (a field removed or its meaning changed),
# the minor part when fields are added.
SCHEMA_VERSION = "1.2"

EXIT_OK = 0
EXIT_ISSUES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Report:
    """A finished run: the findings and what they were found on."""

    findings: list[Finding]
    interpreter: dict[str, Any] = field(default_factory=dict)
    recipe: Optional[str] = None
    created: str = field(default_factory=_now)
    snapshot: dict[str, Any] = field(default_factory=dict)
    host: str = field(default_factory=lambda: _platform.node() or "unknown")
    # the allowlisted environment variables; None: this process's (a facts file brings its own)
    variables: Optional[dict[str, str]] = None
    # the probes judged from facts the memo kept from an earlier check (tts_doctor.memo)
    reused: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for f in self.findings:
            counts[f.status.value] += 1
        return counts

    def by_category(self) -> dict[str, list[Finding]]:
        """Findings grouped by category, categories in report order."""
        groups: dict[str, list[Finding]] = {}
        for cat in CATEGORIES:
            members = [f for f in self.findings if f.category == cat]
            if members:
                groups[cat] = members
        return groups

    def category_status(self) -> dict[str, Status]:
        return {c: worst([f.status for f in fs]) for c, fs in self.by_category().items()}

    def categories_with_issues(self, fail_on: str = "fail") -> list[str]:
        """Categories whose worst finding is warn, fail or error."""
        return [c for c, s in self.category_status().items() if s.rank >= 1]

    def exit_code(self, fail_on: str = "fail") -> int:
        """0 when nothing reaches `fail_on` ('fail': fail or error; 'warn': warn too), else 1."""
        threshold = Status.WARN.rank if fail_on == "warn" else Status.FAIL.rank
        return EXIT_ISSUES if any(f.status.rank >= threshold for f in self.findings) \
            else EXIT_OK

    def to_dict(self, redactor: Optional[Redactor] = None) -> dict[str, Any]:
        redactor = redactor or Redactor()
        interp = dict(self.interpreter)
        data = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "tts-doctor", "version": __version__},
            "created": self.created,
            "recipe": self.recipe,
            "host": self.host,
            "python": {k: interp.get(k) for k in
                       ("version", "implementation", "executable", "prefix",
                        "selected_by")},
            "platform": interp.get("platform") or {},
            "environment": {"variables": (allowed_environment() if self.variables is None
                                          else dict(self.variables)), **self.snapshot},
            "findings": [f.to_dict() for f in self.findings],
            "summary": {
                "counts": self.counts(),
                "categories": {c: s.value for c, s in self.category_status().items()},
                "categories_with_issues": self.categories_with_issues(),
            },
            "memo": {"reused": list(self.reused)},
        }
        return redactor.data(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Read a report back (diff, summarize, the pytest plugin)."""
        interp = dict(data.get("python") or {})
        interp["platform"] = data.get("platform") or {}
        snapshot = {k: v for k, v in (data.get("environment") or {}).items()
                    if k != "variables"}
        return cls([Finding.from_dict(f) for f in data.get("findings") or []], interp,
                   data.get("recipe"), data.get("created") or _now(), snapshot,
                   data.get("host") or "unknown")
