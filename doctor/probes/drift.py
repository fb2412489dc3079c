"""API drift, generically: every name the deployment's code takes from another library, looked
up in the installed library (FAILURES.md F2; the removed SciPy, NumPy and torchaudio names too).

`cannot import name 'QuantizedCacheConfig' from 'transformers.cache_utils'` (index-tts#508) is
one case of a general failure: code written against one release of a library runs against
another that no longer has a name. No hand-kept list can follow every library, so this probe
asks the installed library itself:

1. **The uses** come from the run's one scan pass (doctor/usage.py, `scan.refs_of`): in each
   file the deployment reaches, every `from X import Y`, `import X.Y` and `X.Y.z` attribute
   chain (aliases resolved: `import scipy.signal as ss; ss.hann`, `from transformers import
   cache_utils as cu; cu.X`) where X is an installed library other than the file's own
   distribution; relative imports (the package's own code), `if TYPE_CHECKING:` blocks and
   annotations are left out. Each use is marked with its scope (module level: runs when the
   module is imported; in a function: runs when called), guarded (try/except ImportError,
   AttributeError or Exception, hasattr, version tests) and whether its module imported in the
   closure.
2. **The lookup** runs in the worker, under the diagnosed interpreter (`collect`): it imports
   only modules the closure import loaded (the longest loaded prefix of each name) and walks
   the rest by behaviour: the module's `__dict__`, then `sys.modules`, then the names a lazy
   module lists (`dir()`: transformers' `_LazyModule`, ModelScope's `LazyImportModule`),
   then the module's own `__getattr__` (NumPy 2 answers `np.float_` with its removal message),
   then a submodule's import spec (`importlib.util.find_spec`). A lazy name is not imported
   to be checked, and attributes of classes and other objects are not checked (instance
   attributes are made at run time). Uses whose module did not load are left unchecked.
3. **The verdict** (`judge`): a missing name used without a guard in reached code fails, where
   it fails at run time: in a function (it raises when called), or at module level of a
   module that did not import (it is why the import fails, or will). A module-level use in a
   module the closure imported has, by construction, worked (a branch not taken, or a name
   made later): details only. Guarded uses fall back: details. Code outside the closure is
   not examined (no status changes there, as for the other usage probes); without any entry
   point nothing is checked.

The curated probes keep what they know beyond existence (the new home of a name, the release
that removed it, a shim): a missing name that one of them watches (`scan.watch`, e.g.
`scipy.signal.hann` for scipy.removed-names, `numpy.float_` for numpy.aliases) is left to that
probe and only counted here (`details.left_to`), so one use is never reported twice.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix, Result, fail, ok, skip, warn
from tts_doctor.registry import Context, probe

# scan.watch groups -> the probe that reports their names
CURATED = {"scipy": "scipy.removed-names", "numpy": "numpy.aliases",
           "torchaudio": "torchaudio.api", "resampy": "numba.resampy-filters",
           "numba.jit": "numba.cache", "transformers.pretrained": "compat.transformers"}
MAX_ROWS = 40

# --- collect: in the worker, under the diagnosed interpreter (stdlib 3.7 + the libraries) ---


def _import(name: str, imported: dict[str, Any]) -> Any:
    """Import a module the closure import loaded; the module, or the exception text."""
    if name not in imported:
        import importlib
        import warnings

        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imported[name] = importlib.import_module(name)
        except BaseException as exc:  # SystemExit from imported code too
            imported[name] = f"{type(exc).__name__}: {exc}"[:300]
        _IMPORT_S[name] = time.perf_counter() - t0
    return imported[name]


_IMPORT_S: dict[str, float] = {}


def _lookup(dotted: str, base: str, imported: dict[str, Any]) -> dict[str, Any]:
    """Whether `dotted` exists, walking from the loaded module `base` by behaviour (module
    docstring, 2.). {"state": "present" | "missing" | "unchecked", ...}."""
    import importlib.util
    import types
    import warnings

    module = _import(base, imported)
    if isinstance(module, str):
        return {"state": "unchecked", "why": f"import {base}: {module}"}
    parts = dotted.split(".")
    obj: Any = module
    for i in range(len(base.split(".")), len(parts)):
        name, prefix = parts[i], ".".join(parts[:i])
        # only real modules are walked into: objects, and module-like namespaces that are not
        # imported modules (torch.ops.fbgemm: its operators are registered at run time)
        if not isinstance(obj, types.ModuleType) or \
                sys.modules.get(str(getattr(obj, "__name__", ""))) is not obj:
            return {"state": "present", "how": f"{prefix} is not an imported module"}
        space = getattr(obj, "__dict__", {})
        if name in space:
            obj = space[name]
            continue
        full = f"{prefix}.{name}"
        if sys.modules.get(full) is not None:
            obj = sys.modules[full]
            continue
        listed = space.get("__all__")
        if isinstance(listed, (list, tuple)) and name in listed:
            # a lazy module lists it (transformers' _LazyModule, ModelScope's
            # LazyImportModule): present, and not imported to be checked
            return {"state": "present", "how": f"listed by {prefix}.__all__"}
        try:
            spec = importlib.util.find_spec(full)
        except BaseException:
            spec = None
        if spec is not None:  # a submodule the closure did not import: not imported here
            return {"state": "present", "how": f"{full} is a submodule"}
        # the module's own answer: a module `__getattr__` or a lazy module class's
        error = ""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj = getattr(obj, name)
            continue
        except AttributeError as exc:
            error = str(exc)
        except BaseException as exc:
            return {"state": "unchecked",
                    "why": f"getattr({prefix}, {name!r}) raised {type(exc).__name__}: "
                           f"{exc}"[:300]}
        return {"state": "missing", "module": prefix, "name": name,
                "error": (error or f"module {prefix!r} has no attribute {name!r}")[:300]}
    return {"state": "present", "how": "found"}


def _requirements(user: str, library: str, cache: dict[str, list[str]]) -> list[str]:
    """The user distribution's requirements on the library (Requires-Dist lines)."""
    key = f"{user}\0{library}"
    if key not in cache:
        found: list[str] = []
        dist = dists.distribution(user) if not user.startswith("(") else None
        want = dists.canonical(library)
        for line in (getattr(dist, "requires", None) or []) if dist is not None else []:
            head = line.split(";")[0].strip()
            name = head
            for stop in "<>=!~[( ":
                name = name.split(stop)[0]
            if dists.canonical(name) == want:
                found.append(line.strip())
        cache[key] = found
    return cache[key]


