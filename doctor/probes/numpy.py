"""NumPy: extensions built against the other NumPy major (N1), removed aliases and who uses
them (N2).

`numpy.abi` finds every installed extension module that uses the NumPy C API and reads, from
the binary itself, which NumPy it was built against (a NumPy 2 build names
`numpy._core._multiarray_umath`; a NumPy 1 build names only `numpy.core...`; a pybind11 >= 2.12
build picks the module at run time). That static pass is cheap and cached per distribution.
Only the extensions built for the *other* major are then imported, each distribution in a fresh
subprocess of the diagnosed interpreter (an ABI failure can leave a process unusable, and the
banner goes to stderr only), and the verdict comes from what that import prints and raises.

`numpy.aliases` asks the installed NumPy which of the removed aliases are really gone (in the
isolated worker: `hasattr(numpy, name)`), then which installed distributions still use those names
(`doctor.scan`), leaving out uses that are guarded (`try/except AttributeError`, `hasattr`).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import subprocess
import time
from typing import Any, Optional

from tts_doctor import dists, scan, upgrades
from tts_doctor.finding import Fix, Result, fail, manual, ok, skip, steps, warn
from tts_doctor.registry import Context, probe

# ---------------------------------------------------------------------------------------------
# numpy.abi (N1)

ABI_CACHE_VERSION = 1
# An extension module file: `name.cpython-311-x86_64-linux-gnu.so`, `name.abi3.so`, `name.so`.
_EXT_RE = re.compile(r"^(?P<mod>[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_-]+)*\.so$")
# Shared libraries (not modules) are only read when their name says they bind Python
# (torch/lib/libtorch_python.so); larger files than this are never C-API users.
_MAX_BYTES = 256 * 1024 * 1024

# What a NumPy major mismatch prints or raises (NumPy 2 banner, Cython and C-API checks).
ABI_SIGNATURES = (
    ("banner", re.compile(r"compiled using NumPy 1\.x cannot be run in\s+NumPy ([0-9][^\s]*)")),
    ("_ARRAY_API", re.compile(r"_ARRAY_API not found")),
    ("multiarray", re.compile(r"numpy\.core\.(?:_multiarray_umath|multiarray|umath) failed to "
                              r"import")),
    ("dtype-size", re.compile(r"numpy\.dtype size changed, may indicate binary "
                              r"incompatibility")),
    ("c-api", re.compile(r"compiled against (?:ABI|API|NumPy C-API) version")),
)

BANNER_TEXT = "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.x"

_CHILD = r"""
import json, sys
sys.path[:] = json.loads(sys.argv[1])
watch = json.loads(sys.argv[2])
for name in sys.argv[3:]:
    sys.stderr.write("\n@@tts-doctor-begin %s\n" % name)
    sys.stderr.flush()
    try:
        __import__(name)
    except BaseException as exc:
        sys.stderr.write("\n@@tts-doctor-error %s %s: %s\n"
                         % (name, type(exc).__name__, str(exc).replace("\n", " ")[:600]))
    sys.stderr.write("\n@@tts-doctor-loaded %s %s\n"
                     % (name, json.dumps([w for w in watch if w in sys.modules])))
    sys.stderr.write("\n@@tts-doctor-end %s\n" % name)
    sys.stderr.flush()
"""


def classify_extension(path: str) -> Optional[str]:
    """Which NumPy an extension was built against, read from its bytes.

    '1' (names only numpy.core...), '2' (names numpy._core), 'runtime' (uses the C API but
    names neither: pybind11 >= 2.12 chooses at run time), None (does not use the C API).
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0 or size > _MAX_BYTES:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                # a Cython module that only cimports NumPy's types (no import_array) checks
                # the size of numpy.dtype when it imports: a C-API user all the same
                if m.find(b"_ARRAY_API") < 0 and m.find(b"_UFUNC_API") < 0 and not (
                        m.find(b"size changed, may indicate binary incompatibility") >= 0
                        and m.find(b"numpy.core.multiarray") >= 0):
                    return None
                if m.find(b"numpy._core") >= 0:
                    return "2"
                if (m.find(b"numpy.core._multiarray_umath") >= 0
                        or m.find(b"numpy.core.multiarray") >= 0
                        or m.find(b"numpy.core.umath") >= 0):
                    return "1"
                return "runtime"
    except (OSError, ValueError):
        return None


