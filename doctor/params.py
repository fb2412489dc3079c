"""Click parameter types that refuse what the standard ones let through.

`click.FloatRange(min=0.1)` accepts `nan` (every comparison with NaN is false), `inf` and
`1e10`; those then switch a watchdog off or overflow a timer after the whole run. These types
accept only finite numbers within a stated range, and say so in the usage error (exit 2).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import click


class FiniteFloat(click.ParamType):
    """A finite float in [low, high]: no nan, no inf, nothing a timer cannot hold."""

    name = "number"

    def __init__(self, low: float, high: float, unit: str = ""):
        self.low, self.high, self.unit = low, high, unit

    def get_metavar(self, param: click.Parameter,
                    ctx: Optional[click.Context] = None) -> Optional[str]:
        return f"{self.low:g}..{self.high:g}"

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        unit = f" {self.unit}" if self.unit else ""
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number (give {self.low:g} to "
                      f"{self.high:g}{unit})", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(f"{number:g} is out of range (give {self.low:g} to {self.high:g}{unit})",
                      param, ctx)
        return number

    def __repr__(self) -> str:
        return f"FiniteFloat({self.low}, {self.high})"


# Probe and smoke timeouts: a day is more than any probe or synthesis may reasonably take,
# and far below what threading/time can hold.
MAX_SECONDS = 86400.0


def seconds(low: float) -> FiniteFloat:
    return FiniteFloat(low, MAX_SECONDS, "seconds")
