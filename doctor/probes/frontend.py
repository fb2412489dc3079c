"""Text frontends besides ttsfrd: pynini and WeTextProcessing (module `tn`).

CosyVoice falls back to WeTextProcessing when ttsfrd is missing, IndexTTS-2 needs it outright.
WeTextProcessing needs pynini, whose wheels exist only for Linux x86_64 (manylinux_2_27 or
newer glibc, CPython 3.9+); elsewhere `pip install` tries to build it against OpenFst and fails
with `Failed building wheel for pynini` (FAILURES.md O1). The verdict comes from importing
both in the worker and normalising a sample with the shipped grammar.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix, Result, fail, manual, ok, steps, warn
from tts_doctor.registry import Context, probe

PYNINI_VERSION = "2.1.7"
SAMPLE = "2024年"


def pynini_wheel_tag() -> Optional[str]:
    """The pynini wheel tag this interpreter accepts, or None (no wheel: a source build).

    Runs in the worker (standard library only): pynini publishes CPython 3.9-3.14 wheels for
    manylinux_2_27 x86_64, which this interpreter takes when its glibc is 2.27 or newer."""
    import platform

    cp = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    if not (9 <= sys.version_info[1] <= 14 and sys.version_info[0] == 3):
        return None
    if platform.machine() != "x86_64" or not sys.platform.startswith("linux"):
        return None
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
        major, minor = (int(x) for x in glibc.split()[-1].split(".")[:2])
    except (AttributeError, ValueError, OSError, IndexError):
        return None
    return f"{cp}-{cp}-manylinux_2_27_x86_64" if (major, minor) >= (2, 27) else None


def _install_fix(what: str, tag: Optional[str]) -> Fix:
    """`tag`: the pynini wheel tag the diagnosed interpreter accepts (`pynini_wheel_tag()`,
    recorded where the probe ran), or None."""
    if tag:
        return Fix(f"{what} pynini publishes a wheel for this interpreter ({tag}); install it "
                   "with WeTextProcessing.",
                   commands=(dists.pip_install(f"pynini=={PYNINI_VERSION}",
                                               "WeTextProcessing"),))
    return Fix(f"{what} pynini has no wheel for this platform/interpreter (only Linux x86_64, "
               "glibc 2.27+, CPython 3.9+): a pip source build needs OpenFst and usually fails. "
               "Take pynini from conda-forge, then WeTextProcessing without dependencies; or "
               "use Linux x86_64 (WSL on Windows).",
               commands=(steps(manual("conda", "install", "-c", "conda-forge", "pynini"),
                               dists.pip_install("WeTextProcessing", "importlib_resources",
                                                 extra="--no-deps")),))


def _try_import() -> dict[str, Any]:
    """Import pynini and tn here (the worker); normalise a sample when the grammar ships."""
    out: dict[str, Any] = {}
    try:
        import pynini

        # metadata first: pynini 2.1.7's module still says __version__ = 2.1.6.post1
        out["pynini"] = dists.version("pynini") or str(getattr(pynini, "__version__", ""))
        out["pynini_ok"] = pynini.accep("ab").num_states() > 0
    except Exception as exc:
        out["pynini_error"] = f"{type(exc).__name__}: {exc}"[:300]
    try:
        import tn

        out["tn"] = os.path.dirname(str(tn.__file__))
        from tn.chinese.normalizer import Normalizer

        grammar = [os.path.join(out["tn"], f"zh_tn_{p}.fst") for p in ("tagger", "verbalizer")]
        if all(os.path.exists(g) for g in grammar):
            # with the shipped grammar the constructor only reads: nothing is written
            text = Normalizer().normalize(SAMPLE)
            out["normalized"] = text
            out["tn_ok"] = bool(text) and not any(c.isdigit() and c.isascii() for c in text)
        else:
            out["tn_ok"] = True
            out["note"] = "no prebuilt grammar: not normalising (it would write into the env)"
    except Exception as exc:
        out["tn_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def _ttsfrd_works() -> bool:
    from tts_doctor.facts.packages import inspect_package

    if not inspect_package("ttsfrd").get("real"):
        return False
    try:
        import ttsfrd

        return hasattr(ttsfrd, "TtsFrontendEngine")
    except Exception:
        return False


def _needs(ctx: Context) -> tuple[Optional[str], Optional[str], list[str]]:
    need_w = ctx.needs("wetextprocessing")
    need_p = ctx.needs("pynini")
    return need_w, need_p, [n for n in (need_w, need_p) if n not in (None, "absent")]


def _problem(facts: dict[str, Any], need_w: Optional[str]) -> str:
    """What does not work in the collected facts ('' when everything asked for works)."""
    if facts.get("tn_missing"):
        return "WeTextProcessing is not installed (`No module named 'tn'`)"
    if "pynini_error" in facts:
        return f"pynini does not import: {facts['pynini_error']}"
    if need_w and "tn_error" in facts:
        return f"WeTextProcessing does not import: {facts['tn_error']}"
    if need_w and not facts.get("tn_ok"):
        return f"WeTextProcessing normalised {SAMPLE!r} to {facts.get('normalized')!r}"
    return ""


def collect_wetext(ctx: Context) -> dict[str, Any]:
    """WeTextProcessing's and pynini's versions, the pynini wheel tag this interpreter takes,
    whether `tn` is missing, what importing pynini and tn did (an acceptor built, the sample
    normalised with the shipped grammar, or what raised) and, when something did not work and
    ttsfrd is the recipe's optional alternative, whether ttsfrd's engine loads."""
    # both are opt-in components (applicability.OPT_IN): it runs when the recipe needs one
    need_w = _needs(ctx)[0]
    facts: dict[str, Any] = {
        "wetextprocessing": dists.version("WeTextProcessing"),
        "pynini_installed": dists.version("pynini"),
        "pynini_wheel": pynini_wheel_tag(),
    }
    if facts["wetextprocessing"] is None and not dists.has_module("tn") and need_w:
        facts["tn_missing"] = True
        if dists.has_module("pynini"):
            facts.update(_try_import())
    else:
        facts.update(_try_import())
    if _problem(facts, need_w) and ctx.needs("ttsfrd") == "optional":
        facts["ttsfrd_works"] = _ttsfrd_works()
    return facts


@probe("frontend.wetext", title="pynini and WeTextProcessing import and normalise text",
       memo=True, isolated=True, families=("O1",), timeout=90, collect=collect_wetext,
       component=("wetextprocessing", "pynini"))
def wetext(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that pynini and WeTextProcessing (`tn`) import and normalise a Chinese sample.

    No finding unless the recipe needs wetextprocessing or pynini. Imports both in the worker,
    builds a pynini acceptor and, when the prebuilt grammar ships, normalises "2024年" (no ASCII
    digit may remain). A failure fails when required, warns when optional; where ttsfrd is the
    optional alternative it is `ok` if ttsfrd's engine loads, else fails. The fix installs pynini
    2.1.7 with WeTextProcessing where pynini has a wheel (Linux x86_64, CPython 3.9+), else pynini
    from conda-forge and WeTextProcessing with --no-deps.
    """
    need_w, _need_p, needs = _needs(ctx)
    level = "required" if "required" in needs else "optional"
    details: dict[str, Any] = {
        "wetextprocessing": facts.get("wetextprocessing"),
        "pynini_installed": facts.get("pynini_installed"),
        "pynini_wheel": facts.get("pynini_wheel"),
        "need": level,
    }
    details.update({k: v for k, v in facts.items()
                    if k not in details and k not in ("tn_missing", "ttsfrd_works")})
    problem = _problem(facts, need_w)
    if not problem:
        what = (f"WeTextProcessing {details['wetextprocessing']} normalises {SAMPLE!r} -> "
                f"{details.get('normalized')!r}" if details.get("normalized")
                else "WeTextProcessing imports" if need_w else "")
        pyn = f"pynini {details.get('pynini') or details['pynini_installed']} works"
        return ok("; ".join(filter(None, (what, pyn))), **details)
    tag = facts.get("pynini_wheel")
    # CosyVoice-style stacks: ttsfrd and WeTextProcessing are alternatives; one must work
    alternative = ctx.needs("ttsfrd") == "optional" and level == "optional"
    if alternative:
        if facts.get("ttsfrd_works"):
            return ok(f"{problem}; not needed: ttsfrd is the frontend here", **details)
        return fail(f"no Chinese text frontend: {problem}, and ttsfrd does not work either "
                    "(see ttsfrd.*): the stack's frontend import fails",
                    _install_fix("Install the fallback frontend.", tag), **details)
    fix = _install_fix("Install WeTextProcessing and pynini.", tag)
    if level == "required":
        return fail(problem, fix, **details)
    return warn(problem + " (optional for this recipe)", fix, **details)
