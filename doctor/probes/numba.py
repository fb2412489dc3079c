"""numba and resampy: numba's NumPy range (M1), a real JIT compile, where numba can cache
compiled functions (M3), resampy's filter names (the seed's `sinc_best`) and its first-call JIT
latency (M4).

Every probe here runs in the worker: importing numba loads llvmlite's native library. Probe
ids stay in the `numba` category (resampy is numba's main user in TTS stacks):
`numba.resampy-filters` and `numba.warmup`.

Every probe is split (docs/DEVELOPING.md, "Collect and judge"): its `collect_*` function
observes in the worker (versions and declared ranges, what importing numba raised, what a
compile returned, the cache folders tried, the filter names installed code passes and what
resampy says of them, the tone resampy produced, the first-call times) and the probe function
judges those facts in the doctor's process, so `check --save-facts` keeps them and
`check --facts` judges them again.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import time
from typing import Any, Optional

from tts_doctor import applicability, dists, footprint, scan, upgrades
from tts_doctor.applicability import not_installed
from tts_doctor.finding import Fix, Result, cmd, export, fail, ok, skip, steps, warn
from tts_doctor.registry import Context, probe

CACHE_FIX_DIR = "/tmp/numba-cache"
# a resample in a fresh process: compiles resampy's kernels (and caches them where numba can);
# shown as text (double-quoted), never run by `fix`
WARM_UP = "import numpy, resampy; resampy.resample(numpy.zeros(4800, 'float32'), 48000, 24000)"
# First-call latency above this (seconds) is a warning; `--set numba.jit-budget=0.2` changes it.
JIT_BUDGET_S = 1.0
# resampy's own valid names when it cannot be asked (REFERENCE.md).
RESAMPY_FILTERS = ("kaiser_best", "kaiser_fast", "sinc_window")

# Filled by the first resampy call in this process (numba.resampy-filters), read by
# numba.warmup: the first call's JIT is paid once per process, so it is measured once.
_FIRST_CALL: dict[str, float] = {}

_NEEDS = re.compile(r"Numba needs NumPy (?P<version>\d+\.\d+) or (?P<dir>less|greater)")
_LLVMLITE = re.compile(r"llvmlite", re.I)


RESAMPY_CALLS = [scan.Pattern("resampy", "resample"), scan.Pattern("resampy.core", "resample")]
scan.watch("resampy", RESAMPY_CALLS, exclude=("resampy",))


def resampy_callers() -> list[Any]:
    """Code the deployment reaches that calls resampy.resample (librosa, the user's stack),
    from the run's one scan pass; calls outside the closure do not count."""
    return scan.split_reached(scan.find_usages(RESAMPY_CALLS, exclude=("resampy",)))[0]


def _run_resampy(ctx: Context) -> bool:
    """Whether to call resampy for real (a JIT compile, about a second of CPU): when installed
    code calls it, when the recipe needs it, or when asked with --set numba.resampy=run.
    Otherwise its verdicts are static, and say so."""
    wanted = str(ctx.options.get("numba.resampy", "")).lower()
    if wanted in ("run", "1", "yes", "true"):
        return True
    if wanted in ("skip", "0", "no", "false"):
        return False
    return ctx.needs("resampy") in ("required", "optional") or bool(resampy_callers())


def _missing(ctx: Context, component: str) -> Result:
    return not_installed(ctx, component, Fix(f"Install {component}.",
                                             commands=(dists.pip_install(component),)))


def _requirement(dist_name: str, dep: str) -> Optional[str]:
    """The requirement line of `dist_name` on `dep` ('numpy<2.5,>=1.24'), from metadata."""
    dist = dists.distribution(dist_name)
    for line in (dist.requires or []) if dist else []:
        head = re.split(r"[<>=!~;\s\[]", line, maxsplit=1)[0]
        if dists.canonical(head) == dists.canonical(dep):
            return line.split(";", 1)[0].replace(" ", "")
    return None


# The first numba release that supports each NumPy minor (numba's release notes): what an
# "upgrade numba" can name. A NumPy newer than the table knows gets no upgrade, only a pin.
NUMBA_FOR_NUMPY = {"1.24": "0.57.0", "1.25": "0.58.0", "1.26": "0.58.1", "2.0": "0.60.0",
                   "2.1": "0.61.0", "2.2": "0.61.2"}


def import_fix(message: str, llvmlite_req: Optional[str] = None,
               numpy: Optional[str] = None) -> Fix:
    """The fix for numba's own import-time checks (NumPy range, llvmlite version);
    `llvmlite_req`: numba's requirement on llvmlite, `numpy`: the installed NumPy, as
    collected (pure: no metadata is read here). An upgrade is named only to a numba known to
    support that NumPy (`NUMBA_FOR_NUMPY`, tts_doctor.upgrades)."""
    m = _NEEDS.search(message)
    if m and m.group("dir") == "less":
        major, minor = (int(x) for x in m.group("version").split("."))
        pin = f"numpy<{major}.{minor + 1}"
        # the NumPy found: collected, or named by numba's message ("... Got NumPy 2.0.")
        got = re.search(r"Got NumPy (\d+\.\d+)", message)
        np_line = ".".join(map(str, (dists.release(numpy) or ())[:2])) if numpy else (
            got.group(1) if got else "")
        # numba refuses this NumPy, so any numba that supports it is newer than this one
        up = upgrades.Upgrade("numba", None, NUMBA_FOR_NUMPY.get(np_line))
        command = up.command()
        if command is not None:
            return Fix(f"This numba supports NumPy up to {m.group('version')}: {up.words()} "
                       f"(the first numba for NumPy {np_line}; llvmlite follows), or pin "
                       f"{pin}.", commands=(command, dists.pip_install(pin)))
        return Fix(f"This numba supports NumPy up to {m.group('version')}, and no numba for "
                   f"NumPy {np_line or 'this NumPy'} is known here ({upgrades.NO_FIXED_RELEASE})"
                   f": pin {pin}.", commands=(dists.pip_install(pin),))
    if m:  # numba names the NumPy it needs: that release exists, and this NumPy is older
        up = upgrades.Upgrade("numpy", None, m.group("version"))
        return Fix(f"This numba needs NumPy {m.group('version')} or newer: {up.words()}, or "
                   "install an older numba.",
                   commands=tuple(c for c in (up.command(),) if c is not None)
                   or (dists.pip_install(f"numpy>={m.group('version')}"),))
    if _LLVMLITE.search(message):
        req = llvmlite_req or "llvmlite"
        return Fix("numba and llvmlite are released in pairs: install the llvmlite this numba "
                   "declares.", commands=(dists.pip_install(req),))
    # the installed releases again (no --upgrade: pip keeps the installed versions)
    return Fix("numba does not import: reinstall numba and llvmlite together (the error "
               "above names the part that is broken).",
               commands=(dists.pip_install("numba", "llvmlite", extra="--force-reinstall"),))


def _import_numba() -> tuple[Any, Optional[str], float]:
    t0 = time.perf_counter()
    try:
        import numba
    except Exception as exc:  # ImportError from numba's own checks, OSError from llvmlite
        return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
    return numba, None, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------


def numba_facts(ctx: Context, *, with_import: bool = True) -> dict[str, Any]:
    """What every numba collector starts from: numba's version (None: not installed), NumPy's
    and llvmlite's, numba's declared requirements on them, and what importing numba raised
    (`import_error`, None when it imports) with the time it took."""
    version = dists.version("numba")
    facts: dict[str, Any] = {"numba": version}
    if version is None:
        return facts
    facts.update(numpy=dists.version("numpy"), llvmlite=dists.version("llvmlite"),
                 declares=_requirement("numba", "numpy"),
                 declares_llvmlite=_requirement("numba", "llvmlite"))
    if with_import:
        _numba, error, seconds = _import_numba()
        facts.update(import_error=error, import_s=seconds)
    return facts


def collect_numpy(ctx: Context) -> dict[str, Any]:
    """numba.numpy's facts (`numba_facts`)."""
    return numba_facts(ctx)


@probe("numba.numpy", title="numba imports with the installed NumPy (numba's supported range)",
       memo=True, isolated=True, families=("M1",), component="numba",
       crash_fix=Fix("Importing numba crashed the process (llvmlite's native library, or "
                     "extensions built for another NumPy). Reinstall numba and llvmlite.",
                     commands=(cmd("{python}", "-m", "pip", "install", "--force-reinstall",
                                   "numba", "llvmlite"),)),
       collect=collect_numpy)
def numba_numpy(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that numba imports with the installed NumPy (and llvmlite).

    No finding when the recipe marks numba absent; not installed: `skip`, or `fail` when the recipe
    requires it. Imports numba in the worker and reads the NumPy range numba declares: an import
    error fails, quoting numba's own "Numba needs NumPy X or less/greater" check when that is the
    cause; otherwise `ok` with the import time. The fix follows the message: upgrade numba or pin
    numpy below the next minor, upgrade numpy, install the llvmlite numba declares, or
    force-reinstall numba and llvmlite.
    """
    version = facts.get("numba")
    if version is None:
        return _missing(ctx, "numba")
    np_version = facts.get("numpy")
    declared = facts.get("declares")
    seconds = float(facts.get("import_s") or 0.0)
    details: dict[str, Any] = {"numba": version, "numpy": np_version, "declares": declared,
                               "llvmlite": facts.get("llvmlite"), "import_s": round(seconds, 3)}
    error = facts.get("import_error")
    if error:
        details["error"] = error
        fix = import_fix(error, facts.get("declares_llvmlite"), facts.get("numpy"))
        m = _NEEDS.search(error)
        if m:
            return fail(f"numba {version} does not import with numpy {np_version}: "
                        f"{m.group(0)} (numba declares {declared})", fix, **details)
        return fail(f"numba {version} does not import: {error}"[:400], fix, **details)
    return ok(f"numba {version} imports with numpy {np_version} (numba declares "
              f"{declared or 'no NumPy range'}) in {seconds:.2f} s", **details)


def collect_jit(ctx: Context) -> dict[str, Any]:
    """numba.jit's facts: `numba_facts`; when resampy would run and its first real resample
    works, that compile (`resampy_compile`: the time and the dispatchers compiled); else what
    compiling and calling a small `numba.njit` function returned or raised (`tiny`)."""
    facts = numba_facts(ctx)
    if facts.get("numba") is None or facts.get("import_error"):
        return facts
    import numba

    facts["resampy_compile"] = _compile_resampy(ctx)
    if facts["resampy_compile"] is not None:
        return facts
    t0 = time.perf_counter()
    try:
        func = numba.njit("int64(int64)", cache=False)(_tiny_kernel())
        compile_s = time.perf_counter() - t0
        facts["tiny"] = {"compile_s": compile_s, "value": float(func(4))}
    except Exception as exc:
        facts["tiny"] = {"error": f"{type(exc).__name__}: {exc}"}
    return facts


@probe("numba.jit", title="numba compiles and runs a function (JIT works, compile time)",
       memo=True, isolated=True, collect=collect_jit, component="numba")
def jit(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that numba's JIT compiles and runs a function, and reports the compile time.

    Same recipe and install gates as numba.numpy, and an import error fails the same way. When
    resampy would run (installed code calls it, the recipe needs it, or `--set numba.resampy=run`)
    and its first real resample succeeds, that compile is the verdict (`ok`); otherwise a small
    integer loop is compiled with `numba.njit` and must return 14. A compile error or a wrong result
    fails, with a command that force-reinstalls numba and llvmlite.
    """
    version = facts.get("numba")
    if version is None:
        return _missing(ctx, "numba")
    error = facts.get("import_error")
    if error:
        return fail(f"numba {version} does not import, so nothing can be JIT-compiled: "
                    f"{error}"[:400], import_fix(error, facts.get("declares_llvmlite"),
                                                 facts.get("numpy")),
                    numba=version, error=error)
    real = facts.get("resampy_compile")
    if real:
        first = float(real["first_s"])
        return ok(f"numba {version} compiled and ran resampy's resampling kernel in "
                  f"{first:.2f} s", numba=version, llvmlite=facts.get("llvmlite"),
                  compile_s=round(first, 3), kernel=real["kernel"])
    tiny = facts.get("tiny") or {}
    if tiny.get("error"):
        return fail(f"numba {version} imports but cannot compile a function: "
                    f"{tiny['error']}"[:400],
                    Fix("The JIT (llvmlite) is broken: reinstall numba and llvmlite together.",
                        commands=(dists.pip_install("numba", "llvmlite",
                                                    extra="--force-reinstall"),)),
                    numba=version, error=tiny["error"])
    compile_s, value = float(tiny["compile_s"]), float(tiny["value"])
    details = {"numba": version, "llvmlite": facts.get("llvmlite"),
               "compile_s": round(compile_s, 3)}
    if value != 14.0:
        return fail(f"numba {version} compiled a sum of squares that returned {value}, not 14",
                    Fix("Compiled code gives wrong results: reinstall numba and llvmlite.",
                        commands=(dists.pip_install("numba", "llvmlite",
                                                    extra="--force-reinstall"),)), **details)
    return ok(f"numba {version} compiled and ran a function in {compile_s:.2f} s", **details)


def _compile_resampy(ctx: Context) -> Optional[dict[str, Any]]:
    """When resampy is installed, the JIT test is its real kernel: the first resample in
    this worker compiles it (numba.resampy-filters and numba.warmup reuse that compile
    instead of paying a second one). Its first-call time and the compiled dispatchers, or
    None when resampy is absent, not run or broken: then the tiny kernel decides whether
    numba itself works. Collector side."""
    # where resampy's own probes do not apply (the recipe marks it absent), neither does its kernel
    if dists.version("resampy") is None or \
            applicability.decide(("resampy",), ctx) == applicability.SKIP or not _run_resampy(ctx):
        return None
    resampy, _facts = _resampy_facts(ctx)
    if resampy is None:
        return None
    import numpy as np

    try:
        tone = _tone(resampy, np)
    except Exception:
        return None
    if tone_problems(tone) or "first_s" not in _FIRST_CALL:
        return None
    return {"first_s": _FIRST_CALL["first_s"], "kernel": _compiled_kernels(resampy)}


def _compiled_kernels(resampy: Any) -> str:
    """The resampy dispatchers that hold compiled code now: `_resample_loop_s` (serial, what
    resample() uses by default) and/or `_resample_loop_p` (parallel=True)."""
    interpn = getattr(resampy, "interpn", None)
    names = [f"resampy.interpn.{n}" for n in ("_resample_loop_s", "_resample_loop_p")
             if getattr(getattr(interpn, n, None), "signatures", None)]
    return ", ".join(names) or "resampy.interpn._resample_loop_s"


def _tiny_kernel() -> Any:
    """A loop with integer arithmetic: a real LLVM compile, without the array machinery
    (typing numpy arrays would cost a third of a second more of CPU on every check)."""
    def sum_of_squares(n):  # type: ignore[no-untyped-def]
        total = 0
        for i in range(n):
            total += i * i
        return total

    return sum_of_squares


# --- numba.cache (M3) ------------------------------------------------------------------------

_JIT_NAMES = ("jit", "njit", "vectorize", "guvectorize", "generated_jit", "stencil", "cfunc")
_CACHE_TRUE = re.compile(rb"cache\s*=\s*True")
JIT_CALLS = [scan.Pattern("numba", n) for n in _JIT_NAMES]
scan.watch("numba.jit", JIT_CALLS, exclude=("numba", "llvmlite"))


def cache_users() -> list[dict[str, str]]:
    """Installed distributions with numba functions compiled with `cache=True` (one file
    each): the code that raises "cannot cache function" when no cache folder is writable."""
    usages = scan.split_reached(scan.find_usages(JIT_CALLS, exclude=("numba", "llvmlite")))[0]
    out: dict[str, dict[str, str]] = {}
    for u in usages:
        if u.distribution in out:
            continue
        try:
            with open(u.file, "rb") as fh:
                if not _CACHE_TRUE.search(fh.read()):
                    continue
        except OSError:
            continue
        out[u.distribution] = {"distribution": u.distribution, "version": u.version,
                               "file": u.file}
    return list(out.values())


def _subpath(py_file: str) -> str:
    """numba's `get_suitable_cache_subpath`: parent folder name + SHA1 of the folder."""
    folder = os.path.dirname(os.path.abspath(py_file))
    return "_".join([os.path.split(folder)[-1], hashlib.sha1(folder.encode()).hexdigest()])


def user_cache_dir() -> str:
    """numba's user-wide cache root on Linux (its bundled appdirs): $XDG_CACHE_HOME/numba."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "numba")


def unusable(path: str) -> Optional[str]:
    """Why numba could not cache in `path` (None: it could), found by creating a file there
    (as root `os.access` says yes to everything). A missing folder is tested by creating a
    temporary folder in its nearest existing parent, then removing it: nothing is left."""
    import tempfile

    footprint.depends(path, access=True)  # the test below changes mtimes, not permissions
    if os.path.isdir(path):
        try:
            tempfile.TemporaryFile(dir=path).close()
            return None
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
    parent = path
    while parent and not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    footprint.depends(parent, access=True)
    if not os.path.isdir(parent):
        return f"{parent} is not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".tts-doctor-"))
        return None
    except OSError as exc:
        return f"cannot create {path}: {parent}: {exc.strerror or exc}"


def locators(py_file: str, cache_dir: Optional[str]) -> list[dict[str, Any]]:
    """numba's locator chain for a function in `py_file`, each with why it is unusable."""
    chain = []
    if cache_dir:
        chain.append(("NUMBA_CACHE_DIR", os.path.join(cache_dir, _subpath(py_file))))
    chain.append(("in-tree", os.path.join(os.path.dirname(py_file), "__pycache__")))
    chain.append(("user-wide", os.path.join(user_cache_dir(), _subpath(py_file))))
    return [{"locator": name, "path": path, "unusable": unusable(path)}
            for name, path in chain]


def why_not_ask_numba(chain: list[dict[str, Any]]) -> Optional[str]:
    """Why numba itself must not be asked for its locator (None: it may be).

    Asking is not read-only: each of numba's locators runs `ensure_cache_path`, which is
    `os.makedirs` of its folder (NUMBA_CACHE_DIR/<subpath>, the in-tree `__pycache__`,
    ~/.cache/numba/<subpath>) and a `tempfile.TemporaryFile` there (unlinked at once: no file
    stays). numba stops at the first locator that works, which by our own test (`unusable`) is
    the first usable folder of `chain`; if that folder does not exist yet, numba would create
    it in the user's cache or the environment, so it is not asked. Custom locator classes
    (NUMBA_CACHE_LOCATOR_CLASSES) may do anything: not asked either."""
    if os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):
        return "NUMBA_CACHE_LOCATOR_CLASSES names custom locators"
    chosen = next((c for c in chain if not c["unusable"]), None)
    if chosen is not None and not os.path.isdir(chosen["path"]):
        return f"it would create {chosen['path']}"
    return None


def _new_folders(path: str) -> list[str]:
    """`path` and its parents that do not exist yet, deepest first."""
    out = []
    while path and not os.path.exists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out


def _real_locator(numba: Any, py_file: str,
                  chain: list[dict[str, Any]]) -> tuple[Optional[str], Optional[str]]:
    """Let numba itself pick the cache folder for a function defined in `py_file`:
    (cache path, None) or (None, numba's error).

    Decorating with cache=True compiles nothing and saves nothing, but it does run numba's
    locators, which create their folder and a temporary file in it (see why_not_ask_numba:
    the caller asks numba only when the folder it should settle on already exists, and the
    temporary file is unlinked as it is made). Should numba still disagree with our test and
    try a folder of `chain` that did not exist, that folder (and the parents made with it) is
    removed again, if empty: the diagnosed environment and the user's cache are left as they
    were."""
    fresh = [d for c in chain for d in _new_folders(c["path"])]
    code = compile("def tts_doctor_cache_probe(x):\n    return x\n", py_file, "exec")
    namespace: dict[str, Any] = {"__name__": "tts_doctor_cache_probe"}
    exec(code, namespace)
    try:
        dispatcher = numba.njit(cache=True)(namespace["tts_doctor_cache_probe"])
    except RuntimeError as exc:
        return None, str(exc)
    finally:
        for folder in fresh:  # deepest first; rmdir removes only empty folders
            try:
                os.rmdir(folder)
            except OSError:
                pass
    cache = getattr(dispatcher, "_cache", None)
    return str(getattr(cache, "cache_path", "") or ""), None


def collect_cache(ctx: Context) -> dict[str, Any]:
    """numba.cache's facts: `numba_facts` (no import yet), what importing numba raised, the
    cache folder numba is configured with (NUMBA_CACHE_DIR, as numba read it), the installed
    files that compile with `cache=True`, and for each (or for numba's own `__init__.py`)
    numba's locator chain with why each folder is unusable, the folder numba would settle on,
    and what numba itself answered when it could be asked without leaving anything behind."""
    facts = numba_facts(ctx, with_import=False)
    if facts.get("numba") is None:
        return facts
    numba, error, _ = _import_numba()
    env_dir = os.environ.get("NUMBA_CACHE_DIR") or None
    if numba is not None:
        try:
            from numba.core import config

            env_dir = config.CACHE_DIR or None
        except Exception:
            pass
    users = cache_users()
    targets = [(u["file"], f"{u['distribution']} {u['version']}") for u in users]
    if not targets:
        numba_dist = dists.distribution("numba")
        rep = str(numba_dist.locate_file("numba/__init__.py")) if numba_dist else ""
        targets = [(rep, "a package in site-packages")] if rep else []
    rows = []
    for py_file, who in targets:
        chain = locators(py_file, env_dir)
        chosen = next((c for c in chain if not c["unusable"]), None)
        row: dict[str, Any] = {"for": who, "file": py_file, "chain": chain,
                               "locator": chosen["locator"] if chosen else None,
                               "path": chosen["path"] if chosen else None}
        why_not = why_not_ask_numba(chain) if numba is not None else None
        if numba is not None and why_not is None:
            path, numba_error = _real_locator(numba, py_file, chain)
            row["numba_says"] = numba_error or f"caches in {path}"
            if numba_error:
                row["locator"], row["path"], row["error"] = None, None, numba_error
        elif why_not:
            row["numba_not_asked"] = why_not
        rows.append(row)
    facts.update(import_error=error, cache_dir=env_dir, user_cache_dir=user_cache_dir(),
                 users=users, targets=rows)
    return facts


@probe("numba.cache", title="numba can cache compiled functions (NUMBA_CACHE_DIR, "
       "site-packages, HOME)", isolated=True, families=("M3",), timeout=120,
       collect=collect_cache, component="numba", memo=True, reads_index=True)
def cache(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that numba finds a writable folder for functions compiled with `cache=True`.

    Gates as numba.numpy, but an import error only drops numba's own answer. For installed files
    that use a numba decorator and contain `cache=True` (one per distribution; else numba's
    `__init__.py`), tries numba's locators (NUMBA_CACHE_DIR, the in-tree `__pycache__`,
    ~/.cache/numba) by creating a temporary file or folder there (removed at once), and asks numba
    itself only when the folder it would settle on already exists (numba's locators create their
    folder; any folder it makes anyway is removed again). No usable folder fails when a package uses
    `cache=True`, else warns; a NUMBA_CACHE_DIR numba cannot use warns. The fix exports
    NUMBA_CACHE_DIR=/tmp/numba-cache.
    """
    version = facts.get("numba")
    if version is None:
        return _missing(ctx, "numba")
    error = facts.get("import_error")
    env_dir = facts.get("cache_dir")
    users = list(facts.get("users") or [])
    rows = list(facts.get("targets") or [])
    details: dict[str, Any] = {"numba": version, "NUMBA_CACHE_DIR": env_dir,
                               "user_cache_dir": facts.get("user_cache_dir"), "users": users,
                               "targets": rows}
    if error:
        details["import_error"] = error
    fix = Fix("Point numba's cache at a writable folder (numba creates it), in the image or "
              "the service's environment.",
              commands=(export("NUMBA_CACHE_DIR", CACHE_FIX_DIR),))
    broken = [r for r in rows if r["locator"] is None]
    if broken:
        r = broken[0]
        message = r.get("error") or (
            f"cannot cache function ...: no locator available for file {r['file']!r}")
        reasons = "; ".join(f"{c['locator']}: {c['unusable']}" for c in r["chain"])
        summary = (f"numba cannot cache functions of {r['for']}: {message} ({reasons})")
        if users:
            return fail(summary[:600], fix, **details)
        return warn(("no installed package caches numba functions, but any cache=True "
                     "function would fail: " + summary)[:600], fix, **details)
    if env_dir:
        ignored = [r for r in rows if r["locator"] != "NUMBA_CACHE_DIR"]
        if ignored:
            r = ignored[0]
            why = r["chain"][0]["unusable"]
            return warn(f"NUMBA_CACHE_DIR={env_dir} is not usable ({why}): numba ignores it "
                        f"and caches {r['for']} in {r['path']} ({r['locator']})", fix,
                        **details)
    where = "; ".join(f"{r['for']} -> {r['path']} ({r['locator']})" for r in rows[:3])
    return ok(f"numba can cache compiled functions: {where}", **details)


# --- resampy (the seed's filter names, M4) ---------------------------------------------------


def valid_filters(resampy: Any) -> list[str]:
    """The filter names this resampy accepts: its filter functions and shipped filters."""
    names = set(getattr(resampy.filters, "FILTER_FUNCTIONS", ["sinc_window"]))
    data = os.path.join(os.path.dirname(resampy.__file__), "data")
    try:
        names |= {f[:-4] for f in os.listdir(data) if f.endswith(".npz")}
    except OSError:
        pass
    return sorted(names)


class _FilterLiterals(scan.AliasVisitor):
    """Calls of resampy.resample / resampy.core.resample with a literal `filter=` name."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[tuple[int, str]] = []

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        if name in ("resampy.resample", "resampy.core.resample"):
            for kw in node.keywords:
                if kw.arg == "filter" and isinstance(kw.value, ast.Constant) \
                        and isinstance(kw.value.value, str):
                    self.hits.append((node.lineno, kw.value.value))
        self.generic_visit(node)


def filter_literals() -> list[dict[str, Any]]:
    """Every literal filter name passed to resampy.resample by code the deployment reaches."""
    usages = scan.split_reached(scan.find_usages(RESAMPY_CALLS, exclude=("resampy",)))[0]
    out = []
    seen: set[str] = set()
    for u in usages:
        if u.file in seen:
            continue
        seen.add(u.file)
        try:
            with open(u.file, "rb") as fh:
                tree = ast.parse(fh.read())
        except (OSError, SyntaxError, ValueError):
            continue
        visitor = _FilterLiterals()
        visitor.visit(tree)
        out += [{"distribution": u.distribution, "version": u.version, "file": u.file,
                 "line": line, "filter": value} for line, value in visitor.hits]
    return out


TONE_HZ = 440.0


def _tone(resampy: Any, np: Any) -> dict[str, Any]:
    """Resample a 440 Hz tone 48 kHz -> 24 kHz with kaiser_best and measure what came back:
    its length, whether every sample is finite, and the spectrum's peak (collector side).
    The first call in this process compiles resampy's kernel: its time is the JIT latency."""
    sr_in, sr_out, tone = 48000, 24000, TONE_HZ
    x = np.sin(2 * np.pi * tone * np.arange(sr_in // 4) / sr_in).astype(np.float32)
    t0 = time.perf_counter()
    y = resampy.resample(x, sr_in, sr_out, filter="kaiser_best")
    first = time.perf_counter() - t0
    _FIRST_CALL.setdefault("first_s", first)
    t0 = time.perf_counter()
    resampy.resample(x, sr_in, sr_out, filter="kaiser_best")
    _FIRST_CALL.setdefault("second_s", time.perf_counter() - t0)
    expected = len(x) * sr_out // sr_in
    out: dict[str, Any] = {"length": int(y.shape[-1]), "expected_length": expected}
    if abs(y.shape[-1] - expected) <= 1:
        out["finite"] = bool(np.all(np.isfinite(y)))
        if out["finite"]:
            spectrum = np.abs(np.fft.rfft(y))
            out["peak"] = float(np.argmax(spectrum) * sr_out / len(y))
    return out


def tone_problems(tone: dict[str, Any]) -> list[str]:
    """What is wrong with the resampled tone (`_tone`'s measurements)."""
    length, expected = int(tone["length"]), int(tone["expected_length"])
    if abs(length - expected) > 1:
        return [f"returned {length} samples, expected {expected}"]
    if not tone.get("finite"):
        return ["returned NaN or infinite samples"]
    peak = float(tone["peak"])
    if abs(peak - TONE_HZ) > 8.0:
        return [f"a {TONE_HZ:g} Hz tone came out at {peak:.1f} Hz"]
    return []


def _measured(tone: dict[str, Any]) -> dict[str, Any]:
    """The tone's numbers as the finding reports them."""
    out: dict[str, Any] = {"length": tone["length"], "expected_length": tone["expected_length"]}
    if "peak" in tone:
        out["peak_hz"] = round(float(tone["peak"]), 1)
    return out


def _resampy_facts(ctx: Context) -> tuple[Any, dict[str, Any]]:
    """(resampy imported, or None; what the resampy collectors start from): resampy's
    version, what importing numba raised (with numba's llvmlite requirement, for the fix) or
    what importing resampy raised. Collector side."""
    version = dists.version("resampy")
    facts: dict[str, Any] = {"resampy": version}
    if version is None:
        return None, facts
    _numba, error, _ = _import_numba()
    if error:
        facts.update(numba_error=error, declares_llvmlite=_requirement("numba", "llvmlite"),
                     numpy=dists.version("numpy"))
        return None, facts
    try:
        import resampy
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return None, facts
    return resampy, facts


def _resampy_early(ctx: Context, facts: dict[str, Any]) -> tuple[bool, Optional[Result]]:
    """(whether resampy ran, else what its probes report instead) from `_resampy_facts`."""
    version = facts.get("resampy")
    if version is None:
        return False, _missing(ctx, "resampy")
    error = facts.get("numba_error")
    if error:
        return False, fail(f"resampy {version} cannot run: numba does not import: {error}"
                           [:400], import_fix(error, facts.get("declares_llvmlite"),
                                              facts.get("numpy")),
                           resampy=version, error=error)
    error = facts.get("import_error")
    if error:
        return False, fail(f"resampy {version} does not import: {error}"[:400],
                           Fix("Reinstall resampy.", commands=(dists.pip_install(
                               f"resampy=={version}", extra="--force-reinstall"),)),
                           resampy=version, error=error)
    return True, None


def collect_resampy_filters(ctx: Context) -> dict[str, Any]:
    """numba.resampy-filters' facts: `_resampy_facts`; the filter names this resampy has, every
    literal `filter=` name installed code passes (file, line), what
    `resampy.filters.get_filter` raised for each name it does not list (`get_filter`: None
    when it accepted it), and, when resampy would run, the resampled tone's measurements
    (`tone`, or what resampling raised, `tone_error`) and the first call's time."""
    resampy, facts = _resampy_facts(ctx)
    if resampy is None:
        return facts
    import numpy as np

    valid = valid_filters(resampy)
    literals = filter_literals()
    raised: dict[str, Optional[str]] = {}
    for hit in literals:
        name = hit["filter"]
        if name in valid or name in raised:
            continue
        try:  # confirm with resampy itself: an unknown name raises NotImplementedError
            resampy.filters.get_filter(name)
            raised[name] = None
        except NotImplementedError as exc:
            raised[name] = f"NotImplementedError: {exc}"
        except Exception as exc:
            raised[name] = f"{type(exc).__name__}: {exc}"
    facts.update(valid_filters=valid, literals=literals, get_filter=raised,
                 run=_run_resampy(ctx))
    if facts["run"]:
        try:
            facts["tone"] = _tone(resampy, np)
        except Exception as exc:
            facts["tone_error"] = f"{type(exc).__name__}: {exc}"
    if "first_s" in _FIRST_CALL:
        facts["first_s"] = _FIRST_CALL["first_s"]
    return facts


@probe("numba.resampy-filters", title="resampy's filter names: installed code passes only "
       "valid ones, and a valid one resamples a tone correctly", isolated=True, timeout=120,
       collect=collect_resampy_filters, component="resampy", memo=True, reads_index=True)
def resampy_filters(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that installed code passes resampy only filter names it has, and that resampy works.

    No finding when the recipe marks resampy absent; not installed: `skip`, or `fail` when required;
    numba or resampy failing to import fails. Collects literal `filter=` names in installed calls of
    resampy.resample (AST) and confirms unknown ones with `resampy.filters.get_filter`; when resampy
    would run (see numba.jit), resamples a 440 Hz tone 48 -> 24 kHz with kaiser_best and checks
    length, finite samples and peak. An invalid name or a bad tone fails, otherwise `ok`; the fix is
    the `resample` shim, or a resampy reinstall.
    """
    ran, early = _resampy_early(ctx, facts)
    if not ran:
        return early
    version = facts["resampy"]
    valid = list(facts.get("valid_filters") or [])
    literals = list(facts.get("literals") or [])
    raised = dict(facts.get("get_filter") or {})
    invalid = [{**hit, "raises": raised[hit["filter"]]} for hit in literals
               if hit["filter"] not in valid and raised.get(hit["filter"]) is not None]
    if facts.get("run"):
        if facts.get("tone_error"):
            problems, measured = [f"raised {facts['tone_error']}"], {}
        else:
            problems, measured = tone_problems(facts["tone"]), _measured(facts["tone"])
        tone = "a 440 Hz tone resamples 48 -> 24 kHz correctly with kaiser_best"
    else:
        problems, measured = [], {"tone_check": "not run: no installed code calls resampy "
                                                "(--set numba.resampy=run runs it)"}
        tone = "its filters load (nothing installed calls it, so it was not run)"
    details: dict[str, Any] = {"resampy": version, "valid_filters": valid,
                               "calls_with_literal_filter": literals[:20], "invalid": invalid,
                               **measured}
    if "first_s" in facts:
        details["first_call_s"] = round(float(facts["first_s"]), 3)
    if invalid:
        where = "; ".join(f"{i['distribution']} {i['file']}:{i['line']} filter={i['filter']!r}"
                          for i in invalid[:3])
        fix = Fix("resampy.resample raises NotImplementedError for these names, and code that "
                  "catches it hands back the input at the wrong sample rate. Pass a valid name "
                  f"({', '.join(valid)}), or call the doctor's resampler from code, "
                  "`from tts_doctor.shims.resample import resample; resample(x, orig_sr, "
                  "target_sr, quality='hq')`, which accepts only valid names and raises on the "
                  "rest (a code change: no shim is installed for it).")
        return fail(f"installed code passes filter names resampy {version} does not have: "
                    f"{where}", fix, **details)
    if problems:
        fix = Fix("resampy.resample does not resample correctly here: reinstall resampy (and "
                  "numba), or resample through the doctor's shim (soxr/polyphase backends).",
                  shim="resample",
                  commands=(dists.pip_install(f"resampy=={version}", extra="--force-reinstall"),))
        return fail(f"resampy {version} is broken: " + "; ".join(problems), fix, **details)
    return ok(f"resampy {version}: {tone}; {len(literals)} literal filter name(s) in "
              "installed code, all valid", **details)


def jit_budget(value: Any) -> tuple[float, Optional[str]]:
    """The first-call budget in seconds from `--set numba.jit-budget`, and a note when the
    value is not a positive number of seconds: then the default is used and the note says so
    (a typo in an option is not a reason to lose the verdict)."""
    import math

    if value is None or str(value).strip() == "":
        return JIT_BUDGET_S, None
    try:
        budget = float(str(value).strip())
    except ValueError:
        budget = float("nan")
    if not math.isfinite(budget) or budget <= 0:
        return JIT_BUDGET_S, (f"--set numba.jit-budget={value} is not a positive number of "
                              f"seconds: the default budget of {JIT_BUDGET_S:g} s was used")
    return budget, None


def collect_warmup(ctx: Context) -> dict[str, Any]:
    """numba.warmup's facts: `_resampy_facts`; whether resampy would run, and then the first
    and second call's times in this worker (resampling a tone if no probe has yet) or what
    resampling raised; numba's version; resampy's dispatchers with their cache (kind, on disk,
    hits, path)."""
    resampy, facts = _resampy_facts(ctx)
    if resampy is None:
        return facts
    # a first call's latency and numba's disk cache change with every run (tts_doctor.memo)
    footprint.volatile("a first call's latency")
    import numpy as np

    facts["numba"] = dists.version("numba")
    facts["run"] = _run_resampy(ctx)
    if facts["run"] and "first_s" not in _FIRST_CALL:
        try:
            _tone(resampy, np)
        except Exception as exc:
            facts["tone_error"] = f"{type(exc).__name__}: {exc}"
            return facts
    kernels = []
    for name in ("_resample_loop_s", "_resample_loop_p"):
        d = getattr(getattr(resampy, "interpn", None), name, None)
        if d is None:
            continue
        cache = getattr(d, "_cache", None)
        stats = getattr(d, "stats", None)
        hits = getattr(stats, "cache_hits", None) or {}
        kernels.append({"kernel": name, "cache": type(cache).__name__,
                        "on_disk": type(cache).__name__ not in ("NullCache", "NoneType"),
                        "cache_hits": int(sum(hits.values())),
                        "cache_path": str(getattr(cache, "cache_path", "") or "") or None})
    facts["kernels"] = kernels
    if facts["run"]:
        facts["first_s"] = _FIRST_CALL["first_s"]
        facts["second_s"] = _FIRST_CALL.get("second_s", 0.0)
    return facts


@probe("numba.warmup", title="First-call JIT latency of resampy, and whether numba caches its "
       "kernels on disk", isolated=True, families=("M4",), timeout=120,
       collect=collect_warmup, component="resampy", memo=True, reads_index=True)
def warmup(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Measures resampy's first-call JIT latency, and whether numba keeps its kernels on disk.

    Gates as numba.resampy-filters, whose failures are a `skip` here. Inspects resampy's
    `_resample_loop_s` / `_resample_loop_p` dispatchers for an on-disk cache and cache hits. When
    resampy would not run (see numba.jit): `ok`, not measured. Otherwise the first call's time is
    compared with the budget (`--set numba.jit-budget`, 1 s by default; a value that is not a
    positive number of seconds falls back to the default, with a note in the summary and details):
    over it and not loaded from disk warns, else `ok`. The fix bakes a warmed NUMBA_CACHE_DIR into
    the image, or, for kernels numba cannot cache, warms up at service start-up or uses the
    `resample` shim.
    """
    ran, early = _resampy_early(ctx, facts)
    if not ran:
        if early is not None and early.status.value == "fail":
            return skip(f"resampy cannot run here ({early.summary}); "
                        "numba.resampy-filters reports it", **early.details)
        return early
    version = facts["resampy"]
    if facts.get("tone_error"):
        return skip(f"resampy {version} fails before its latency can be measured: "
                    f"{facts['tone_error']}; numba.resampy-filters reports it")
    kernels = list(facts.get("kernels") or [])
    cacheable = any(k["on_disk"] for k in kernels)
    if not facts.get("run"):
        how = ("numba keeps them in its on-disk cache" if cacheable else
               "they are compiled without cache=True, so every process that resamples pays "
               "a JIT compile on its first call (about 0.5 s, REFERENCE.md)")
        return ok(f"resampy {version} is installed but nothing installed calls it, so its "
                  f"first-call latency was not measured (--set numba.resampy=run); {how}",
                  resampy=version, kernels=kernels, cacheable=cacheable, measured=False)
    first, second = float(facts["first_s"]), float(facts.get("second_s") or 0.0)
    from_disk = any(k["cache_hits"] for k in kernels)
    budget, budget_note = jit_budget(ctx.options.get("numba.jit-budget"))
    details: dict[str, Any] = {"resampy": version, "numba": facts.get("numba"),
                               "first_call_s": round(first, 3),
                               "later_call_s": round(second, 4), "budget_s": budget,
                               "kernels": kernels, "cacheable": cacheable,
                               "loaded_from_disk": from_disk}
    numbers = (f"the first resampy.resample in a process took {first:.2f} s (JIT compile), "
               f"the next {second * 1000:.1f} ms")
    if budget_note:
        details["budget_note"] = budget_note
        numbers += f" ({budget_note})"
    if cacheable:
        where = "loaded from numba's on-disk cache" if from_disk else \
            "compiled: no on-disk cache yet"
        fix = Fix("Compile once while building the image and keep numba's cache in it: set "
                  "NUMBA_CACHE_DIR to a folder baked into the image and run one resample "
                  "there during the build (and at service start-up).",
                  commands=steps(export("NUMBA_CACHE_DIR", "/opt/numba-cache"),
                                 f"{dists.python()} -c \"{WARM_UP}\""))
    else:
        where = (f"resampy {version} compiles its kernels without cache=True, so numba cannot "
                 "keep them on disk: every new process pays this")
        fix = Fix("resampy's kernels cannot be cached on disk: warm them up once at service "
                  "start-up (not per request), or resample with soxr through the doctor's "
                  "shim (no JIT).", shim="resample",
                  commands=(f"{dists.python()} -c \"{WARM_UP}\"",))
    if first > budget and not from_disk:
        return warn(f"{numbers}; {where}", fix, **details)
    return ok(f"{numbers}; {where}", **details)