def collect_drift(ctx: Context) -> dict[str, Any]:
    """The names reached code takes from other libraries, looked up in the installed ones."""
    from tts_doctor import scan

    t_index = time.perf_counter()
    index = scan.index()
    t0 = time.perf_counter()
    reach = dict(index.get("reach") or {})
    facts: dict[str, Any] = {
        "reach": {k: reach.get(k) for k in ("known", "why", "entries", "failed",
                                            "reached_files") if k in reach},
        "scanned_files": index.get("scanned_files"),
        "uses": 0, "present": 0, "unchecked": [], "not_loaded": 0, "results": [],
    }
    if not reach.get("known"):
        return facts
    rows = index.get("refs") or []
    facts["uses"] = len(rows)
    facts["after_missing_import"] = reach.get("refs_after_missing_import", 0)
    imported: dict[str, Any] = {}
    looked: dict[str, dict[str, Any]] = {}
    requires: dict[str, list[str]] = {}
    facts["not_looked_up"] = 0
    seen: set[tuple[str, int, str, str]] = set()

    def decisive(r: list[Any]) -> bool:
        # can fail at run time: unguarded, and in a function or a module that did not import
        return not r[8] and (r[7] != "module" or not r[9])

    # the uses that decide the verdict first (their modules are imported), then the others
    # as far as their modules are already imported; a package before its submodules
    order = sorted(rows, key=lambda r: (not decisive(r), len((r[10] or "").split(".")),
                                        r[10] or ""))
    for row in order:
        user, user_version, origin, path, line, dotted, kind, scope, guarded, loaded, base, \
            library, library_version = row
        if base is None:
            facts["not_loaded"] += 1
            continue
        if not decisive(row) and base not in imported and sys.modules.get(base) is None:
            facts["not_looked_up"] += 1
            continue
        if dotted not in looked:
            looked[dotted] = _lookup(dotted, base, imported)
        answer = looked[dotted]
        if answer["state"] == "present":
            facts["present"] += 1
            continue
        use = {"user": user, "user_version": user_version, "origin": origin, "file": path,
               "line": line, "name": dotted, "kind": kind, "scope": scope,
               "guarded": bool(guarded), "loaded": bool(loaded), "library": library,
               "library_version": library_version}
        if answer["state"] == "unchecked":
            if len(facts["unchecked"]) < MAX_ROWS:
                facts["unchecked"].append(dict(use, why=answer["why"]))
            continue
        key = (path, line, answer["module"], answer["name"])
        if key in seen:  # `np.linalg.linalg.a` and `.b` on one line: one missing name
            continue
        seen.add(key)
        use.update(module=answer["module"], missing=answer["name"], error=answer["error"],
                   requires=_requirements(user, library, requires))
        facts["results"].append(use)
    facts["imported"] = sorted(k for k, v in imported.items() if not isinstance(v, str))
    facts["import_failed"] = {k: v for k, v in imported.items() if isinstance(v, str)}
    facts["seconds"] = round(time.perf_counter() - t0, 3)
    facts["index_wait_s"] = round(t0 - t_index, 3)
    slow = sorted(_IMPORT_S.items(), key=lambda kv: -kv[1])[:8]
    facts["slowest_imports"] = {k: round(v, 3) for k, v in slow}
    facts["import_s"] = round(sum(_IMPORT_S.values()), 3)
    return facts