def _record_path(dist: Any) -> Optional[str]:
    base = getattr(dist, "_path", None)
    if base is None:
        return None
    record = os.path.join(str(base), "RECORD")
    return record if os.path.exists(record) else None


def _shared_objects(dist: Any) -> list[tuple[str, str]]:
    """(absolute path, path relative to the install root) of a distribution's .so files."""
    record = _record_path(dist)
    if record is not None:
        root = os.path.dirname(os.path.dirname(record))
        with open(record, encoding="utf-8", errors="replace") as fh:
            rels = [line.split(",", 1)[0] for line in fh]
        pairs = [(os.path.normpath(os.path.join(root, rel)), rel) for rel in rels]
    else:  # no RECORD (some conda and egg installs): the metadata's file list, if any
        pairs = []
        for f in dist.files or []:
            try:
                pairs.append((str(dist.locate_file(f)), str(f)))
            except Exception:
                continue
    out = []
    for path, rel in pairs:
        name = os.path.basename(rel)
        if not (name.endswith(".so") or ".so." in name):
            continue
        if name.startswith("lib") and "py" not in name:
            continue  # a plain shared library, not a Python binding
        out.append((path, rel.replace(os.sep, "/")))
    return out


def _abi_cache_file(dist: Any) -> Optional[str]:
    record = _record_path(dist)
    folder = scan.cache_dir()
    if record is None or folder is None:
        return None
    st = os.stat(record)
    blob = json.dumps([ABI_CACHE_VERSION, dist.metadata["Name"], dist.version, record,
                       st.st_mtime_ns, st.st_size])
    return os.path.join(str(folder), "abi-" + hashlib.sha256(blob.encode()).hexdigest()[:24]
                        + ".json")


def extension_builds(dist: Any) -> list[dict[str, str]]:
    """Every NumPy C-API user of one distribution: file, module, build ('1', '2', 'runtime').

    Cached per distribution (RECORD's mtime and size in the key) next to doctor.scan's cache.
    """
    cache = _abi_cache_file(dist)
    if cache:
        try:
            with open(cache, encoding="utf-8") as fh:
                return list(json.load(fh))
        except (OSError, ValueError):
            pass
    out = []
    for path, rel in _shared_objects(dist):
        build = classify_extension(path)
        if build is None:
            continue
        out.append({"file": path, "module": _module_name(rel), "build": build})
    if cache:
        tmp = f"{cache}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(out, fh)
            os.replace(tmp, cache)
        except OSError:
            pass
    return out


def _module_name(rel: str) -> str:
    """The dotted name to import for a shared object: the module itself when it is one,
    else its top-level package (torch/lib/libtorch_python.so -> torch)."""
    parts = rel.split("/")
    m = _EXT_RE.match(parts[-1])
    if m and not parts[-1].startswith("lib") and all(p.isidentifier() for p in parts[:-1]):
        return ".".join([*parts[:-1], m.group("mod")])
    return parts[0]


def child_path() -> list[str]:
    """The import path a fresh subprocess should see: this interpreter's, without the
    current folder and without the doctor's own support links (`--python` runs)."""
    return [p for p in dists.search_path() if "tts-doctor-support-" not in p]


def import_in_subprocess(modules: list[str], timeout: float = 30.0,
                        watch: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Import `modules` one by one in a fresh interpreter; per module: error, signatures,
    output, `crashed` when the process died (or timed out) inside that import, `checked`:
    False for the modules after it, which the process never reached (no begin marker), so
    nothing is known about them, and `loaded`: the modules of `watch` in sys.modules once
    that import is done (what importing a package really loads)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONWARNINGS="ignore")
    try:
        proc = subprocess.run([dists.executable(), "-c", _CHILD, json.dumps(child_path()),
                               json.dumps(list(watch)), *modules],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              errors="replace")
        text, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stderr or b""
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) else out
        rc = None
    results: dict[str, dict[str, Any]] = {}
    current = None
    chunks: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("@@tts-doctor-begin "):
            current = line.split(" ", 1)[1].strip()
            chunks[current] = []
            results[current] = {"error": None, "ended": False, "loaded": []}
        elif line.startswith("@@tts-doctor-error ") and current:
            results[current]["error"] = line.split(" ", 2)[2].strip()
        elif line.startswith("@@tts-doctor-loaded ") and current:
            try:
                results[current]["loaded"] = list(json.loads(line.split(" ", 2)[2]))
            except (IndexError, ValueError):
                pass
        elif line.startswith("@@tts-doctor-end ") and current:
            results[current]["ended"] = True
            current = None
        elif current:
            chunks[current].append(line)
    for name in modules:
        r = results.setdefault(name, {"error": None, "ended": False, "loaded": []})
        output = "\n".join(chunks.get(name, []))
        blob = output + "\n" + (r["error"] or "")
        r["signatures"] = [key for key, rx in ABI_SIGNATURES if rx.search(blob)]
        r["output"] = output[-1500:]
        r["checked"] = name in chunks
        ended = r.pop("ended")
        r["crashed"] = None
        if r["checked"] and not ended:
            r["crashed"] = "timed out" if rc is None else f"the process exited with {rc}"
    return results


