"""Side-by-side timing: candidates run interleaved in one session, medians and ratios.

Interleaving (A B A B ...) spreads machine noise over every candidate alike, so the ratio
between two candidates measured in one run is more trustworthy than either absolute time.
Nothing here asserts a time: results go to docs/BENCHMARKS.md for people to read.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Row:
    name: str
    samples: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Section:
    title: str
    what: str
    command: str
    rows: list[Row]
    baseline: Optional[str] = None
    unit: str = "ms"
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        scale = 1000.0 if self.unit == "ms" else 1.0
        base = next((r for r in self.rows if r.name == self.baseline), None)
        out = [f"## {self.title}", "", self.what, "", f"Command: `{self.command}`", ""]
        head = f"| candidate | median ({self.unit}) | min | max | runs |"
        sep = "|---|---:|---:|---:|---:|"
        if base:
            head += f" vs {self.baseline} |"
            sep += "---:|"
        out += [head, sep]
        for r in self.rows:
            line = (f"| {r.name} | {r.median * scale:.2f} | {min(r.samples) * scale:.2f} | "
                    f"{max(r.samples) * scale:.2f} | {len(r.samples)} |")
            if base:
                line += f" {r.median / base.median:.2f}x |"
            out.append(line)
        out.append("")
        for r in self.rows:
            if r.note:
                out.append(f"- {r.name}: {r.note}")
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out).rstrip() + "\n"


def interleave(candidates: dict[str, Callable[[], None]], repeats: int,
               warmup: int = 1) -> list[Row]:
    """Time each candidate `repeats` times, alternating between them."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return [Row(name, s) for name, s in samples.items()]


def command(*args: str, env: Optional[dict[str, str]] = None,
            ok_codes: tuple[int, ...] = (0,)) -> Callable[[], None]:
    """A candidate that runs a command and checks its exit code."""
    full_env = {**os.environ, **(env or {})}

    def run() -> None:
        proc = subprocess.run(list(args), capture_output=True, env=full_env)
        if proc.returncode not in ok_codes:
            raise RuntimeError(f"{args} exited {proc.returncode}: {proc.stderr[-500:]!r}")

    return run
