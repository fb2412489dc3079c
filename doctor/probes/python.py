"""The interpreter and platform every other verdict depends on."""

from __future__ import annotations

import re
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from tts_doctor import target as targets
from tts_doctor.finding import Fix, Result, fail, manual, ok
from tts_doctor.registry import Context, probe


def collect_nothing(ctx: Context) -> dict[str, Any]:
    """The probe's facts are the interpreter's own (tts_doctor.target.current()), which every
    facts file records: nothing more to collect."""
    return {}


@probe("python.platform", title="Interpreter, platform and C library", collect=collect_nothing)
def interpreter(ctx: Context, facts: dict[str, Any]) -> Result:
    """Reports the interpreter, platform and C library, and checks the recipe's Python range.

    Reads the facts the diagnosed interpreter's `platform` and `sys` report: Python version
    and implementation, executable, virtual environment or not, OS, machine, libc
    (`platform.libc_ver()`) and pointer size, and says `ok` with them. It fails only when the
    recipe states `requires.python` and this version is outside it (a range that does not parse is
    accepted); the fix names a Python inside the range (the lowest of 3.8 .. 3.13 it accepts, else
    the nearest minor it accepts) and the `python3.X -m venv .venv-<recipe>` command that creates
    such an environment.
    """
    t = targets.current()
    in_venv = t.prefix != (t.base_prefix or t.prefix)
    details = {
        "python": t.version,
        "implementation": t.implementation,
        "executable": t.executable,
        "virtualenv": in_venv,
        "system": t.system,
        "release": t.release,
        "machine": t.machine,
        "libc": t.libc or None,
        "bits": 64 if t.maxsize_64bit else 32,
    }
    where = f"{t.system} {t.machine}"
    if t.libc:
        where += f", {t.libc}"
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
                      commands=(manual(f"python{_example(wanted)}", "-m", "venv",
                                       ".venv-" + re.sub(r"[^\w.-]+", "-", str(name))),))
            return fail(f"Python {details['python']} is outside {name}'s range {wanted}", fix,
                        **details)
    return ok(summary, **details)


# Python minors with real releases that TTS stacks run on, oldest first: the example command
# names the lowest of them the recipe's range accepts (the one its older pins were made for).
SUPPORTED_MINORS = tuple(range(8, 14))  # 3.8 .. 3.13


def _accepts(spec: SpecifierSet, minor: int) -> bool:
    """Whether `spec` accepts some release of Python 3.`minor` (patch releases 0..30, so that
    '>=3.8.5' and '==3.10.*' count)."""
    return any(spec.contains(f"3.{minor}.{patch}", prereleases=True) for patch in range(31))


def _example(spec: str) -> str:
    """A Python minor inside `spec` for the example command: the lowest of 3.8 .. 3.13 it
    accepts ('>=3.8' -> 3.8, '>=3.9,<3.12' -> 3.9); outside that window, the nearest minor it
    accepts (newer ones first: '>=3.14' -> 3.14, then older: '<3.8' -> 3.7); '3' if none."""
    specs = SpecifierSet(spec)
    newer = range(SUPPORTED_MINORS[-1] + 1, 31)
    older = range(SUPPORTED_MINORS[0] - 1, -1, -1)
    for minor in (*SUPPORTED_MINORS, *newer, *older):
        if _accepts(specs, minor):
            return f"3.{minor}"
    return "3"