def sort_imports(jobs: dict[str, tuple[str, list[str]]], done: dict[str, dict[str, Any]],
                 other: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                      list[dict[str, Any]]]:
    """Rows (broken, imported cleanly, not checked) from `import_in_subprocess`'s results per
    distribution; `jobs` maps a distribution to (version, modules imported in that order). A
    module the process never reached is not checked: it counts neither way."""
    broken, clean, unchecked = [], [], []
    for name, (version, modules) in jobs.items():
        for module in modules:
            r = done[name][module]
            row = {"distribution": name, "version": version, "module": module,
                   "built_against": f"NumPy {other}.x", "signatures": r["signatures"],
                   "error": r["error"], "crashed": r.get("crashed")}
            if r["signatures"] or r["error"] or r.get("crashed"):
                row["output"] = r["output"]
                broken.append(row)
            elif not r.get("checked", True):
                unchecked.append(row)
            else:
                clean.append(row)
    return broken, clean, unchecked


def _chain(module: str) -> list[str]:
    """The module and the packages above it, short of the top-level one: `a.b._ext` ->
    [`a.b._ext`, `a.b`]. Importing any of them loads the module; importing `a` need not."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 1, -1)]


def _source_module(rel: str) -> tuple[str, bool]:
    """(dotted module name, is a package) of a .py file relative to the install root."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def own_importers(dist: Any, module: str) -> list[dict[str, Any]]:
    """Where the distribution's own code imports `module` (or a package above it, short of the
    top-level one) without a guard: files outside that chain of packages, not tests, with
    imports anywhere in them (a lazy import in a function counts). Empty: the package loads the
    module only through that chain, which nothing of it imports, or only behind a guard
    (try/except, a NumPy version test) or from its tests."""
    import ast

    chain = set(_chain(module))
    if not chain:
        return []
    needles = [m.rsplit(".", 1)[-1].encode() for m in chain]
    out: list[dict[str, Any]] = []
    for path, rel in _python_files(dist):
        name, is_package = _source_module(rel)
        if name in chain or _is_test_file(rel):
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            if not any(n in data for n in needles):
                continue
            tree = ast.parse(data)
        except (OSError, SyntaxError, ValueError):
            continue
        guarded = scan.guarded_lines(data)
        for imported, line in scan.imports_with_lines(tree, name, is_package):
            if imported in chain and line not in guarded:
                out.append({"file": rel, "line": line, "imports": imported})
    return out


def _python_files(dist: Any) -> list[tuple[str, str]]:
    """(absolute path, path relative to the install root) of a distribution's .py files."""
    out = []
    for f in dist.files or []:
        rel = str(f).replace(os.sep, "/")
        if rel.endswith(".py") and not rel.startswith(".."):
            try:
                out.append((str(dist.locate_file(f)), rel))
            except Exception:
                continue
    return out


