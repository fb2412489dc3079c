"""The smoke run as a report: the check report's contract plus a `smoke` section.

Findings go through `doctor.report.Report` like check's, so `schema_version`, the summary,
redaction, the text/JSON renderers and the exit codes are the same. The profile (stages,
timeline, ladder, repeat, budget) travels in the extra top-level `smoke` object
(docs/smoke.md), redacted the same way.
"""

from __future__ import annotations

from typing import Any, Optional

from tts_doctor.finding import Finding
from tts_doctor.smoke.sizes import fmt_bytes


def build(findings: list[Finding], section: Any,
          recipe: Optional[str]) -> tuple[dict[str, Any], Any]:
    """(redacted report dict with the smoke section, Report); `section` is a
    `session.Section` (or its dict)."""
    from tts_doctor import runner, snapshot, target
    from tts_doctor.redact import Redactor
    from tts_doctor.report import Report

    interp = runner.interpreter_info(target.home())
    report = Report(findings, interp, recipe=recipe, snapshot=snapshot.build(findings, interp))
    redactor = Redactor()
    data = report.to_dict(redactor)
    data["smoke"] = redactor.data(section.to_dict() if hasattr(section, "to_dict")
                                  else dict(section))
    return data, report


def _ms(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.3f}"


def text_block(section: dict[str, Any]) -> str:
    """The profile as a few human lines, printed above the findings.

    Any key may be missing or null (a child that crashed or timed out sends no section)."""
    eng = section.get("engine") or {}
    text = section.get("text") or {}
    chars = text.get("chars")
    out = [f"Smoke synthesis: {eng.get('name') or '-'} engine on {eng.get('device') or '-'} "
           f"({eng.get('precision') or '-'})"
           + (f", {chars} characters" if chars is not None else "")
           + (f" in {text['chunks']} chunks" if (text.get("chunks") or 1) > 1 else "")]
    timing, audio = section.get("timing"), section.get("audio")
    if timing and audio:
        out.append(f"  audio {audio['seconds']:.2f} s at {audio['sample_rate']} Hz in "
                   f"{timing['synthesis_s']:.2f} s (RTF {_ms(timing['rtf'])}, first audio "
                   f"{timing['first_audio_s']:.2f} s); load {timing['load_s']:.2f} s")
    stages = section.get("stages") or []
    if stages:
        has_torch = any(s.get("torch_allocated_peak") is not None for s in stages)
        has_nvml = any(s.get("nvml_used_peak") is not None for s in stages)
        head = f"  {'stage':<17}{'calls':>6}{'wall s':>9}{'RSS peak':>12}"
        if has_torch:
            head += f"{'allocated':>12}{'reserved':>12}"
        if has_nvml:
            head += f"{'NVML used':>12}"
        out.append(head)
        for s in stages:
            line = (f"  {s['name']:<17}{s['calls']:>6}{s['wall_s']:>9.3f}"
                    f"{fmt_bytes(s['rss_peak']):>12}")
            if has_torch:
                line += (f"{fmt_bytes(s['torch_allocated_peak']):>12}"
                         f"{fmt_bytes(s['torch_reserved_peak']):>12}")
            if has_nvml:
                line += f"{fmt_bytes(s['nvml_used_peak']):>12}"
            out.append(line)
    lad = section.get("ladder")
    if lad and len(lad["rungs"]) > 1:
        out.append("  ladder: " + " -> ".join(f"{r['rung']} ({r['outcome']})"
                                              for r in lad["rungs"]))
    rep = section.get("repeat")
    if rep and rep.get("runs"):
        rtfs = [r["rtf"] for r in rep["runs"] if r.get("rtf") is not None]
        if rtfs:
            rtfs.sort()
            out.append(f"  repeats: {len(rep['runs'])}, median RTF {rtfs[len(rtfs) // 2]:.3f}, "
                       f"leak verdict: {rep['verdict']}")
    bud = section.get("budget")
    if bud and bud.get("points"):
        pts = ", ".join(f"{p['chars']} chars: "
                        + ("OOM" if p["oom"] else fmt_bytes(p["peak"])) for p in bud["points"])
        out.append(f"  budget ({bud['basis']}): {pts}")
    off = section.get("offline")
    if off:
        out.append(f"  offline audit: {len(off.get('connections') or [])} connection(s) "
                   f"blocked, {len(off.get('downloads') or [])} runtime download(s)")
    if audio and audio.get("out"):
        out.append(f"  wrote {audio['out']}")
    if section.get("html"):
        out.append(f"  wrote {section['html']}")
    return "\n".join(out) + "\n\n"
