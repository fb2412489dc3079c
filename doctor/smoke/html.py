"""`--html report.html`: one self-contained page with the findings and the plots.

Plots are drawn by matplotlib's Agg canvas (no pyplot, no global backend change) and embedded
as PNG data URIs: the memory timeline with the stages shaded, per-stage bars (wall time and
peak memory), the waveform's envelope, and the budget fit when there is one. Memory axes start
at zero; every image has alt text that says what it shows in numbers; tables show values
(`-` where a number does not apply), never Python reprs. The file is written atomically.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Optional

from tts_doctor import atomic
from tts_doctor.smoke.sizes import fmt_bytes

_COLOURS = {"load": "#9e9e9e", "frontend": "#8e24aa", "acoustic": "#1e88e5",
            "vocoder": "#43a047", "acoustic+vocoder": "#00897b", "model": "#3949ab",
            "post": "#fb8c00"}
_STATUS = {"ok": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828", "error": "#6a1b9a",
           "skip": "#757575"}
MiB = 2 ** 20


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def timeline_figure(section: dict[str, Any]) -> Optional[Any]:
    from matplotlib.figure import Figure

    tl = section.get("timeline") or {}
    if not tl.get("t"):
        return None
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot(111)
    t = tl["t"]
    ax.plot(t, [v / MiB for v in tl["rss"]], label="process RSS", color="#37474f")
    if tl.get("nvml_used"):
        ax.plot(t, [None if v is None else v / MiB for v in tl["nvml_used"]],
                label="device used (NVML)", color="#c62828")
    if tl.get("torch_allocated"):
        ax.plot(t, [None if v is None else v / MiB for v in tl["torch_allocated"]],
                label="torch allocated", color="#1565c0")
    seen = set()
    for name, t0, t1 in tl.get("spans") or []:
        ax.axvspan(t0, t1, color=_COLOURS.get(name, "#bdbdbd"), alpha=0.18, lw=0,
                   label=None if name in seen else f"stage: {name}")
        seen.add(name)
    ax.set_ylim(bottom=0)
    events = (tl.get("events") or [])[:40]
    for i, (t_ev, label) in enumerate(events):
        ax.axvline(t_ev, color="#616161", lw=0.6, ls=":",
                   label=("event (dotted, labelled at the top): ladder rung, repeat, budget "
                          "length") if i == 0 else None)
        ax.text(t_ev, ax.get_ylim()[1], label, rotation=90, fontsize=6, va="top", ha="right",
                color="#616161")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("MiB (axis from 0)")
    ax.set_title("Memory over time (stages shaded)")
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax.grid(alpha=0.3)
    return fig


def stages_figure(section: dict[str, Any]) -> Optional[Any]:
    from matplotlib.figure import Figure

    stages = section.get("stages") or []
    if not stages:
        return None
    names = [s["name"] for s in stages]
    fig = Figure(figsize=(9, 3.2))
    ax1 = fig.add_subplot(121)
    ax1.bar(names, [s["wall_s"] for s in stages],
            color=[_COLOURS.get(n, "#bdbdbd") for n in names])
    ax1.set_title("Wall time per stage (s)")
    ax1.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax2 = fig.add_subplot(122)
    series = [("RSS peak", "rss_peak", "#37474f"),
              ("RSS added by the stage", "rss_rise", "#b0bec5"),
              ("allocated peak", "torch_allocated_peak", "#1565c0"),
              ("reserved peak", "torch_reserved_peak", "#90caf9"),
              ("NVML used peak", "nvml_used_peak", "#c62828")]
    series = [s for s in series if any(st.get(s[1]) is not None for st in stages)]
    width = 0.8 / max(1, len(series))
    for i, (label, key, colour) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(stages))]
        ax2.bar(xs, [(st.get(key) or 0) / MiB for st in stages], width, label=label,
                color=colour)
    ax2.set_xticks(range(len(stages)))
    ax2.set_xticklabels(names, rotation=30, fontsize=7)
    ax2.set_ylim(bottom=0)
    ax2.set_title("Peak memory per stage (MiB, axis from 0)")
    if series:
        ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def waveform_figure(samples: Any, rate: int) -> Optional[Any]:
    import numpy as np
    from matplotlib.figure import Figure

    if samples is None or not len(samples) or not rate:
        return None
    x = np.nan_to_num(np.asarray(samples, dtype=np.float32))
    bins = min(2000, len(x))
    edges = np.linspace(0, len(x), bins + 1).astype(int)
    hi = np.array([x[a:b].max() if b > a else 0 for a, b in zip(edges, edges[1:])])
    lo = np.array([x[a:b].min() if b > a else 0 for a, b in zip(edges, edges[1:])])
    t = edges[:-1] / rate
    fig = Figure(figsize=(9, 1.8))
    ax = fig.add_subplot(111)
    ax.fill_between(t, lo, hi, color="#455a64", lw=0)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("seconds")
    ax.set_title("Waveform (envelope)")
    return fig


def budget_figure(section: dict[str, Any]) -> Optional[Any]:
    from matplotlib.figure import Figure

    bud = section.get("budget")
    if not bud or not bud.get("points"):
        return None
    pts = [p for p in bud["points"] if p["peak"] is not None]
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot(111)
    ax.plot([p["chars"] for p in pts], [p["peak"] / MiB for p in pts], "o", color="#1565c0",
            label="measured peak")
    if bud.get("fit"):
        a, b = bud["fit"]["intercept"], bud["fit"]["slope_per_char"]
        measured = max(p["chars"] for p in bud["points"])
        # the fit out to the longest text that fits, but not so far the points are a dot
        right = max(measured, min(bud.get("longest_chars") or 0, 4 * measured))
        xs = [0, right * 1.1]
        ax.plot(xs, [(a + b * x) / MiB for x in xs], "-", color="#90caf9", label="linear fit")
    ax.axhline(bud["budget"] / MiB, color="#c62828", ls="--",
               label=f"budget {fmt_bytes(bud['budget'])}")
    for p in bud["points"]:
        if p["oom"]:
            ax.axvline(p["chars"], color="#6a1b9a", ls=":", label="out of memory")
    ax.set_xlabel("characters")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("MiB (axis from 0)")
    ax.set_title(f"Peak memory vs text length ({bud['basis']})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _cell(value: Any, digits: int = 3) -> str:
    """A table cell: the value as a person reads it (never a Python repr), escaped."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, dict):
        return html.escape(", ".join(f"{k} {_plain(v)}" for k, v in value.items()
                                     if v is not None))
    if isinstance(value, (list, tuple)):
        return html.escape(", ".join(_plain(v) for v in value))
    return html.escape(str(value))


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def _plan(plan: Optional[dict[str, Any]]) -> str:
    """A ladder rung's plan in words: 'cpu, fp32, chunks of <= 50 chars, vocoder in 64-frame
    chunks'."""
    if not plan:
        return "-"
    parts = [str(plan.get("device") or "-"), str(plan.get("precision") or "-"),
             f"chunks of <= {plan['max_chars']} chars" if plan.get("max_chars")
             else "whole text"]
    chunk = plan.get("vocoder_chunk")
    if chunk:
        parts.append(f"vocoder in {chunk[0]}-frame chunks ({chunk[1]} overlap)")
    return html.escape(", ".join(parts))


