"""The human report, in the manner of `flutter doctor`.

One line per category with a mark, its findings indented under it, the fix under every
non-ok finding, and a last line counting the categories with issues. Colour only on a TTY,
and never when NO_COLOR is set.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any, Optional

from tts_doctor.registry import CATEGORIES

_MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "error": "✗", "skip": "-"}
_ASCII_MARKS = {"ok": "+", "warn": "!", "fail": "x", "error": "x", "skip": "-"}
_COLOURS = {"ok": "green", "warn": "yellow", "fail": "red", "error": "magenta", "skip": None}


def use_colour(stream: IO[str], setting: Optional[bool] = None) -> bool:
    """Colour when asked for, else only on a TTY that is not dumb and without NO_COLOR."""
    if setting is not None:
        return setting
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _can_encode(stream: IO[str], text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


class _Style:
    def __init__(self, colour: bool, unicode: bool):
        self.colour = colour
        self.marks = _MARKS if unicode else _ASCII_MARKS
        self.arrow = "→" if unicode else "->"

    def paint(self, text: str, fg: Optional[str] = None, bold: bool = False,
              dim: bool = False) -> str:
        if not self.colour or not (fg or bold or dim):
            return text
        import click

        return click.style(text, fg=fg, bold=bold, dim=dim)

    def mark(self, status: str) -> str:
        return self.paint(f"[{self.marks[status]}]", _COLOURS[status], bold=True)


def _fmt_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= 300 else text[:297] + "..."


def render(data: dict[str, Any], *, verbose: bool = False, colour: bool = False,
           stream: IO[str] = sys.stdout) -> str:
    """The text report for a redacted report dict."""
    st = _Style(colour, _can_encode(stream, "✓✗→·"))
    out: list[str] = []
    py = data.get("python") or {}
    plat = data.get("platform") or {}
    head = f"tts-doctor {data['tool']['version']}"
    if py.get("version"):
        head += f" · Python {py['version']}"
    if plat.get("system"):
        head += f" · {plat.get('system')} {plat.get('machine', '')}".rstrip()
    if data.get("recipe"):
        head += f" · recipe {data['recipe']}"
    if py.get("executable"):
        why = f", {py['selected_by']}" if py.get("selected_by") else ""
        head += f" · diagnosing {py['executable']}{why}"
    if st.marks is not _MARKS:
        head = head.replace("·", "-")
    out.append(st.paint(head, bold=True))
    out.append("")

    groups: dict[str, list[dict[str, Any]]] = {}
    for f in data["findings"]:
        groups.setdefault(f["category"], []).append(f)
    cat_status = data["summary"]["categories"]
    for cat, findings in groups.items():
        status = cat_status.get(cat, "ok")
        issues = sum(1 for f in findings if f["status"] in ("warn", "fail", "error"))
        title = CATEGORIES.get(cat, cat)
        suffix = f" ({issues} issue{'s' if issues != 1 else ''})" if issues else ""
        out.append(f"{st.mark(status)} {st.paint(title, bold=True)}{suffix}")
        for f in findings:
            s = f["status"]
            bullet = "•" if st.marks is _MARKS and s == "ok" else st.marks[s]
            if s == "ok":
                bullet_text = st.paint(bullet, "green")
            else:
                bullet_text = st.paint(bullet, _COLOURS[s], bold=True)
            label = st.paint(f["id"], dim=(s in ("ok", "skip")))
            timing = f"  ({f['duration_s']:.2f} s)" if verbose else ""
            out.append(f"    {bullet_text} {label}: {f['summary']}{timing}")
            if verbose or s in ("warn", "fail", "error"):
                details = f.get("details") or {}
                for key, value in details.items():
                    if not verbose and key not in ("output", "signal", "missing", "stack"):
                        continue
                    if not verbose and key == "output" and "stack" in details:
                        continue
                    text = _fmt_value(value)
                    if key == "stack" and isinstance(value, list):
                        out.append(f"        {key}:")
                        out.extend(f"          at {frame}" for frame in value)
                    elif key in ("output", "traceback"):
                        lines = [ln for ln in str(value).strip().splitlines() if ln.strip()]
                        shown = lines[-8:] if verbose else lines[-3:]
                        out.append(f"        {key}:")
                        out.extend(f"          | {ln[:200]}" for ln in shown)
                    else:
                        out.append(f"        {key}: {text}")
            fix = f.get("fix")
            if fix and s in ("warn", "fail", "error"):
                out.append(f"      {st.paint(st.arrow, 'cyan')} {fix['description']}")
                if fix.get("shim"):
                    out.append(f"          $ tts-doctor shims install {fix['shim']}")
                for cmd in fix.get("commands") or []:
                    out.append(f"          $ {cmd}")
    out.append("")
    reused = (data.get("memo") or {}).get("reused") or []
    if reused:
        out.append(st.paint(f"{len(reused)} probe{'s' if len(reused) != 1 else ''} judged from "
                            "facts an earlier check observed (nothing they depend on changed; "
                            "--fresh observes again)", dim=True))
        if verbose:
            out.append(st.paint("    " + ", ".join(reused), dim=True))
    counts = data["summary"]["counts"]
    bad = data["summary"]["categories_with_issues"]
    plural = {"warn": "warnings", "error": "errors"}
    tally = ", ".join(
        f"{counts[k]} {plural.get(k, word) if counts[k] != 1 else word}"
        for k, word in (("ok", "ok"), ("warn", "warning"), ("fail", "failed"),
                        ("error", "error"), ("skip", "skipped")))
    if bad:
        n = len(bad)
        cats = f"{n} categor{'ies' if n != 1 else 'y'} ({', '.join(bad)})"
        line = f"! Doctor found issues in {cats}: {tally}."
        colour = "red" if counts["fail"] or counts["error"] else "yellow"
        out.append(st.paint(line, colour, bold=True))
    else:
        out.append(st.paint(f"• No issues found! {tally}.", "green", bold=True))
    return "\n".join(out) + "\n"
