"""The interpreter and platform every other verdict depends on."""

from __future__ import annotations

import platform
import sys

from doctor.finding import Result, ok
from doctor.registry import Context, probe


@probe("python.platform", title="Interpreter, platform and C library")
def interpreter(ctx: Context) -> Result:
    libc, libc_version = platform.libc_ver()
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    details = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "virtualenv": in_venv,
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "libc": f"{libc} {libc_version}".strip() or None,
        "bits": 64 if sys.maxsize > 2**32 else 32,
    }
    where = f"{platform.system()} {platform.machine()}"
    if libc:
        where += f", {libc} {libc_version}"
    venv = " in a virtual environment" if in_venv else ""
    return ok(f"Python {details['python']} ({details['implementation']}) on {where}{venv}",
              **details)
