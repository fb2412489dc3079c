"""The interpreter and platform every other verdict depends on."""

from __future__ import annotations

import platform
import sys

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from doctor.finding import Fix, Result, fail, ok
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
    summary = f"Python {details['python']} ({details['implementation']}) on {where}{venv}"
    wanted = ((ctx.recipe or {}).get("requires") or {}).get("python")
    if wanted:
        details["recipe_python"] = wanted
        try:
            accepted = SpecifierSet(wanted).contains(details["python"], prereleases=True)
        except InvalidSpecifier:
            accepted = True
        if not accepted:
            name = (ctx.recipe or {}).get("name", "the recipe")
            fix = Fix(f"{name} needs Python {wanted} (its dependencies publish nothing else): "
                      "create an environment with such an interpreter.",
                      commands=(f"python{_example(wanted)} -m venv .venv-{name}",))
            return fail(f"Python {details['python']} is outside {name}'s range {wanted}", fix,
                        **details)
    return ok(summary, **details)


def _example(spec: str) -> str:
    """A Python version inside `spec`, for the example command (3.8 for '>=3.8,<3.9')."""
    for minor in range(20, 5, -1):
        candidate = f"3.{minor}"
        if SpecifierSet(spec).contains(f"{candidate}.0", prereleases=True):
            return candidate
    return "3"
