"""Memory sizes as people write them ("8GiB", "512 MB", "1.5G") and as the report shows them."""

from __future__ import annotations

import re
from typing import Optional

_UNITS = {
    "": 1, "b": 1,
    "k": 2 ** 10, "kib": 2 ** 10, "kb": 10 ** 3,
    "m": 2 ** 20, "mib": 2 ** 20, "mb": 10 ** 6,
    "g": 2 ** 30, "gib": 2 ** 30, "gb": 10 ** 9,
    "t": 2 ** 40, "tib": 2 ** 40, "tb": 10 ** 12,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes from '8GiB', '8G' (binary), '8GB' (decimal), '512MiB', '1048576'.

    Raises ValueError with the accepted forms when the text is not a size.
    """
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 8GiB, 512MiB, 16GB, 2G)")
    value = float(m.group(1)) * _UNITS[unit]
    if value <= 0:
        raise ValueError(f"{text!r}: a size must be positive")
    return int(value)


def fmt_bytes(n: Optional[float]) -> str:
    """'1.50 GiB', '312.4 MiB', '12.0 KiB', '-' for None."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(float(n))
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            digits = 2 if unit == "GiB" else 1
            return f"{sign}{n / scale:.{digits}f} {unit}"
    return f"{sign}{n:.0f} B"


def mib(n: Optional[float]) -> Optional[float]:
    return None if n is None else round(n / 2 ** 20, 1)
