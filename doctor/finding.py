"""The report's core types: Status, Fix, Finding.

Everything a probe says travels as a `Finding`: plain, frozen, JSON-able. This module imports
nothing heavy so that the CLI, the worker and the renderers can all share it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional


class Status(str, enum.Enum):
    """A finding's verdict, from best to worst (`error` means the probe itself broke)."""

    OK = "ok"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __str__(self) -> str:
        return self.value


_RANK = {Status.OK: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3}


def worst(statuses: list[Status]) -> Status:
    """The most severe status of a group; a group of only skips is `skip`, empty is `ok`."""
    statuses = list(statuses)
    if not statuses:
        return Status.OK
    top = max(s.rank for s in statuses)
    if top == 0:
        return Status.OK if Status.OK in statuses else Status.SKIP
    return next(s for s in (Status.ERROR, Status.FAIL, Status.WARN) if s.rank == top)


@dataclass(frozen=True)
class Fix:
    """How to repair a finding: a shim the doctor applies itself, or commands to run.

    `commands` are shell lines shown to the user; `tts-doctor fix` runs them only with
    `--run-commands`. Lines starting with `export ` set environment variables and are never run.
    """

    description: str
    shim: Optional[str] = None
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "shim": self.shim,
                "commands": list(self.commands)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fix:
        return cls(d["description"], d.get("shim"), tuple(d.get("commands") or ()))


@dataclass(frozen=True)
class Finding:
    """One probe's verdict: what was checked, what was found, and how to fix it."""

    id: str
    category: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    fix: Optional[Fix] = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "status": self.status.value,
            "summary": self.summary,
            "details": self.details,
            "fix": self.fix.to_dict() if self.fix else None,
            "duration_s": round(self.duration_s, 4),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(
            id=d["id"],
            category=d["category"],
            status=Status(d["status"]),
            summary=d["summary"],
            details=dict(d.get("details") or {}),
            fix=Fix.from_dict(d["fix"]) if d.get("fix") else None,
            duration_s=float(d.get("duration_s") or 0.0),
        )


@dataclass(frozen=True)
class Result:
    """What a probe function returns; the runner adds id, category and duration."""

    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    fix: Optional[Fix] = None


def ok(summary: str, **details: Any) -> Result:
    return Result(Status.OK, summary, details)


def skip(summary: str, **details: Any) -> Result:
    return Result(Status.SKIP, summary, details)


def warn(summary: str, fix: Fix, **details: Any) -> Result:
    return Result(Status.WARN, summary, details, fix)


def fail(summary: str, fix: Fix, **details: Any) -> Result:
    return Result(Status.FAIL, summary, details, fix)