def _mib_range(values: list[Optional[int]]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "no readings"
    return f"{fmt_bytes(min(vals))} to {fmt_bytes(max(vals))}"


def alt_texts(sec: dict[str, Any], samples: Any = None, rate: int = 0) -> dict[str, str]:
    """What each figure shows, in words and numbers, for its alt attribute."""
    out: dict[str, str] = {}
    tl = sec.get("timeline") or {}
    if tl.get("t"):
        names = []
        for name, _t0, _t1 in tl.get("spans") or []:
            if name not in names:
                names.append(name)
        text = (f"Line chart of memory over {tl['t'][-1]:.1f} seconds: process RSS "
                f"{_mib_range(tl.get('rss') or [])}")
        if tl.get("torch_allocated"):
            text += f", torch allocated {_mib_range(tl['torch_allocated'])}"
        if tl.get("nvml_used"):
            text += f", device used (NVML) {_mib_range(tl['nvml_used'])}"
        if names:
            text += "; shaded stages: " + ", ".join(names)
        if tl.get("events"):
            text += f"; {len(tl['events'])} events marked: " + ", ".join(
                str(label) for _t, label in tl["events"][:8])
        out["timeline"] = text + "."
    stages = sec.get("stages") or []
    if stages:
        out["stages"] = ("Bar charts per stage: wall time " + ", ".join(
            f"{s['name']} {s['wall_s']:.2f} s" for s in stages) + "; peak RSS " + ", ".join(
            f"{s['name']} {fmt_bytes(s.get('rss_peak'))}" for s in stages) + ".")
    if samples is not None and rate and len(samples):
        import numpy as np

        x = np.nan_to_num(np.asarray(samples, dtype=np.float32))
        out["waveform"] = (f"Waveform envelope of {len(x) / rate:.2f} s of audio at {rate} Hz, "
                           f"peak {float(np.max(np.abs(x))):.3f} of full scale.")
    bud = sec.get("budget")
    if bud and bud.get("points"):
        pts = ", ".join(f"{p['chars']} chars " + ("out of memory" if p.get("oom")
                                                  else fmt_bytes(p.get("peak")))
                        for p in bud["points"])
        out["budget"] = (f"Scatter of peak memory against text length ({bud.get('basis')}): "
                         f"{pts}; budget {fmt_bytes(bud.get('budget'))}"
                         + (f", longest text that fits about {bud['longest_chars']} characters"
                            if bud.get("longest_chars") else "") + ".")
    return out


def _table(rows: list[list[str]], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render(data: dict[str, Any], samples: Any = None, rate: int = 0) -> str:
    """The page for a redacted report dict with its smoke section."""
    sec = data.get("smoke") or {}
    eng = sec.get("engine") or {}
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>tts-doctor smoke: {esc(str(eng.get('name')))}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
        "th{background:#f5f5f5}.st{font-weight:bold}code{font-size:12px}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>tts-doctor smoke: {esc(str(eng.get('name')))} engine</h1>",
        f"<p>{esc(data['tool']['name'])} {esc(data['tool']['version'])} · "
        f"{_cell(data.get('created'))} · recipe {_cell(data.get('recipe'))} · device "
        f"{_cell(eng.get('device'))} ({_cell(eng.get('precision'))}) · "
        f"{_cell((sec.get('text') or {}).get('chars'))} characters</p>",
    ]
    rows = []
    for f in data["findings"]:
        fix = f.get("fix") or {}
        fix_html = esc(fix.get("description", "")) + "".join(
            f"<br><code>$ {esc(c)}</code>" for c in fix.get("commands") or [])
        rows.append([f"<span class='st' style='color:{_STATUS[f['status']]}'>"
                     f"{esc(f['status'])}</span>", f"<code>{esc(f['id'])}</code>",
                     esc(f["summary"]), fix_html if f["status"] in ("warn", "fail", "error")
                     else ""])
    parts.append("<h2>Findings</h2>" + _table(rows, ["status", "id", "summary", "fix"]))
    t = sec.get("timing")
    if t:
        parts.append(f"<p>RTF {_cell(t.get('rtf'))} · synthesis {_cell(t.get('synthesis_s'))} s "
                     f"for {_cell(t.get('audio_s'))} s of audio · first audio "
                     f"{_cell(t.get('first_audio_s'))} s · load {_cell(t.get('load_s'))} s</p>")
    alts = alt_texts(sec, samples, rate)
    figures = [("timeline", timeline_figure(sec)), ("stages", stages_figure(sec)),
               ("waveform", waveform_figure(samples, rate)), ("budget", budget_figure(sec))]
    parts.append("<h2>Memory and time</h2>")
    for name, fig in figures:
        if fig is not None:
            parts.append(f"<p><img alt=\"{esc(alts.get(name, name), quote=True)}\" "
                         f"src='{_png(fig)}'></p>")
    stages = sec.get("stages") or []
    if stages:
        srows = [[_cell(s["name"]), _cell(s.get("calls")), _cell(s.get("wall_s")),
                  _cell(fmt_bytes(s.get("rss_peak")) if s.get("rss_peak") is not None else None),
                  *(_cell(fmt_bytes(s.get(k)) if s.get(k) is not None else None)
                    for k in ("torch_allocated_peak", "torch_reserved_peak", "nvml_used_peak")),
                  _cell(s.get("num_alloc_retries"))]
                 for s in stages]
        parts.append(_table(srows, ["stage", "calls", "wall s", "RSS peak", "allocated peak",
                                    "reserved peak", "NVML used peak", "alloc retries"]))
    lad = sec.get("ladder")
    if lad:
        lrows = [[_cell(r.get("rung")), _cell(r.get("outcome")), _cell(r.get("detail")),
                  _cell(r.get("wall_s")), _plan(r.get("plan"))] for r in lad["rungs"]]
        parts.append("<h2>Out-of-memory ladder</h2>"
                     + _table(lrows, ["rung", "outcome", "detail", "wall s", "plan"]))
    rep = sec.get("repeat")
    if rep:
        def size(v: Any) -> str:
            return _cell(fmt_bytes(v) if v is not None else None)

        rrows = [[_cell(r.get("run")), _cell(r.get("wall_s")), _cell(r.get("rtf")),
                  size(r.get("rss")), size(r.get("torch_allocated")), _cell(r.get("tensors")),
                  size(r.get("tensor_bytes"))] for r in rep["runs"]]
        parts.append(f"<h2>Repeats (leak verdict: {_cell(rep.get('verdict'))})</h2>"
                     + _table(rrows, ["run", "wall s", "RTF", "RSS", "allocated", "tensors",
                                      "tensor bytes"]))
    parts.append("</body></html>\n")
    return "".join(parts)


def write(path: str, data: dict[str, Any], samples: Any = None, rate: int = 0) -> None:
    from pathlib import Path

    target = Path(path)
    if str(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(target, render(data, samples, rate))
