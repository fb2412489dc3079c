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


class ReportFileError(ValueError):
    """A file that is not a tts-doctor JSON report."""


def load_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ReportFileError(f"{p}: not JSON: {exc}") from None
    if not isinstance(data, dict) or "findings" not in data or "schema_version" not in data:
        raise ReportFileError(f"{p}: not a tts-doctor report (no schema_version/findings)")
    if not str(data["schema_version"]).startswith("1."):
        raise ReportFileError(f"{p}: schema_version {data['schema_version']} is not 1.x; "
                              "upgrade tts-doctor to read it")
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