# --- judge --------------------------------------------------------------------------------

def _curated_keys() -> dict[str, str]:
    """Dotted names the curated usage probes of this doctor watch (`scan.watch` groups) ->
    the probe that reports them: the judge's own knowledge, also for facts of another day."""
    from tts_doctor import scan

    out: dict[str, str] = {}
    for group, w in scan.watched().items():
        for p in w.patterns:
            out.setdefault(p.key, CURATED.get(group, group))
    return out


def _where(u: dict[str, Any]) -> str:
    """`librosa/beat.py:516` for an installed distribution, the full path for your code."""
    path = str(u["file"])
    if u.get("origin") == "distribution":
        marker = os.sep + "site-packages" + os.sep
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{u['line']}"


def _brief(u: dict[str, Any]) -> dict[str, Any]:
    out = {"user": f"{u['user']} {u.get('user_version') or ''}".strip(), "where": _where(u),
           "name": f"{u['module']}.{u['missing']}", "library": u["library"],
           "library_version": u["library_version"], "scope": u["scope"], "kind": u["kind"],
           "error": u.get("error")}
    if u.get("requires"):
        out["requires"] = u["requires"]
    return out


def _specs(u: dict[str, Any]) -> list[str]:
    """The version ranges the user distribution declares for the library: its unconditional
    Requires-Dist lines (extras and other markers are not enforced by pip at run time)."""
    out = []
    for line in u.get("requires") or []:
        if ";" in line:
            continue
        for i, ch in enumerate(line):
            if ch in "<>=!~":
                out.append(line[i:].strip().strip("()"))
                break
    return out


def _unmet(u: dict[str, Any]) -> list[str]:
    """The user's own requirements on the library that the installed version does not meet."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    out = []
    for spec in _specs(u):
        try:
            if not SpecifierSet(spec).contains(Version(str(u["library_version"])),
                                               prereleases=True):
                out.append(f"{u['library']}{spec}")
        except (InvalidSpecifier, InvalidVersion):
            continue
    return out


def _kind(u: dict[str, Any]) -> str:
    """How a missing, unguarded use that runs after the import is judged (docs/reachability.md):
    'fail', 'warn' or 'latent' (details only)."""
    if u["origin"] != "distribution":
        return "fail"  # the code being worked on: your folder, editable, unowned code
    if _unmet(u):
        return "fail"  # the environment left the range the package declares
    if u["scope"] == "module":
        return "warn"  # a module the closure did not import: importing it raises
    # in a function of an installed package that runs with what it declares: a dead branch,
    # a rare path or a latent bug (cffi's never-called _workaround_for_static_import_finders,
    # scipy 1.17.1's np.zeroslike); nothing says the deployment calls it
    return "latent"


def _fix(bad: list[dict[str, Any]]) -> Fix:
    libraries = sorted({f"{u['library']} {u['library_version']}" for u in bad})
    names = sorted({f"{u['module']}.{u['missing']}" for u in bad})
    pins = sorted({req for u in bad for req in _unmet(u)})
    text = (f"The installed {', '.join(libraries)} no longer provide(s) "
            f"{', '.join(names[:6])}{', ...' if len(names) > 6 else ''}. ")
    if pins:
        text += ("The code that uses them declares a requirement the installed version does "
                 f"not meet: install that ({', '.join(pins)}), or move the code to the "
                 "library's current API.")
    else:
        text += ("Install the release of the library that the code was written for (the "
                 "one its project pins), or move the code to the library's current API at "
                 "the lines named.")
    return Fix(text, commands=tuple(dists.pip_install(p) for p in pins[:1]))


def _what(uses: list[dict[str, Any]]) -> tuple[str, str]:
    groups: dict[str, list[str]] = {}
    for u in uses:
        label = f"{u['library']} {u['library_version']} has no {u['missing']} in {u['module']}"
        groups.setdefault(label, []).append(
            f"{u['user']} {_where(u)}" if u["origin"] == "distribution" else _where(u))
    what = "; ".join(f"{label} (used at {', '.join(sorted(set(w))[:3])}"
                     f"{', ...' if len(set(w)) > 3 else ''})" for label, w in groups.items())
    kind = "ImportError" if any(u["kind"] == "from" for u in uses) else "AttributeError"
    return what, kind


@probe("compat.api-drift", title="Names the deployment's code imports from other libraries, "
       "looked up in the installed ones", isolated=True, families=("F2", "A5"), timeout=180,
       collect=collect_drift, memo=True, reads_index=True)
def api_drift(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that every name reached code takes from another installed library exists there.

    Uses come from the one scan pass (`from X import Y`, `import X.Y`, `X.Y` through aliases, in
    the files the deployment reaches; relative imports, `TYPE_CHECKING` blocks and annotations
    left out). The collector, in the worker, imports only modules the closure import loaded and
    looks each name up by behaviour (module dict, sys.modules, a lazy module's `__all__`, a
    submodule's spec, `getattr`). A missing name used without a guard in a function, or at module
    level of a module that did not import, fails in your code, editable or unowned code, and in
    an installed package that requires another version of the library; it warns in a package
    that declares no version range for it; a package whose declared range holds the installed
    version has a latent bug (details). The finding names file, line, name and the installed
    version. Guarded uses and module-level uses in modules that imported are details; names a
    curated probe watches (scipy.removed-names, numpy.aliases, torchaudio.api...) are left to it.
    Code outside the closure is not examined; without an entry point: `skip`. The fix installs
    the version the using package requires when it declares one the installed release does not
    meet, else names the lines to move to the current API.
    """
    return judge_drift(ctx, facts)


