"""SciPy: the names its releases removed (and who still uses them), and signal.resample.

The catalogue of removed names was measured, not copied from release notes: `dir()` of each
public SciPy module was compared across SciPy 1.12.0, 1.13.1, 1.14.1, 1.15.3, 1.16.2 and
1.17.1 (the same interpreter, numpy 1.26 / 2.4). Older removals that audio code still trips on
(`hanning` 1.9, `misc.imread` 1.2, `misc.imresize` 1.3...) come from the SciPy release notes.

A missing name breaks only the code that uses it, so the verdict names the installed
distributions that still use one (doctor.scan: AST, cached per distribution), with file and
line. Uses guarded by `try/except ImportError|AttributeError` or `hasattr()` are reported
apart: they already fall back to the new name.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Optional

from tts_doctor import dists, upgrades
from tts_doctor.applicability import not_installed
from tts_doctor.finding import Fix, Result, fail, manual, ok, steps, warn
from tts_doctor.registry import Context, probe
from tts_doctor.scan import guarded

SHIM_MARK = "__tts_doctor_shim__"


@dataclass(frozen=True)
class Removed:
    """A public SciPy name that a release removed, and where its replacement lives."""

    module: str
    name: str
    removed_in: str
    home: str
    # the scipy_names shim restores it (a forward to a home with the same arguments); kept in
    # step with shims/scipy_names.py, whose verdict the probe re-checks by the shim's mark
    forward: bool = True
    raises: bool = False  # the name stays but raises when called (interp2d)

    @property
    def key(self) -> str:
        return f"{self.module}.{self.name}"


_WINDOWS = ("barthann", "bartlett", "blackman", "blackmanharris", "bohman", "boxcar",
            "chebwin", "cosine", "exponential", "flattop", "gaussian", "general_gaussian",
            "hamming", "hann", "kaiser", "nuttall", "parzen", "triang", "tukey")

REMOVED: tuple[Removed, ...] = (
    # scipy.signal: the window functions left the scipy.signal namespace in 1.13 (1.12.0 has
    # them, 1.13.1 does not); they live on in scipy.signal.windows. hanning went in 1.9.
    *(Removed("scipy.signal", w, "1.13", f"scipy.signal.windows.{w}") for w in _WINDOWS),
    Removed("scipy.signal", "hanning", "1.9", "scipy.signal.windows.hann"),
    Removed("scipy.signal", "bspline", "1.13", "scipy.interpolate.BSpline", forward=False),
    Removed("scipy.signal", "cubic", "1.13", "scipy.interpolate.BSpline", forward=False),
    Removed("scipy.signal", "quadratic", "1.13", "scipy.interpolate.BSpline", forward=False),
    Removed("scipy.signal", "lsim2", "1.13", "scipy.signal.lsim"),
    Removed("scipy.signal", "impulse2", "1.13", "scipy.signal.impulse"),
    Removed("scipy.signal", "step2", "1.13", "scipy.signal.step"),
    # wavelets: 1.14.1 has them, 1.15.3 does not
    *(Removed("scipy.signal", w, "1.15", "PyWavelets (pywt)", forward=False)
      for w in ("cwt", "ricker", "morlet", "morlet2", "cascade", "daub", "qmf")),
    # scipy.integrate: simps/trapz/cumtrapz gone in 1.14, romberg/quadrature in 1.15
    Removed("scipy.integrate", "simps", "1.14", "scipy.integrate.simpson"),
    Removed("scipy.integrate", "trapz", "1.14", "scipy.integrate.trapezoid"),
    Removed("scipy.integrate", "cumtrapz", "1.14", "scipy.integrate.cumulative_trapezoid"),
    Removed("scipy.integrate", "romberg", "1.15", "scipy.integrate.quad", forward=False),
    Removed("scipy.integrate", "quadrature", "1.15", "scipy.integrate.quad", forward=False),
    # interp2d stays importable but raises NotImplementedError from 1.14 on: judged by a call
    Removed("scipy.interpolate", "interp2d", "1.14",
            "scipy.interpolate.RegularGridInterpolator", forward=False, raises=True),
    # scipy.misc: emptied in 1.15 (the module itself is a stub); image helpers went long ago
    Removed("scipy.misc", "derivative", "1.15", "scipy.differentiate.derivative",
            forward=False),
    Removed("scipy.misc", "central_diff_weights", "1.15", "findiff", forward=False),
    Removed("scipy.misc", "ascent", "1.15", "scipy.datasets.ascent", forward=False),
    Removed("scipy.misc", "face", "1.15", "scipy.datasets.face", forward=False),
    Removed("scipy.misc", "electrocardiogram", "1.15", "scipy.datasets.electrocardiogram",
            forward=False),
    Removed("scipy.misc", "imread", "1.2", "imageio.imread", forward=False),
    Removed("scipy.misc", "imsave", "1.2", "imageio.imwrite", forward=False),
    Removed("scipy.misc", "imresize", "1.3", "PIL.Image.resize", forward=False),
    Removed("scipy.misc", "logsumexp", "1.3", "scipy.special.logsumexp", forward=False),
    Removed("scipy.misc", "comb", "1.3", "scipy.special.comb", forward=False),
    Removed("scipy.misc", "factorial", "1.3", "scipy.special.factorial", forward=False),
    # scipy.special / linalg / stats
    Removed("scipy.special", "btdtr", "1.15", "scipy.special.betainc", forward=False),
    Removed("scipy.special", "btdtri", "1.15", "scipy.special.betaincinv", forward=False),
    Removed("scipy.special", "sph_harm", "1.17", "scipy.special.sph_harm_y", forward=False),
    Removed("scipy.special", "lpmn", "1.17", "scipy.special.assoc_legendre_p_all",
            forward=False),
    Removed("scipy.special", "clpmn", "1.17", "scipy.special.assoc_legendre_p_all",
            forward=False),
    Removed("scipy.special", "lpn", "1.17", "scipy.special.legendre_p_all", forward=False),
    Removed("scipy.linalg", "tri", "1.13", "numpy.tri"),
    Removed("scipy.linalg", "tril", "1.13", "numpy.tril"),
    Removed("scipy.linalg", "triu", "1.13", "numpy.triu"),
    Removed("scipy.linalg", "kron", "1.17", "numpy.kron"),
    Removed("scipy.stats", "trapz", "1.16", "scipy.stats.trapezoid"),
    Removed("scipy.stats", "find_repeats", "1.17", "numpy.unique(return_counts=True)",
            forward=False),
    Removed("scipy.stats", "rvs_ratio_uniforms", "1.15",
            "scipy.stats.sampling.RatioUniforms", forward=False),
)

# Releases of known users that no longer use a removed name without a guard (each checked by
# scanning the released wheel or sdist with doctor.scan): librosa 0.10.1 still calls
# scipy.signal.hann in beat.py, 0.10.2 does not (librosa#1830); resampy 0.2.2 uses
# scipy.signal.blackmanharris, 0.3.1 does not (resampy#121); pyroomacoustics 0.7.3 imports
# scipy.signal.hann unguarded, 0.7.4 guards it (pyroomacoustics#342).
FIXED_IN: dict[str, str] = {"librosa": "0.10.2", "resampy": "0.3.1", "pyroomacoustics": "0.7.4"}

RESAMPLE = ("scipy.signal", "resample")


def _patterns() -> list[Any]:
    """One pattern list for both SciPy probes: the scan cache key covers the patterns, so the
    second probe reads what the first one cached."""
    from tts_doctor.scan import Pattern

    return [Pattern(r.module, r.name) for r in REMOVED] + [Pattern(*RESAMPLE)]


_USAGES: dict[Any, list[Any]] = {}


def _declare() -> None:
    """Both SciPy probes' names join the run's one scan pass (doctor/usage.py)."""
    from tts_doctor import scan

    scan.watch("scipy", _patterns(), exclude=("scipy",))


def _usages() -> tuple[list[Any], float]:
    """Uses of the catalogued names in installed distributions (SciPy itself excluded);
    both probes of a run share one scan (keyed by what is installed)."""
    from tts_doctor import scan

    t0 = time.perf_counter()
    key = tuple(sorted((k, d.version) for k, d in dists.all_distributions().items()))
    if key not in _USAGES:
        _USAGES.clear()
        _USAGES[key] = scan.find_usages(_patterns(), exclude=("scipy",))
    return _USAGES[key], time.perf_counter() - t0


_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv",
              "site-packages", ".tox", ".mypy_cache", "build", "dist"}
_MAX_USER_FILES = 20000


def _user_usages(paths: str) -> list[dict[str, Any]]:
    """Uses in the user's own code (`--set scipy.paths=src:scripts`), not installed as a
    distribution: the place a removed name most often hides."""
    from tts_doctor.scan import scan_source

    patterns = _patterns()
    out: list[dict[str, Any]] = []
    seen = 0
    for root in filter(None, paths.split(os.pathsep)):
        files = [root] if root.endswith(".py") else []
        if not files:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
                files += [os.path.join(dirpath, f) for f in filenames if f.endswith(".py")]
        for path in files:
            seen += 1
            if seen > _MAX_USER_FILES:
                return out
            try:
                with open(path, "rb") as fh:
                    source = fh.read()
            except OSError:
                continue
            for line, dotted in scan_source(source, patterns):
                out.append({"distribution": "(your code)", "version": "", "file": path,
                            "line": line, "name": dotted})
    return out


# --- presence -----------------------------------------------------------------------------

def _state(entry: Removed, modules: dict[str, Any]) -> str:
    """'present', 'deprecated', 'absent', 'raises' (interp2d) or 'shimmed'."""
    import importlib
    import warnings

    if entry.module not in modules:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                modules[entry.module] = importlib.import_module(entry.module)
        except Exception:
            modules[entry.module] = None
    mod = modules[entry.module]
    if mod is None:
        return "absent"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            obj = getattr(mod, entry.name)
        except Exception:  # AttributeError, or a module __getattr__ that raises another
            return "absent"
    if getattr(obj, SHIM_MARK, None):
        return "shimmed"
    deprecated = any(issubclass(w.category, DeprecationWarning) for w in caught)
    if entry.raises:
        import numpy as np

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                obj([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], np.zeros((3, 3)))
            except NotImplementedError:
                return "raises"
            except Exception:
                pass  # some other complaint about the arguments: it is still there
        deprecated = deprecated or any(issubclass(w.category, DeprecationWarning)
                                       for w in caught)
    return "deprecated" if deprecated else "present"


def _relative(usage: Any) -> str:
    """`librosa/beat.py:516` for an installed distribution; the full path for editable
    code, modules no distribution owns and the application folder."""
    if getattr(usage, "origin", "distribution") != "distribution":
        return f"{usage.file}:{usage.line}"
    dist = dists.distribution(usage.distribution) if usage.version else None
    path = usage.file
    if dist is not None:
        try:
            root = str(dist.locate_file(""))
            path = os.path.relpath(usage.file, root)
        except (ValueError, TypeError):
            pass
    return f"{path}:{usage.line}"


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version, by `packaging` ('1.13' -> (1, 13)); () when it does
    not parse. Judges only: they run in the doctor's process, where packaging is."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return ()


def _pin(names: list[Removed], numpy: Optional[str]) -> tuple[Optional[str], str]:
    """The SciPy pin that keeps every name in `names`, and a note when it cannot install
    (`numpy`: the installed NumPy version; the interpreter is the recorded target's)."""
    bound = min((r.removed_in for r in names), key=_release)
    reqs = [f"scipy<{bound}"]
    major_minor = _release(bound)
    if major_minor <= (1, 13):
        have = _release(numpy) if numpy else ()
        if have and have[0] >= 2:
            reqs.append("numpy<2")  # SciPy < 1.13 was built against NumPy 1.x
    from tts_doctor import target

    py = target.current().version_info
    if major_minor <= (1, 14) and tuple(py[:2]) >= (3, 13):
        return None, (f" (a pin to scipy<{bound} is not possible on Python "
                      f"{py[0]}.{py[1]}: no such wheel)")
    return dists.pip_install(*reqs), ""


def _not_installed(ctx: Context) -> Result:
    # 'shim' counts as required for scipy (applicability.SHIM_NEEDS_IT): the shims forward to it
    return not_installed(ctx, "scipy", Fix("Install SciPy.",
                                           commands=(dists.pip_install("scipy"),)))


def _import_failure(version: str, error: str, what: str = "import scipy") -> Result:
    """A SciPy that is installed but does not import: the verdict, with a reinstall of the same
    version together with its requirements (a missing or mismatched numpy is the usual cause,
    and pip then installs the numpy that SciPy release declares)."""
    fix = Fix(f"SciPy {version} is installed but `{what}` fails: reinstall it with its "
              "requirements (numpy) so that pip puts back the NumPy it was built for.",
              commands=(dists.pip_install(f"scipy=={version}", extra="--force-reinstall"),))
    return fail(f"scipy {version} is installed but `{what}` fails: {error}"[:400], fix,
                scipy=version, error=error[:1000])


def _installed(ctx: Context) -> Optional[dict[str, Any]]:
    """The facts every SciPy collector starts with: the installed version (None: not
    installed). (A recipe that marks SciPy absent never gets here: applicability.)"""
    return {"version": dists.version("scipy")}


def _uses(usages: list[Any], resample: bool) -> list[dict[str, Any]]:
    """The uses of catalogued names in installed code (those of scipy.signal.resample, or all
    the others), each with its file, line, `where` (relative to its distribution), guarded,
    reached and origin."""
    key = ".".join(RESAMPLE)
    return [dict(u.to_dict(), where=_relative(u)) for u in usages if (u.key == key) == resample]


def collect_removed_names(ctx: Context) -> dict[str, Any]:
    """What this SciPy has of each catalogued name, and who uses them.

    The installed version, what `import scipy` raised, the version SciPy reports, each name's
    state ('present', 'deprecated', 'absent', 'raises' for interp2d, 'shimmed'), the NumPy
    beside it, every use of a catalogued name in installed code (the run's usage index) and
    in `--set scipy.paths` (file, line, guarded, reached), and what the index knows about the
    code the deployment reaches (its entry modules)."""
    facts = _installed(ctx)
    if facts is None or facts["version"] is None:
        return facts or {}
    try:
        import scipy
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    modules: dict[str, Any] = {}
    facts["runtime"] = str(scipy.__version__)
    facts["states"] = {r.key: _state(r, modules) for r in REMOVED}
    facts["numpy"] = dists.version("numpy")
    from tts_doctor import scan

    usages, scan_s = _usages()
    every = _uses(usages, resample=False)
    user_paths = str(ctx.options.get("scipy.paths") or "")
    if user_paths:
        for u in _user_usages(user_paths):
            if u["name"] != ".".join(RESAMPLE):
                every.append(dict(u, where=f"{u['file']}:{u['line']}",
                                  guarded=guarded(u["file"], u["line"]), reached=True))
    facts.update(usages=every, user_paths=user_paths, scan_s=round(scan_s, 3),
                 scanned_distributions=len(dists.all_distributions()),
                 reach=scan.reach_facts())
    return facts


@probe("scipy.removed-names", title="Names SciPy removed, and which installed packages use them",
       memo=True, reads_index=True,
       isolated=True, families=("S1", "S2", "S3"), timeout=120, collect=collect_removed_names,
       component="scipy")
def removed_names(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks installed code for SciPy names this SciPy lacks, or a later release removed.

    No finding when the recipe marks scipy absent; not installed: `skip`, or `fail` when the recipe
    requires it or asks for its shim; `import scipy` failing fails, with a reinstall of that version
    and its requirements. Imports scipy in the worker, marks each catalogued name present,
    deprecated, absent, raising (interp2d) or shimmed, and scans installed distributions (and
    `--set scipy.paths`) for uses, guarded ones apart. An unguarded use of a missing name fails, of
    a name a later release removed warns; otherwise `ok`. The fix: the `scipy_names` shim when every
    name has a forward, releases of the users that fixed it, or a pin below the release that
    removed them. Only code the deployment reaches is judged (docs/reachability.md); uses
    outside it are listed in `details.unreached`, and without any entry point a use in installed
    code is at most a warning.
    """
    from tts_doctor import scan

    version = facts.get("version")
    if version is None:
        return _not_installed(ctx)
    if facts.get("import_error"):
        return _import_failure(version, facts["import_error"])

    runtime = str(facts["runtime"])
    by_key = {r.key: r for r in REMOVED}
    states = {k: s for k, s in (facts.get("states") or {}).items() if k in by_key}
    reach = dict(facts.get("reach") or {})
    entries = list(reach.get("entries") or [])
    user_paths = str(facts.get("user_paths") or "")
    every = list(facts.get("usages") or [])
    # only the code the deployment reaches is judged; the rest is listed (doctor/usage.py)
    uses, outside = scan.split_reached(every)
    unreached = scan.unreached_note(outside, entries)
    missing = sorted(k for k, s in states.items() if s in ("absent", "raises"))
    shimmed = sorted(k for k, s in states.items() if s == "shimmed")
    deprecated = sorted(k for k, s in states.items() if s == "deprecated")
    # present here, but a later release removed it: the code breaks on the next upgrade
    have = _release(runtime)
    later = sorted(k for k, s in states.items() if s in ("present", "deprecated")
                   and _release(by_key[k].removed_in) > have[:2])
    breaking = [u for u in uses if u["name"] in missing and not u["guarded"]]
    doomed = [u for u in uses if u["name"] in later and not u["guarded"]]
    guarded_uses = [u for u in uses if u["guarded"]]
    details: dict[str, Any] = {
        "scipy": runtime, "missing": missing, "shimmed": shimmed, "deprecated": deprecated,
        "removed_later": later,
        "present": sum(1 for s in states.values() if s == "present"),
        "scan_s": facts.get("scan_s", 0.0),
        "scanned_distributions": facts.get("scanned_distributions", 0),
        "users": [_brief(u) for u in breaking + doomed][:50],
        "guarded_users": [_brief(u) for u in guarded_uses][:20],
        "unreached_users": [_brief(u) for u in outside][:20],
        "reach": _reach_brief(reach),
    }
    if unreached:
        details["unreached"] = unreached
    if user_paths:
        details["scanned_paths"] = user_paths.split(os.pathsep)
    if breaking or doomed:
        bad = breaking or doomed
        names = sorted({u["name"] for u in bad})
        removed = [by_key[n] for n in names]
        packages = _group(bad)
        what = "; ".join(f"{pkg} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
                         for pkg, items in packages.items())
        fix = _names_fix(bad, removed, facts.get("numpy"))
        if breaking:
            # no entry point known: a use in installed code may never run, so at most a warn
            report = fail if reach.get("known") or any(
                u.get("origin") in ("editable", "project") or "origin" not in u
                for u in breaking) else warn
            note = f" ({scan.NO_ENTRY_NOTE})" if report is warn else ""
            return report(f"SciPy {runtime} lacks {len(names)} name(s) that installed code "
                          f"uses: {what}"[:600] + note, fix, **details)
        first = min((by_key[n].removed_in for n in names), key=_release)
        return warn(f"SciPy {runtime} still has name(s) that installed code uses, but SciPy "
                    f"{first} removed them: upgrading SciPy breaks {what}"[:600], fix,
                    **details)
    if shimmed:
        used = sorted({u["name"] for u in uses if u["name"] in shimmed})
        tail = f"; used by installed code: {', '.join(used)}" if used else ""
        return ok(f"SciPy {runtime}: {len(shimmed)} removed name(s) restored by the "
                  f"tts-doctor shim (shimmed){tail}", **details)
    tail = ""
    if guarded_uses:
        tail = f"; {len(guarded_uses)} guarded use(s) fall back to the new names"
    if unreached:
        tail += f"; {unreached}"
    if missing:
        return ok(f"SciPy {runtime}: {len(missing)} removed names are absent, none used by the "
                  f"code the deployment reaches ({details['scanned_distributions']} installed "
                  f"distributions){tail}",
                  **details)
    return ok(f"SciPy {runtime} still has every catalogued name ({details['present']} present, "
              f"{len(deprecated)} deprecated, none used){tail}", **details)


def _reach_brief(reach: dict[str, Any]) -> dict[str, Any]:
    """What the report says about the closure the verdict judged."""
    keys = ("known", "entries", "failed", "reached_files", "why", "unparsed", "unparsed_count")
    return {k: reach[k] for k in keys if k in reach}


def _brief(u: dict[str, Any]) -> dict[str, Any]:
    return {"distribution": u["distribution"], "version": u["version"], "where": u["where"],
            "name": u["name"]}


def _group(uses: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for u in uses:
        label = f"{u['distribution']} {u['version']}".strip()
        out.setdefault(label, []).append(f"{u['name']} at {u['where']}")
    return out


def _names_fix(uses: list[dict[str, Any]], entries: list[Removed], numpy: Optional[str]) -> Fix:
    # SciPy never brings a removed name back: the upgrades are of its users, where a release
    # that stopped using the name is known (FIXED_IN); the rest get a shim, a pin or a patch
    # (a user whose version is unknown is never called older)
    users = upgrades.plan(upgrades.upgrade(u["distribution"], u["version"] or "", FIXED_IN)
                          for u in uses)
    commands = list(users.commands)
    unfixed = bool(users.unfixed)
    forwardable = all(e.forward for e in entries)
    homes = ", ".join(f"{e.key} -> {e.home}" for e in entries[:6])
    parts = []
    if forwardable:
        parts.append("Restore the removed names as forwards to their new homes (the "
                     "scipy_names shim)")
    else:
        parts.append("Some of these names have no drop-in replacement, so no shim can restore "
                     "them; move the code to the new API")
    parts.append(users.words())
    pin_note = ""
    pinned: tuple[str, ...] = ()
    if unfixed or not forwardable:
        pin, pin_note = _pin(entries, numpy)
        if pin:
            pinned = (pin,)
            parts.append("or pin SciPy below the release that removed them")
    return Fix(", ".join(parts) + f". New homes: {homes}.{pin_note}",
               shim="scipy_names" if forwardable else None,
               commands=(steps(*commands), *pinned))


# --- resample -----------------------------------------------------------------------------

def _first_prime_at_least(n: int) -> int:
    def is_prime(k: int) -> bool:
        if k < 2 or k % 2 == 0:
            return k == 2
        f = 3
        while f * f <= k:
            if k % f == 0:
                return False
            f += 2
        return True

    while not is_prime(n):
        n += 1
    return n


def _best(fn: Any, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


SR_IN, SR_OUT, TONE = 48000, 24000, 440.0
FAST_N = 48000


def collect_resample(ctx: Context) -> dict[str, Any]:
    """What scipy.signal.resample does with a 1 s 440 Hz tone at 48 kHz resampled to 24 kHz
    (what it raised, the shape it returned, whether every sample is finite, the spectrum's
    peak and the level ratio), whether it is the tts-doctor shim, and (when the tone came back
    whole) how long a 48000-sample input takes against the next prime length, or what that
    raised; then the installed code that calls it (file, line, reached) and soxr's version."""
    facts = _installed(ctx)
    if facts is None or facts["version"] is None:
        return facts or {}
    try:  # SciPy imports NumPy first: a NumPy that fails is scipy.signal failing too
        import numpy as np
        import scipy.fft
        import scipy.signal
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts

    fn = scipy.signal.resample
    shim = getattr(fn, SHIM_MARK, None)
    facts["shim"] = shim if shim is None or isinstance(shim, (str, int, float, bool)) \
        else str(shim)
    t = np.arange(SR_IN) / SR_IN
    x = np.sin(2 * np.pi * TONE * t)
    try:
        y = np.asarray(fn(x, SR_OUT))
    except Exception as exc:
        facts["tone_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    facts["length"] = int(y.shape[-1]) if y.ndim else 0
    facts["shape"] = [int(n) for n in y.shape]
    facts["finite"] = bool(np.all(np.isfinite(y))) if y.shape == (SR_OUT,) else None
    if not facts["finite"]:
        return facts
    spectrum = np.abs(np.fft.rfft(y))
    facts["peak_hz"] = float(np.argmax(spectrum) * SR_OUT / len(y))
    facts["rms_ratio"] = float(np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(x ** 2)))

    # scipy#9273: the FFT method is slow for lengths with a large prime factor
    prime_n = _first_prime_at_least(FAST_N)
    xf = np.sin(2 * np.pi * TONE * np.arange(FAST_N) / SR_IN)
    xp = np.sin(2 * np.pi * TONE * np.arange(prime_n) / SR_IN)
    facts.update(fast_length=FAST_N, prime_length=prime_n,
                 next_fast_len=int(scipy.fft.next_fast_len(prime_n)),
                 soxr=dists.version("soxr"))
    try:
        fn(xp, prime_n // 2)  # warm-up (plans, caches)
        facts["fast_s"] = _best(lambda: fn(xf, FAST_N // 2))
        facts["prime_s"] = _best(lambda: fn(xp, prime_n // 2))
    except Exception as exc:
        facts["length_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    if shim:
        return facts
    from tts_doctor import scan

    usages, _ = _usages()
    facts["usages"] = _uses(usages, resample=True)
    facts["reach"] = scan.reach_facts()
    return facts


@probe("scipy.resample", title="scipy.signal.resample on a real tone, and its slow lengths",
       memo=True,
       reads_index=True, isolated=True, families=("S5",), timeout=120, collect=collect_resample,
       component="scipy")
def resample(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that scipy.signal.resample resamples a tone correctly, and times its slow lengths.

    No finding when the recipe marks scipy absent; not installed: `skip`, or `fail` when the recipe
    requires it or asks for its shim; `import scipy.signal` failing fails, with a reinstall of that
    version and its requirements. Resamples a 1 s 440 Hz tone 48 -> 24 kHz: a wrong shape,
    non-finite samples, a shifted peak or a changed level fails (fix: the `resample` shim or a SciPy
    reinstall). Then times a 48000-sample input against the next prime length: a raise fails (warns
    when the shim is installed). Shimmed: `ok`; when installed code calls scipy.signal.resample it
    warns with the slowdown (fix: the `resample` shim, soxr, resample_poly); otherwise `ok`.
    """
    version = facts.get("version")
    if version is None:
        return _not_installed(ctx)
    if facts.get("import_error"):
        return _import_failure(version, facts["import_error"], "import scipy.signal")

    shim = facts.get("shim")
    problems: list[str] = []
    measured: dict[str, Any] = {}
    if facts.get("tone_error"):
        problems.append(f"raised {facts['tone_error']}"[:200])
    else:
        measured["length"] = facts.get("length")
        shape = tuple(facts.get("shape") or ())
        if shape != (SR_OUT,):
            problems.append(f"returned shape {shape}, expected ({SR_OUT},)")
        elif not facts.get("finite"):
            problems.append("returned NaN or infinite samples")
        else:
            peak, rms_ratio = float(facts["peak_hz"]), float(facts["rms_ratio"])
            measured.update(peak_hz=round(peak, 2), rms_ratio=round(rms_ratio, 4))
            if abs(peak - TONE) > 2.0:
                problems.append(f"a {TONE:g} Hz tone came out at {peak:.1f} Hz")
            if abs(rms_ratio - 1.0) > 0.05:
                problems.append(f"the tone's level changed by {100 * (rms_ratio - 1):+.1f}%")
    details: dict[str, Any] = {"scipy": version, "shim": shim, **measured}
    if problems:
        fix = Fix("scipy.signal.resample does not resample correctly here: reinstall SciPy, "
                  "or route resampling through the tts-doctor shim (soxr/polyphase).",
                  shim="resample",
                  commands=(dists.pip_install(f"scipy=={version}",
                                              extra="--force-reinstall --no-deps"),))
        return fail("scipy.signal.resample is broken: " + "; ".join(problems), fix, **details)

    fast_n, prime_n = int(facts["fast_length"]), int(facts["prime_length"])
    details.update(fast_length=fast_n, prime_length=prime_n,
                   next_fast_len=facts["next_fast_len"])
    if facts.get("length_error"):
        # SciPy's own FFT method takes any length; a replacement that refuses one breaks
        # code that worked (slowly) before
        error = str(facts["length_error"])[:300]
        details["error"] = error
        who = f"the tts-doctor shim ({shim})" if shim else "scipy.signal.resample"
        commands = (dists.pip_install("soxr"),) if shim and not facts.get("soxr") else ()
        fix = Fix("Install soxr so that the resample shim handles every rate ratio, or remove "
                  "the shim (tts-doctor shims uninstall resample)." if shim else
                  "Reinstall SciPy.", shim=None,
                  commands=commands or ((manual("tts-doctor", "shims", "uninstall",
                                                "resample", "--python", dists.executable()),)
                                        if shim else
                                        (dists.pip_install(f"scipy=={version}",
                                                           extra="--force-reinstall "
                                                           "--no-deps"),)))
        verdict = warn if shim else fail
        return verdict(f"{who} resamples a 440 Hz tone correctly but raises for a length of "
                       f"{prime_n} -> {prime_n // 2} samples (SciPy's FFT method takes any "
                       f"length): {error}"[:500], fix, **details)
    t_fast, t_prime = float(facts["fast_s"]), float(facts["prime_s"])
    slowdown = t_prime / t_fast if t_fast > 0 else float("inf")
    details.update(fast_ms=round(t_fast * 1000, 3), prime_ms=round(t_prime * 1000, 3),
                   slowdown=round(slowdown, 1))
    if shim:
        return ok(f"scipy.signal.resample is the tts-doctor shim ({shim}, shimmed): a 440 Hz "
                  f"tone resamples correctly", **details)
    from tts_doctor import scan

    entries = list((facts.get("reach") or {}).get("entries") or [])
    users, outside = scan.split_reached(list(facts.get("usages") or []))
    details["users"] = [{"distribution": u["distribution"], "version": u["version"],
                         "where": u["where"]} for u in users][:20]
    if outside:
        details["unreached"] = scan.unreached_note(outside, entries)
    speed = (f"a length with a large prime factor ({prime_n}) took {slowdown:.1f}x as long as "
             f"a fast length ({fast_n})")
    if users:
        names = sorted({f"{u['distribution']} {u['version']}" for u in users})
        commands = () if facts.get("soxr") else (dists.pip_install("soxr"),)
        fix = Fix("Route scipy.signal.resample through a polyphase or soxr resampler (shim "
                  "resample: same signature, no slow lengths), or call "
                  "scipy.signal.resample_poly(x, up, down) / soxr.resample(x, sr_in, sr_out) "
                  "in your code; pad to scipy.fft.next_fast_len(n) if you must keep the FFT "
                  "method." + (" soxr is optional; with it the shim is fastest." if commands
                               else ""), shim="resample", commands=commands)
        return warn(f"scipy.signal.resample works, but {', '.join(names)} call(s) it and "
                    f"arbitrary audio lengths hit its slow path: {speed}", fix, **details)
    return ok(f"scipy.signal.resample is correct on a 440 Hz tone; {speed}; no installed "
              "package calls it", **details)


_declare()