def judge_reach(rows: list[dict[str, Any]], dist: Any,
                done: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """(broken, optional) for one distribution's modules that failed when imported alone,
    from what importing the distribution's top-level packages did (`done`: their results
    from `import_in_subprocess(tops, watch=modules)`) and where its own code imports them.

    A module is broken as used when importing its top-level package fails, or loads it, or
    when the package's code imports it unguarded elsewhere (a lazy import). Otherwise the
    package never imports it under this NumPy: optional (imported only behind a version test
    or a try/except, by its tests, or by nothing): not a failure of the environment."""
    tops = sorted({r["module"].split(".")[0] for r in rows})
    failed = next((t for t in tops if done.get(t, {}).get("error")
                   or done.get(t, {}).get("crashed") or not done.get(t, {}).get("checked")),
                  None)
    loaded = {m for t in tops for m in done.get(t, {}).get("loaded") or []}
    broken, optional = [], []
    for row in rows:
        top = row["module"].split(".")[0]
        if failed is not None:
            broken.append({**row, "imported_by": f"import {failed}"})
            continue
        if row["module"] in loaded or row["module"] == top:
            broken.append({**row, "imported_by": f"import {top}"})
            continue
        importers = own_importers(dist, row["module"])
        if importers:
            first = importers[0]
            broken.append({**row, "imported_by": f"{first['file']}:{first['line']}"})
            continue
        tried = bool(done.get(top, {}).get("signatures"))
        why = (f"`import {top}` tries it, catches the failure and goes on" if tried else
               f"`import {top}` does not load it, and no code of {row['distribution']} "
               "imports it outside its own package, unguarded, except tests")
        optional.append({**row, "why": why})
    return broken, optional


def confirm_reach(broken: list[dict[str, Any]],
                  dists_by_name: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """Split modules that fail when imported alone into (broken as their package uses them,
    optional): one fresh process per distribution imports its top-level packages, watching
    which of those modules they load (see `judge_reach`)."""
    from concurrent.futures import ThreadPoolExecutor

    by_dist: dict[str, list[dict[str, Any]]] = {}
    for row in broken:
        by_dist.setdefault(row["distribution"], []).append(row)

    def one(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = by_dist[name]
        tops = sorted({r["module"].split(".")[0] for r in rows})
        done = import_in_subprocess(tops, watch=tuple(r["module"] for r in rows))
        return judge_reach(rows, dists_by_name[name], done)

    still: list[dict[str, Any]] = []
    optional: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=min(4, len(by_dist) or 1)) as pool:
        for b, o in pool.map(one, sorted(by_dist)):
            still += b
            optional += o
    return still, optional


def _numpy_major() -> Optional[int]:
    rel = dists.release(dists.version("numpy"))
    return rel[0] if rel else None


def collect_abi(ctx: Context) -> dict[str, Any]:
    """The installed NumPy, the extension modules built against the other major (from their
    .so files), and what importing them (alone, then as their package uses them) did:
    broken, imports cleanly, never imported, optional."""
    version = dists.version("numpy")
    if version is None:
        return {"numpy": None}
    major = _numpy_major() or 0
    other = "1" if major >= 2 else "2"
    t0 = time.perf_counter()
    builds: dict[str, tuple[Any, list[dict[str, str]]]] = {}
    counted = 0
    for key, dist in sorted(dists.all_distributions().items()):
        if key == "numpy":
            continue
        found = extension_builds(dist)
        counted += len(found)
        odd = [b for b in found if b["build"] == other]
        if odd:
            builds[dist.metadata["Name"]] = (dist, odd)
    scan_s = time.perf_counter() - t0
    details: dict[str, Any] = {"numpy": version, "major": major, "extensions": counted,
                               "scan_s": round(scan_s, 3)}
    if not builds:
        return details
    # Confirm by importing: one fresh process per distribution, side by side. (Under NumPy 1
    # the suspects are NumPy 2 builds: fine by default, since NumPy 2 builds target the 1.x
    # API, broken only when built for a newer C API; the imports tell.)
    from concurrent.futures import ThreadPoolExecutor

    jobs = {name: sorted({b["module"] for b in odd})[:8] for name, (_d, odd) in builds.items()}
    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        done = dict(zip(jobs, pool.map(import_in_subprocess, jobs.values())))
    broken, clean, unchecked = sort_imports(
        {name: (builds[name][0].version, modules) for name, modules in jobs.items()},
        done, other)
    optional: list[dict[str, Any]] = []
    if broken:  # as the packages use them: imported by their package, or optional
        broken, optional = confirm_reach(broken, {n: d for n, (d, _o) in builds.items()})
    details.update(broken=broken, imports_cleanly=clean, not_checked=unchecked,
                   optional=optional, confirm_s=round(time.perf_counter() - t0 - scan_s, 3))
    return details


@probe("numpy.abi", title="Extension modules built against the NumPy major that is installed",
       families=("N1",), timeout=60, collect=collect_abi)
def abi(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks that no installed extension module was built against the other NumPy major.

    Skips when numpy is not installed. Reads each distribution's .so files (listed in RECORD, cached
    per distribution) for the NumPy C-API tables and the module names they embed (`numpy._core`: a
    NumPy 2 build; only `numpy.core`: NumPy 1). Up to 8 modules per distribution built for the other
    major are imported in a fresh subprocess: an error, a crash or the ABI banner marks the module
    (the module being imported when the process died is the crash), a clean import (or no suspect)
    is `ok`. A marked module is then judged as its package uses it: a fresh process imports the
    package's top-level name and watches which modules it loads. Broken (a fail) when that import
    fails or loads it, or when the package's own code imports it elsewhere without a guard (a lazy
    import in a function); otherwise the package never imports it under this NumPy (only behind a
    version test or try/except, from its tests, or not at all): an optional module, listed in
    `details.optional` and named in the summary, not a failure.
    Modules after a crash or timeout were never imported: they are listed as not checked, never as
    clean, and with no failure elsewhere the verdict is `warn` (fix: import them by hand). Under
    NumPy 2 the fix upgrades a package only to a release known to be built for NumPy 2
    (`NUMPY2_BUILDS`), says "no fixed release known" for the others, and pins `numpy<2`; under
    NumPy 1 it upgrades numpy to 2.
    """
    version = facts.get("numpy")
    if version is None:
        return skip("numpy is not installed")
    major = int(facts.get("major") or 0)
    other = "1" if major >= 2 else "2"
    counted = facts.get("extensions", 0)
    details = dict(facts)
    details.pop("major", None)
    if "broken" not in facts:
        return ok(f"numpy {version}: {counted} extension module(s) use the NumPy C API, "
                  f"none built against NumPy {other}.x", **details)
    broken, clean = list(facts["broken"]), list(facts["imports_cleanly"])
    unchecked, optional = list(facts["not_checked"]), list(facts["optional"])
    note = ""
    if optional:
        note = (f"; {len(optional)} optional module(s) built against NumPy {other}.x fail to "
                "import alone, but their package never imports them (not a failure unless "
                "your code imports them): "
                + ", ".join(f"{o['module']} ({o['distribution']} {o['version']})"
                            for o in optional[:4]))
    untested = ""
    if unchecked:
        untested = (f"; {len(unchecked)} more module(s) were never imported (the process "
                    "ended before them): " + ", ".join(u["module"] for u in unchecked[:4]))
    if not broken and unchecked:
        # nothing failed, but not everything was tried: no verdict on the rest
        tries = [manual(dists.executable(), "-c", f"import {u['module']}") for u in unchecked[:4]]
        names = ", ".join(sorted({u["distribution"] for u in unchecked}))
        return warn(f"numpy {version}: extension module(s) of {names} built against NumPy "
                    f"{other}.x could not be checked" + (
                        f" ({len(clean)} imported cleanly)" if clean else "") + untested + note,
                    Fix("Import the unchecked modules one by one with the diagnosed "
                        "interpreter: an error or the NumPy ABI banner names the package to "
                        "upgrade (or pin numpy to the other major).", commands=tuple(tries)),
                    **details)
    if not broken:
        names = ", ".join(sorted({c["distribution"] for c in clean}))
        if not clean:
            return ok(f"numpy {version}: no extension module that a package imports was built "
                      f"against NumPy {other}.x" + note, **details)
        return ok(f"numpy {version}: {len(clean)} extension module(s) of {names} were built "
                  f"against NumPy {other}.x but import cleanly" + note, **details)
    dist_names = sorted({b["distribution"] for b in broken})
    first = broken[0]
    why = first["error"] or first["crashed"] or "printed the NumPy ABI banner"
    if major >= 2:
        # an upgrade only to a release known to be built for NumPy 2 (NUMPY2_BUILDS)
        versions = {b["distribution"]: b["version"] for b in broken}
        users = upgrades.plan(upgrades.upgrade(n, versions[n], NUMPY2_BUILDS)
                              for n in dist_names)
        summary = (f"{len(broken)} extension module(s) compiled against NumPy 1.x cannot run "
                   f"with numpy {version}: "
                   + ", ".join(f"{b['distribution']} {b['version']} ({b['module']})"
                               for b in broken[:4])
                   + f" — {why}"[:300] + untested)
        fix = Fix(f"{BANNER_TEXT}: {users.words()} (first command(s): releases built for "
                  "NumPy 2); or pin numpy below 2 for the whole environment (last command), "
                  "or rebuild the others from source against NumPy 2.",
                  commands=(*((steps(*users.commands),) if users.commands else ()),
                            dists.pip_install("numpy<2")))
    else:
        summary = (f"{len(broken)} extension module(s) built against NumPy 2.x fail with "
                   f"numpy {version}: "
                   + ", ".join(f"{b['distribution']} {b['version']} ({b['module']})"
                               for b in broken[:4]) + f" — {why}"[:300] + untested)
        to_2 = upgrades.Upgrade("numpy", version, "2.0.0")  # NumPy 2 exists
        fix = Fix(f"These builds need NumPy 2: {to_2.words()}, or install releases of the "
                  "packages built for NumPy 1.x.",
                  commands=tuple(c for c in (to_2.command(),) if c is not None))
    details["distributions"] = dist_names
    return fail(summary, fix, **details)


# ---------------------------------------------------------------------------------------------
# numpy.aliases (N2)

# Removed in 1.24 (deprecated in 1.20): the builtin-type aliases. NumPy 2.0 brought `bool`
# back (as np.bool_), so the installed NumPy is asked which ones are really gone.
ALIASES_1_24 = ("float", "int", "complex", "bool", "object", "str", "long", "unicode")
# Removed in 2.0 (the commonly used ones; numpy/_expired_attrs_2_0.py has the full list).
ALIASES_2_0 = ("float_", "complex_", "cfloat", "clongfloat", "longfloat", "longcomplex",
               "singlecomplex", "string_", "unicode_", "NaN", "Inf", "Infinity", "infty",
               "NINF", "PINF", "NZERO", "PZERO", "int0", "uint0", "bool8", "round_",
               "product", "cumproduct", "alltrue", "sometrue", "asfarray", "msort",
               "find_common_type", "issubclass_", "mat")
REPLACEMENTS = {
    "float": "float (builtin) or np.float64", "int": "int (builtin) or np.int64",
    "complex": "complex (builtin) or np.complex128", "bool": "bool (builtin) or np.bool_",
    "object": "object (builtin) or np.object_", "str": "str (builtin) or np.str_",
    "long": "int (builtin)", "unicode": "str (builtin)", "float_": "np.float64",
    "complex_": "np.complex128", "cfloat": "np.complex128", "string_": "np.bytes_",
    "unicode_": "np.str_", "NaN": "np.nan", "Inf": "np.inf",
    "infty": "np.inf", "NINF": "-np.inf", "PINF": "np.inf", "round_": "np.round",
    "product": "np.prod", "cumproduct": "np.cumprod", "alltrue": "np.all",
    "sometrue": "np.any", "asfarray": "np.asarray(x, dtype=float)", "bool8": "np.bool_",
    "int0": "np.intp", "uint0": "np.uintp", "longfloat": "np.longdouble",
    "clongfloat": "np.clongdouble", "longcomplex": "np.clongdouble",
    "singlecomplex": "np.complex64", "msort": "np.sort(a, axis=0)", "mat": "np.asmatrix",
    "find_common_type": "np.result_type or np.promote_types", "issubclass_": "issubclass",
    "Infinity": "np.inf", "NZERO": "-0.0", "PZERO": "0.0",
}
# Known consumers whose fixed release is named (FAILURES.md N2: coqui TTS#2442, librosa#1853).
KNOWN_FIXED = {"librosa": "0.10"}
# The first release of each package with wheels built for NumPy 2 (their release notes): the
# only upgrades numpy.abi names for an extension built against NumPy 1.
NUMPY2_BUILDS = {"numba": "0.60.0", "scipy": "1.13.0", "pandas": "2.2.2",
                 "scikit-learn": "1.4.2", "h5py": "3.11.0", "matplotlib": "3.8.4",
                 "shapely": "2.0.4", "pyarrow": "16.0.0", "soxr": "0.4.0",
                 "onnxruntime": "1.19.0", "opencv-python": "4.10.0.84"}

def absent_aliases(names: tuple[str, ...]) -> tuple[Optional[str], list[str], Optional[str]]:
    """(numpy version, names the installed NumPy lacks, error). numpy.aliases runs in the
    isolated worker, so NumPy is imported right here (shared with the other probes of the
    worker instead of a fresh interpreter's start-up)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import numpy

            absent = [n for n in names if not hasattr(numpy, n)]
    except Exception as exc:
        return None, [], f"{type(exc).__name__}: {exc}"
    return str(numpy.__version__), absent, None


def _is_test_file(path: str) -> bool:
    parts = path.replace(os.sep, "/").split("/")
    return any(p in ("tests", "test", "testing") for p in parts[:-1]) or \
        parts[-1].startswith("test_")


def _alias_prefilters(names: tuple[str, ...]) -> tuple[bytes, ...]:
    """The prefilter of `_alias_prefilter` as three regexes that each start with a literal
    (`np`, `numpy`, `from`): the engine skips to those, the one-pass scan tests every file."""
    alt = b"|".join(sorted((re.escape(n.encode()) for n in names), key=len, reverse=True))
    return (rb"np[ \t]*\.[ \t]*(?:" + alt + rb")\b",
            rb"numpy[ \t]*\.[ \t]*(?:" + alt + rb")\b",
            rb"from[ \t]+numpy[ \t]+import[^\n]*\b(?:" + alt + rb")\b")


def _alias_prefilter(names: list[str]) -> re.Pattern[bytes]:
    alt = b"|".join(sorted((re.escape(n.encode()) for n in names), key=len, reverse=True))
    return re.compile(rb"\b(?:np|numpy)[ \t]*\.[ \t]*(?:" + alt + rb")\b"
                      rb"|from[ \t]+numpy[ \t]+import[^\n]*\b(?:" + alt + rb")\b")


def alias_usages(absent: list[str]) -> list[dict[str, Any]]:
    """Uses of the absent aliases in installed distributions, each with `guarded` (why the
    use cannot break: a test file, or a try/except, hasattr or version guard; else None).

    doctor.scan resolves the aliases (`import numpy as N`, `from numpy import float_`) and
    caches per distribution; its generic pre-filter would parse every file with `.float` or
    `.str` in it, so one combined byte regex (`np.NAME`, `numpy.NAME`, `from numpy import
    ... NAME`) picks the few files worth parsing. A module imported under another name
    (`import numpy as N`) with no `np.`/`numpy.` use is not seen.
    """
    if not absent:
        return []
    usages = scan.find_usages([scan.Pattern("numpy", n) for n in absent], exclude=("numpy",),
                              prefilter=_alias_prefilter(absent))
    out = []
    for u in usages:
        why = "test file" if _is_test_file(u.file) else \
            "guarded (try/except, hasattr or a version test)" if u.guarded else None
        out.append({"distribution": u.distribution, "version": u.version, "file": u.file,
                    "line": u.line, "name": u.key, "guarded": why, "reached": u.reached,
                    "origin": u.origin})
    return out


def collect_aliases(ctx: Context) -> dict[str, Any]:
    """The installed NumPy, which of the removed aliases it lacks (asked with hasattr in the
    worker), the uses of those in the environment's code (file, line, guarded, reached), the
    installed versions of the packages KNOWN_FIXED names, and what the closure knows."""
    version = dists.version("numpy")
    if version is None:
        return {"numpy": None}
    runtime, absent, error = absent_aliases(ALIASES_1_24 + ALIASES_2_0)
    facts: dict[str, Any] = {"numpy": version, "runtime": runtime, "absent": absent,
                             "error": error}
    if error:
        return facts
    t0 = time.perf_counter()
    facts["uses"] = alias_usages(absent)
    facts["scan_s"] = round(time.perf_counter() - t0, 3)
    facts["installed"] = {name: dists.version(name) for name in KNOWN_FIXED}
    facts["can_fail"] = scan.can_fail()
    facts["entries"] = list(scan.reach_facts().get("entries") or [])
    return facts


def _older(have: str, than: str) -> bool:
    """Whether version `have` is older than `than` (packaging; an unparseable one is not)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(have) < Version(than)
    except InvalidVersion:
        return False


@probe("numpy.aliases", title="NumPy aliases removed in 1.24 and 2.0, and who still uses them",
       memo=True,
       reads_index=True, families=("N2",), timeout=120, isolated=True, collect=collect_aliases)
def aliases(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks whether installed code uses NumPy aliases that the installed NumPy no longer has.

    Imports numpy in the worker and asks `hasattr` for each alias removed in 1.24 or 2.0, then scans
    installed sources for the absent ones (a byte-regex prefilter, then doctor.scan's AST pass;
    cached); uses in test files or under a guard (try/except, hasattr, a version test) do not count.
    Not installed or not importable: `skip`. An unguarded use, or librosa older than 0.10 while the
    1.24 aliases are gone, fails; otherwise `ok`. The fix upgrades a package only to a release known
    to have stopped using them (`KNOWN_FIXED`; else "no fixed release known"), pins `numpy<2` /
    `numpy<1.24`, and lists the replacement of each alias (the patch). Only code the deployment
    reaches is judged (docs/reachability.md); uses outside it are listed in `details.unreached`.
    """
    version = facts.get("numpy")
    if version is None:
        return skip("numpy is not installed")
    runtime, absent, error = facts.get("runtime"), list(facts.get("absent") or []), \
        facts.get("error")
    if error:
        return skip(f"numpy {version} does not import, so its aliases cannot be checked "
                    f"({error}); numpy.abi and packages.consistency say why", numpy=version,
                    error=error)
    # only the code the deployment reaches is judged (doctor/usage.py); the rest is listed
    uses, outside = scan.split_reached(facts["uses"])
    live = [u for u in uses if not u["guarded"]]
    guarded = [u for u in uses if u["guarded"]]
    details: dict[str, Any] = {"numpy": runtime, "absent": absent,
                               "scan_s": facts.get("scan_s"),
                               "guarded_or_tests": guarded[:20],
                               "unreached_users": scan.unreached_details(outside)}
    unreached = scan.unreached_note(outside, facts.get("entries") or [])
    if unreached:
        details["unreached"] = unreached
    # Known version pairs: named even when the scan cache or a guard hides the use.
    pairs = []
    for name, fixed in KNOWN_FIXED.items():
        have = (facts.get("installed") or {}).get(name)
        if have and _older(have, fixed) and {"float", "complex", "int"} & set(absent):
            pairs.append({"distribution": name, "version": have, "fixed_in": fixed})
    details["known_pairs"] = pairs
    if not live and not pairs:
        gone = ", ".join(f"np.{n}" for n in absent[:6]) + (" ..." if len(absent) > 6 else "")
        tail = f"; {unreached}" if unreached else ""
        return ok(f"numpy {runtime}: no code the deployment reaches uses the removed aliases "
                  f"({gone}){tail}", **details)
    by_dist: dict[str, dict[str, Any]] = {}
    for u in live:
        d = by_dist.setdefault(u["distribution"], {"version": u["version"], "names": set(),
                                                   "uses": []})
        d["names"].add(u["name"].split(".", 1)[1])
        d["uses"].append(f"{u['file']}:{u['line']} np.{u['name'].split('.', 1)[1]}")
    for p in pairs:
        by_dist.setdefault(p["distribution"], {"version": p["version"], "names": set(),
                                               "uses": []})
    users = [{"distribution": n, "version": d["version"], "names": sorted(d["names"]),
              "uses": d["uses"][:10]} for n, d in sorted(by_dist.items())]
    details["users"] = users
    listed = "; ".join(f"{u['distribution']} {u['version']} ("
                       + ", ".join(f"np.{x}" for x in u["names"][:4]) + ")" for u in users[:5])
    # an upgrade only where a release that stopped using the aliases is known (KNOWN_FIXED)
    fixes = upgrades.plan(upgrades.upgrade(u["distribution"], u["version"], KNOWN_FIXED)
                          for u in users)
    in_2 = any(n in ALIASES_2_0 for u in users for n in u["names"])
    pin = "numpy<2" if in_2 else "numpy<1.24"
    replaced = sorted({n for u in users for n in u["names"]})
    fix = Fix(f"Packages that still use the removed aliases: {fixes.words()}"
              + (" (first command(s))" if fixes.commands else "")
              + f"; or pin {pin} (last command); or patch the code with the replacements: "
              + ", ".join(f"np.{n} -> {REPLACEMENTS.get(n, '?')}" for n in replaced[:8]),
              commands=(*((steps(*fixes.commands),) if fixes.commands else ()),
                        dists.pip_install(pin)))
    # no entry point known: a use in installed code may never run, so at most a warn
    report = fail if pairs or facts.get("can_fail") or any(
        u.get("origin") in ("editable", "project") for u in live) else warn
    note = f" ({scan.NO_ENTRY_NOTE})" if report is warn else ""
    return report(f"numpy {runtime} no longer has aliases that installed code uses: {listed} "
                  "(AttributeError: module 'numpy' has no attribute ...)" + note, fix, **details)


scan.watch("numpy", [scan.Pattern("numpy", n) for n in ALIASES_1_24 + ALIASES_2_0],
           prefilter=_alias_prefilters(ALIASES_1_24 + ALIASES_2_0), exclude=("numpy",))