def judge_drift(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """The verdict from the collected lookups (module docstring, 3.): a pure function of the
    facts, run in the doctor's own process."""
    reach = facts.get("reach") or {}
    if not reach.get("known"):
        return skip("no entry point is known (no recipe entry, TTS stack, editable install or "
                    "application folder): the names installed code uses are not checked; "
                    "name your application with --project DIR", reach=reach)
    curated = _curated_keys()
    breaking, risky, latent, guarded, ran = [], [], [], [], []
    left_to: dict[str, list[dict[str, Any]]] = {}
    for u in facts.get("results") or []:
        key = f"{u['module']}.{u['missing']}"
        if key in curated:
            left_to.setdefault(curated[key], []).append(_brief(u))
        elif u["guarded"]:
            guarded.append(u)
        elif u["scope"] == "module" and u["loaded"]:
            ran.append(u)  # its module imported in the closure: this line ran, or was skipped
        else:
            kind = _kind(u)
            (breaking if kind == "fail" else risky if kind == "warn" else latent).append(u)
    unreached = max(0, int(facts.get("scanned_files") or 0) - int(reach.get("reached_files")
                                                                    or 0))
    details: dict[str, Any] = {
        "uses": facts.get("uses", 0), "present": facts.get("present", 0),
        "missing": [_brief(u) for u in breaking][:MAX_ROWS],
        "guarded": [_brief(u) for u in guarded][:MAX_ROWS],
        "ran_at_import": [_brief(u) for u in ran][:MAX_ROWS],
        "not_importable": [_brief(u) for u in risky][:MAX_ROWS],
        "latent": [_brief(u) for u in latent][:MAX_ROWS],
        "left_to": {k: v[:MAX_ROWS] for k, v in left_to.items()},
        "unchecked": (facts.get("unchecked") or [])[:MAX_ROWS],
        "not_loaded": facts.get("not_loaded", 0),
        "not_looked_up": facts.get("not_looked_up", 0),
        "after_missing_import": facts.get("after_missing_import", 0),
        "import_failed": facts.get("import_failed") or {},
        "unreached_files": unreached,
        "unreached": f"{unreached} installed file(s) outside the closure are not examined",
        "collect_s": facts.get("seconds"),
        "import_s": facts.get("import_s"),
        "index_wait_s": facts.get("index_wait_s"),
        "slowest_imports": facts.get("slowest_imports"),
        "reach": reach,
    }
    tail = []
    if left_to:
        tail.append("left to " + ", ".join(f"{p} ({len(v)})" for p, v in sorted(left_to.items())))
    if guarded:
        tail.append(f"{len(guarded)} guarded use(s) of missing names fall back")
    if ran:
        tail.append(f"{len(ran)} module-level use(s) in modules that imported")
    if latent:
        tail.append(f"{len(latent)} use(s) in functions of installed packages, not known to "
                    "run (details.latent)")
    note = f"; {'; '.join(tail)}" if tail else ""
    if breaking:
        what, kind = _what(breaking)
        return fail(f"{what.count(' has no ')} name(s) that the deployment's code uses are "
                    f"missing from the installed libraries ({kind} when it runs): "
                    f"{what}"[:700] + note, _fix(breaking), **details)
    if risky:
        what, kind = _what(risky)
        return warn(f"modules of installed packages that the deployment reaches but did not "
                    f"import take {what.count(' has no ')} name(s) the installed libraries no "
                    f"longer have ({kind} when they are imported): {what}"[:700] + note,
                    _fix(risky), **details)
    checked = facts.get("present", 0)
    return ok(f"every name the reached code takes from other libraries exists ({checked} "
              f"use(s) looked up in the installed libraries){note}", **details)

