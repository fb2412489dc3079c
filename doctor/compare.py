"""Comparing reports: one machine against another (`diff`) and a fleet (`summarize`).

Works on report dicts as `tts-doctor check --json` writes them, so reports collected from
many machines (a DaemonSet, CI artefacts) can be compared anywhere, offline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tts_doctor.errors import UserError
from tts_doctor.finding import Status

# Which distributions can explain a category's verdict: a changed package whose category got
# worse is the most likely culprit.
CATEGORY_PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "cuda": ("torch", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "nvidia-cublas-cu12",
             "nvidia-cublas"),
    "vram": ("torch",),
    "torchaudio": ("torchaudio", "torch", "torchcodec"),
    "numpy": ("numpy", "numba", "scipy", "librosa", "soxr", "soundfile", "torch"),
    "numba": ("numba", "llvmlite", "numpy", "resampy"),
    "scipy": ("scipy", "librosa", "resampy"),
    "ttsfrd": ("ttsfrd", "ttsfrd-dependency", "kantts", "modelscope"),
    "frontend": ("pynini", "wetextprocessing"),
    "audio": ("soundfile", "torchaudio"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "piper-tts"),
    "compat": ("transformers", "tts", "coqui-tts", "gradio", "pydantic"),
    "packages": (),
    "python": (),
    "model": ("modelscope",),
}


class ReportFileError(UserError, ValueError):
    """A file that is not a tts-doctor JSON report."""


_STATUSES = tuple(s.value for s in Status)


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value),
                                                                        type(value).__name__)


def _check_report(data: Any, where: str) -> dict[str, Any]:
    """The report, or ReportFileError naming the first field of the wrong shape.

    Only what diff and summarize read is checked (the full contract is
    doctor/report-schema.json); optional blocks may be absent but not of another type.
    """
    def bad(field: str, expected: str, value: Any) -> ReportFileError:
        return ReportFileError(f"{where}: not a tts-doctor report: '{field}' is "
                               f"{_type(value)}, expected {expected}")

    if not isinstance(data, dict) or "findings" not in data or "schema_version" not in data:
        raise ReportFileError(f"{where}: not a tts-doctor report (no schema_version/findings)")
    version = data["schema_version"]
    if not isinstance(version, str) or not version.startswith("1."):
        raise ReportFileError(f"{where}: schema_version {str(version)[:20]!r} is not 1.x; "
                              "upgrade tts-doctor to read it")
    findings = data["findings"]
    if not isinstance(findings, list):
        raise bad("findings", "a list", findings)
    for i, f in enumerate(findings):
        if not isinstance(f, dict):
            raise bad(f"findings[{i}]", "an object", f)
        fid = f.get("id")
        if not isinstance(fid, str) or not fid:
            raise ReportFileError(f"{where}: not a tts-doctor report: findings[{i}] has no "
                                  "'id' (a non-empty string)")
        if f.get("status") not in _STATUSES:
            raise ReportFileError(f"{where}: not a tts-doctor report: findings[{i}] ({fid}) "
                                  f"has status {str(f.get('status'))[:20]!r}, expected one of "
                                  f"{', '.join(_STATUSES)}")
        for key in ("summary", "category"):
            if key in f and not isinstance(f[key], str):
                raise bad(f"findings[{i}].{key}", "a string", f[key])
    for key in ("summary", "environment", "python", "platform"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise bad(key, "an object", data[key])
    summary = data.get("summary") or {}
    for key in ("categories", "counts"):
        if summary.get(key) is not None and not isinstance(summary[key], dict):
            raise bad(f"summary.{key}", "an object", summary[key])
    for cat, status in (summary.get("categories") or {}).items():
        if status is not None and status not in _STATUSES:
            raise ReportFileError(f"{where}: not a tts-doctor report: summary.categories."
                                  f"{cat[:40]} is {str(status)[:20]!r}, expected one of "
                                  f"{', '.join(_STATUSES)}")
    for name, count in (summary.get("counts") or {}).items():
        if not isinstance(count, int):
            raise bad(f"summary.counts.{name[:40]}", "a number", count)
    env = data.get("environment") or {}
    for key, kind in (("distributions", dict), ("variables", dict), ("gpus", list)):
        if env.get(key) is not None and not isinstance(env[key], kind):
            raise bad(f"environment.{key}", _type(kind()), env[key])
    if data.get("host") is not None and not isinstance(data["host"], str):
        raise bad("host", "a string", data["host"])
    return data


def load_report(path: str | Path) -> dict[str, Any]:
    """A report written by `tts-doctor check --json`, checked and scrubbed of secrets.

    ReportFileError (exit 2) for anything else: not a regular file, over 8 MiB, not UTF-8,
    not JSON, or JSON of the wrong shape (the message names the field).
    """
    from tts_doctor.errors import InputError
    from tts_doctor.inputs import read_text
    from tts_doctor.redact import Redactor

    p = Path(path)
    try:
        text = read_text(p)
    except InputError as exc:
        raise ReportFileError(str(exc)) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise ReportFileError(f"{p}: not JSON: nested too deeply") from None
    except ValueError as exc:
        raise ReportFileError(f"{p}: not JSON: {exc}") from None
    try:
        data = Redactor().data(_check_report(data, str(p)))
    except RecursionError:
        raise ReportFileError(f"{p}: not a tts-doctor report: nested too deeply") from None
    data.setdefault("host", p.stem)
    return data


def _rank(status: str) -> int:
    return Status(status).rank


@dataclass(frozen=True)
class Change:
    what: str           # "finding", "package", "driver", "cuda", "gpu", "python", "variable"
    name: str
    before: Optional[str]
    after: Optional[str]
    worse: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "name": self.name, "before": self.before,
                "after": self.after, "worse": self.worse, "note": self.note}


@dataclass
class Diff:
    findings: list[Change] = field(default_factory=list)
    environment: list[Change] = field(default_factory=list)
    culprits: list[Change] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.findings if c.worse]

    def to_dict(self) -> dict[str, Any]:
        return {"culprits": [c.to_dict() for c in self.culprits],
                "findings": [c.to_dict() for c in self.findings],
                "environment": [c.to_dict() for c in self.environment],
                "regressions": len(self.regressions)}


def _env(report: dict[str, Any]) -> dict[str, Any]:
    return report.get("environment") or {}


def diff(good: dict[str, Any], bad: dict[str, Any]) -> Diff:
    """What differs between a good report and a bad one, most likely culprit first."""
    out = Diff()
    g = {f["id"]: f for f in good["findings"]}
    b = {f["id"]: f for f in bad["findings"]}
    for fid in sorted(set(g) | set(b)):
        before = g.get(fid, {}).get("status")
        after = b.get(fid, {}).get("status")
        if before == after:
            continue
        worse = _rank(after or "ok") > _rank(before or "ok")
        note = b[fid]["summary"] if fid in b else g[fid]["summary"]
        out.findings.append(Change("finding", fid, before, after, worse, note))
    out.findings.sort(key=lambda c: (-_rank(c.after or "ok"), not c.worse, c.name))

    ge, be = _env(good), _env(bad)
    gd, bd = ge.get("distributions") or {}, be.get("distributions") or {}
    for name in sorted(set(gd) | set(bd)):
        if gd.get(name) != bd.get(name):
            out.environment.append(Change("package", name, gd.get(name), bd.get(name)))
    for key, what in (("driver", "driver"), ("driver_cuda", "driver CUDA"),
                      ("torch_cuda", "torch CUDA")):
        if ge.get(key) != be.get(key):
            out.environment.append(Change(what, key, ge.get(key), be.get(key)))
    if (ge.get("gpus") or []) != (be.get("gpus") or []):
        out.environment.append(Change("gpu", "gpus", ", ".join(map(str, ge.get("gpus") or [])),
                                      ", ".join(map(str, be.get("gpus") or []))))
    gp, bp = (good.get("python") or {}).get("version"), (bad.get("python") or {}).get("version")
    if gp != bp:
        out.environment.append(Change("python", "python", gp, bp))
    gv, bv = ge.get("variables") or {}, be.get("variables") or {}
    for name in sorted(set(gv) | set(bv)):
        if name in ("PATH", "HOME") or gv.get(name) == bv.get(name):
            continue
        out.environment.append(Change("variable", name, gv.get(name), bv.get(name)))

    # culprits: environment changes that can explain a finding that got worse
    scored = []
    for change in out.environment:
        score = 0
        explains = []
        for reg in out.regressions:
            cat = reg.name.split(".", 1)[0]
            pkgs = CATEGORY_PACKAGES.get(cat, ())
            points = 0
            if change.what == "package" and re.search(
                    rf"(?<![\w-]){re.escape(change.name)}(?![\w-])", reg.note, re.IGNORECASE):
                points += 9  # the finding names the package
            if change.what == "package" and change.name in pkgs:
                points += 8 - min(pkgs.index(change.name), 6)
            if change.what in ("driver", "driver CUDA", "torch CUDA", "gpu") and \
                    cat in ("cuda", "vram", "torch"):
                points += 8
            if change.what == "variable" and cat in ("cuda", "numba", "vram", "torch") and \
                    change.name.startswith(("CUDA_", "PYTORCH_", "NUMBA_", "NVIDIA_")):
                points += 6
            if change.what == "python":
                points += 3
            if points:
                score += points
                explains.append(reg.name)
        if score:
            scored.append((score, Change(change.what, change.name, change.before,
                                         change.after, True,
                                         "explains " + ", ".join(sorted(set(explains))))))
    out.culprits = [c for _, c in sorted(scored, key=lambda x: -x[0])]
    return out


@dataclass
class Fleet:
    hosts: list[dict[str, Any]]            # one row per host: name, categories, counts
    categories: list[str]
    groups: list[dict[str, Any]]           # hosts with identical problems

    def to_dict(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "categories": self.categories, "groups": self.groups}


def fleet(reports: list[dict[str, Any]]) -> Fleet:
    """One row per host, one column per category; hosts grouped by identical problems."""
    from tts_doctor.registry import CATEGORIES

    seen_cats = {c for r in reports for c in (r.get("summary") or {}).get("categories", {})}
    categories = [c for c in CATEGORIES if c in seen_cats] + sorted(seen_cats - set(CATEGORIES))
    rows = []
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for r in reports:
        cats = (r.get("summary") or {}).get("categories", {})
        problems = tuple(sorted((f["id"], f["status"]) for f in r["findings"]
                                if f["status"] in ("warn", "fail", "error")))
        host = r.get("host") or "unknown"
        rows.append({"host": host, "categories": {c: cats.get(c) for c in categories},
                     "counts": (r.get("summary") or {}).get("counts", {}),
                     "problems": [f"{i} ({s})" for i, s in problems],
                     "created": r.get("created")})
        groups.setdefault(problems, []).append(host)
    grouped = [{"problems": [f"{i} ({s})" for i, s in key], "hosts": sorted(hosts)}
               for key, hosts in groups.items()]
    grouped.sort(key=lambda g: (not g["problems"], -len(g["hosts"])))
    rows.sort(key=lambda row: row["host"])
    return Fleet(rows, categories, grouped)
