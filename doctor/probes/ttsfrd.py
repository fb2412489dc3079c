"""ttsfrd (the Chinese text frontend of Sambert and CosyVoice) and KAN-TTS.

What breaks, in the order users meet it (FAILURES.md T1..T8): the package is not on PyPI (only
a placeholder is); the real wheels exist for two interpreters on one platform; the compiled
module needs libre2.so.11 from a second wheel; the engine needs a resource directory that
comes as a zip from yet another place, and says only `prepare tts engine failed` when it is
wrong. Each probe checks one of these, by behaviour where it can: the ELF's needed libraries
are resolved as ld.so would, the engine is imported and `initialize()`d in the worker, the
resource zip is CRC-checked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists, footprint
from tts_doctor import target as targets
from tts_doctor.facts.model_cache import modelscope_model_dirs, modelscope_roots
from tts_doctor.facts.packages import _spec_origin, inspect_package
from tts_doctor.finding import Fix, Result, cmd, fail, manual, ok, skip, steps, warn
from tts_doctor.registry import Context, probe

# ModelScope's own package index page (pip --find-links) for ttsfrd, kantts, modelscope[audio]
FIND_LINKS = "https://modelscope.oss-cn-beijing.aliyuncs.com/releases/repo.html"
# The real ttsfrd wheels: 0.3.6 for cp38 (ModelScope), 0.4.2 for cp310 (ModelScope's
# iic/CosyVoice-ttsfrd, also bundled in PyPI's cosyvoice-ttsfrd 0.4.3); linux x86_64 only.
REAL_WHEELS = {"cp38-cp38-linux_x86_64": "0.3.6", "cp310-cp310-linux_x86_64": "0.4.2"}
COSY_RESOURCE_URL = ("https://github.com/xingchensong/CosyVoice-ttsfrd/releases/download/"
                     "v0.4.3/resource.zip")
COSY_MODEL = "iic/CosyVoice-ttsfrd"
# where the fixes download COSY_MODEL: it holds the cp310 ttsfrd wheel, ttsfrd_dependency's
# wheel and resource.zip, so pip can use the folder as a second --find-links
COSY_LOCAL = "pretrained_models/CosyVoice-ttsfrd"
# ttsfrd and ttsfrd_dependency, force-reinstalled from where real builds come (ModelScope's
# find-links for cp38, the downloaded model folder for cp310; PyPI has only the placeholder).
# Written for any interpreter ("{python}" is filled in by the runner): a crash fix is chosen
# before the diagnosed interpreter is known.
REINSTALL_ANY = steps(cmd("modelscope", "download", "--model", COSY_MODEL, "--local_dir",
                          COSY_LOCAL),
                      cmd("{python}", "-m", "pip", "install", "--force-reinstall", "--no-deps",
                          "-f", FIND_LINKS, "-f", COSY_LOCAL, "ttsfrd>0.1.0",
                          "ttsfrd_dependency"))
LANG_TYPES = ("pinyinvg", "pinyin", "zhcn")  # CosyVoice's, then ModelScope Sambert's
SAMPLE_TEXT = "今天天气很好。"


def _need(ctx: Context, component: str) -> Optional[str]:
    """The recipe's need, with a version specifier read as 'required' (the range is checked
    by ttsfrd.version) and 'shim' as 'optional' (something else stands in)."""
    need = ctx.needs(component)
    if need in (None, "required", "optional", "absent"):
        return need
    return "optional" if need == "shim" else "required"


# --- what is installed (metadata and files only, no import) -------------------------------


def installable_wheels() -> list[str]:
    """The real ttsfrd wheels the diagnosed interpreter accepts (by its wheel tags)."""
    supported = {str(t) for t in targets.supported_tags(targets.current())}
    return [f"ttsfrd {v} ({t})" for t, v in REAL_WHEELS.items() if t in supported]


def _py_tag() -> str:
    return targets.current().minor


def _bindir() -> str:
    return os.path.dirname(targets.current().executable)


def _cosy_dir() -> Optional[Path]:
    origin = _spec_origin("cosyvoice_ttsfrd")
    return Path(origin).parent if origin else None


def cosy_facts() -> dict[str, Any]:
    """Where cosyvoice-ttsfrd's package folder is (None: not installed) and the files of its
    `bundled_files` folder (the real ttsfrd and ttsfrd_dependency wheels it ships): what the
    fixes install from. Collected where the probe runs; the judges read it back."""
    d = _cosy_dir()
    names: list[str] = []
    if d is not None:
        try:
            names = sorted(os.listdir(d / "bundled_files"))
        except OSError:
            names = []
    return {"cosy_dir": str(d) if d is not None else None, "bundled": names}


def _bundled(pattern: str, cosy: Optional[dict[str, Any]] = None) -> Optional[Path]:
    """The last (newest by name) bundled file matching `pattern`, from the recorded
    `cosy_facts()` (read here when not given)."""
    import fnmatch

    cosy = cosy if cosy is not None else cosy_facts()
    if not cosy.get("cosy_dir"):
        return None
    hits = sorted(n for n in cosy.get("bundled") or [] if fnmatch.fnmatchcase(n, pattern))
    return Path(cosy["cosy_dir"]) / "bundled_files" / hits[-1] if hits else None


def _real_install_commands(wheels: Optional[list[str]] = None) -> tuple[str, ...]:
    """Commands that install the real engine on this interpreter, or () when none exists.
    `wheels`: the real wheels it accepts, as collected (`installable_wheels()` by default)."""
    wheels = installable_wheels() if wheels is None else wheels
    if any("cp310" in w for w in wheels):
        return steps(dists.pip_install("cosyvoice-ttsfrd"),
                     cmd(os.path.join(_bindir(), "cosyvoice-post-install")))
    if wheels:
        return (dists.pip_install("ttsfrd>0.1.0", extra=f"-f {FIND_LINKS}"),)
    return ()


def reinstall_commands(version: Optional[str], *, dependency: bool = False,
                       cosy: Optional[dict[str, Any]] = None,
                       wheels: Optional[list[str]] = None) -> tuple[str, ...]:
    """Commands that force-reinstall the installed real ttsfrd `version` (and, with
    `dependency`, its ttsfrd_dependency wheel) without its requirements. Never from PyPI
    alone, which has only the 0.1.0 placeholder: cosyvoice-ttsfrd's bundled wheels when it is
    installed, else ModelScope's find-links, plus the iic/CosyVoice-ttsfrd model folder
    (downloaded first) where the cp310 wheel or ttsfrd_dependency is needed. `cosy`: the
    recorded `cosy_facts()` and `wheels` the recorded `installable_wheels()` (both read here
    when not given)."""
    force = "--force-reinstall --no-deps"
    release = _release(version)
    req = f"ttsfrd=={version}" if release is not None and release > (0, 1, 0) \
        else "ttsfrd>0.1.0"
    wheel = _bundled(f"ttsfrd-{version}-*.whl", cosy) if release is not None else None
    dep = _bundled("ttsfrd_dependency-*.whl", cosy)
    if wheel is not None and (dep is not None or not dependency):
        paths = [str(wheel)] + ([str(dep)] if dependency and dep is not None else [])
        return (dists.pip_install(*paths, extra=force),)
    wheels = installable_wheels() if wheels is None else wheels
    cp310 = any("cp310" in w for w in wheels)
    if not dependency and not cp310:
        return (dists.pip_install(req, extra=f"{force} -f {FIND_LINKS}"),)
    reqs = [req] + (["ttsfrd_dependency"] if dependency else [])
    return steps(cmd("modelscope", "download", "--model", COSY_MODEL, "--local_dir", COSY_LOCAL),
                 dists.pip_install(*reqs, extra=f"{force} -f {FIND_LINKS} -f {COSY_LOCAL}"))


def _release(version: Optional[str]) -> Optional[tuple[int, ...]]:
    """A version's release numbers by `packaging` (None: no version, or it does not parse)."""
    from packaging.version import InvalidVersion, Version

    if version is None:
        return None
    try:
        return Version(version).release
    except InvalidVersion:
        return None


def target_python(ctx: Optional[Context]) -> str:
    """The interpreter to move to for the real ttsfrd: 3.8 when the stack also needs KAN-TTS
    (Requires-Python <3.9) or the recipe's Python range excludes 3.10, else 3.10."""
    if ctx is None:
        return "3.10"
    if ctx.needs("kantts") == "required":
        return "3.8"
    wanted = ((ctx.recipe or {}).get("requires") or {}).get("python")
    if wanted:
        if dists.spec_contains(str(wanted), "3.10.0") is False and \
                dists.spec_contains(str(wanted), "3.8.0"):
            return "3.8"
    return "3.10"


def _other_python_commands(ctx: Optional[Context] = None) -> tuple[str, ...]:
    if target_python(ctx) == "3.8":
        return steps(manual("python3.8", "-m", "venv", ".venv-ttsfrd"),
                     manual(".venv-ttsfrd/bin/python", "-m", "pip", "install",
                            "modelscope[audio]", "-f", FIND_LINKS))
    return steps(manual("python3.10", "-m", "venv", ".venv-ttsfrd"),
                 manual(".venv-ttsfrd/bin/python", "-m", "pip", "install", "cosyvoice-ttsfrd"),
                 manual(".venv-ttsfrd/bin/cosyvoice-post-install"))


def _platform_ok() -> bool:
    t = targets.current()
    return t.system == "Linux" and t.machine.lower() in ("x86_64", "amd64")


def _install_fix(reason: str, ctx: Optional[Context] = None,
                 wheels: Optional[list[str]] = None) -> Fix:
    commands = _real_install_commands(wheels)
    if commands:
        return Fix(f"{reason} Install the real build: ttsfrd is not on PyPI (only a "
                   "placeholder is); the real wheels come from ModelScope, or bundled in "
                   "PyPI's cosyvoice-ttsfrd for Python 3.10 (its post-install step installs "
                   "them and downloads the resources).".strip(), commands=commands)
    where = "Linux x86_64" if not _platform_ok() else f"CPython 3.8 or 3.10, not {_py_tag()}"
    py = target_python(ctx)
    via = ("modelscope[audio] from ModelScope's find-links brings ttsfrd 0.3.6 and KAN-TTS"
           if py == "3.8" else "cosyvoice-ttsfrd bundles ttsfrd 0.4.2")
    return Fix(f"{reason} Real ttsfrd wheels exist only for {where}: create a Python {py} "
               f"environment on Linux x86_64 (WSL on Windows; {via}), or use a stack that "
               "falls back to WeTextProcessing.".strip(),
               commands=_other_python_commands(ctx))


# --- ttsfrd.origin ------------------------------------------------------------------------

def collect_package(ctx: Context) -> dict[str, Any]:
    """The installed ttsfrd read from its metadata and files, without importing it
    (`inspect_package`: version, summary, compiled module, placeholder marks)."""
    return {"ttsfrd": inspect_package("ttsfrd"), "installable": installable_wheels()}


@probe("ttsfrd.origin", title="ttsfrd is installed, and is the real engine, not PyPI's "
       "placeholder", families=("T1", "T2"), collect=collect_package,
       component="ttsfrd")
def origin(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that ttsfrd is installed and is the real engine, not PyPI's placeholder.

    No finding when the recipe marks ttsfrd absent. Reads metadata and files only: the placeholder
    has PyPI's example summary, or no compiled module and at most one .py file. Not installed:
    `fail` when required, `warn` when the recipe names it, `skip` otherwise (importable without
    metadata: `ok`). The placeholder, or a build without a compiled module, fails. The fix
    uninstalls it and installs the real build: cosyvoice-ttsfrd and its post-install step on Python
    3.10, ModelScope's find-links on 3.8, or a new 3.8/3.10 venv elsewhere.
    """
    need = _need(ctx, "ttsfrd")
    info = dict(facts["ttsfrd"])
    wheels = list(facts.get("installable") or [])
    if not info["installed"]:
        if info["module"]:
            return ok(f"ttsfrd imports from {info['module']} (no distribution metadata)",
                      **info)
        if need == "required":
            return fail("ttsfrd is not installed, and the recipe needs it "
                        "(`No module named 'ttsfrd'`)",
                        _install_fix("The recipe's frontend imports ttsfrd.", ctx, wheels), **info)
        if need is not None:
            fix = _install_fix("The stack runs without ttsfrd (CosyVoice falls back to "
                               "WeTextProcessing, with weaker Chinese text normalisation).",
                               ctx, wheels)
            return warn("ttsfrd is not installed: the recipe treats it as optional and falls "
                        "back to WeTextProcessing", fix, **info)
        return skip("ttsfrd is not installed", **info)
    if info["placeholder"]:
        commands = steps(dists.pip_uninstall("ttsfrd"), *_install_fix("", ctx, wheels).commands)
        return fail(f"ttsfrd {info['version']} is PyPI's placeholder "
                    f"(\"{info['package_summary']}\", only hello(), no compiled engine): "
                    "not the real ttsfrd, a supply-chain risk; code that imports it fails on "
                    "TtsFrontendEngine",
                    Fix("Uninstall the placeholder, then install the real build from "
                        "ModelScope (or cosyvoice-ttsfrd's bundled wheels on Python 3.10); "
                        "never `pip install ttsfrd` from PyPI alone.", commands=commands),
                    **info)
    if not info["real"]:
        return fail(f"ttsfrd {info['version']} has no compiled module: not a real build",
                    Fix("Reinstall the real build.",
                        commands=steps(dists.pip_uninstall("ttsfrd"),
                                       *_install_fix("", ctx, wheels).commands)),
                    **info)
    via = ""
    if info.get("installer_url") and "cosyvoice_ttsfrd" in str(info["installer_url"]):
        via = ", installed from cosyvoice-ttsfrd's bundled wheel"
    return ok(f"ttsfrd {info['version']}: the real engine "
              f"({os.path.basename(info['compiled'])}){via}", **info)


# --- ttsfrd.platform ----------------------------------------------------------------------

@probe("ttsfrd.platform", title="A real ttsfrd wheel exists for this platform and interpreter",
       families=("T3", "T6"), collect=collect_package, component="ttsfrd")
def platform_tags(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that a real ttsfrd wheel exists for this platform and interpreter.

    No finding when the recipe marks ttsfrd absent. Compares the known real wheels (cp38 0.3.6 and
    cp310 0.4.2, linux_x86_64) with `packaging.tags.sys_tags()`: a real ttsfrd already installed, or
    a wheel that installs here, is `ok`. Otherwise it fails when the recipe requires ttsfrd, warns
    when the recipe names it or the placeholder is installed, and skips when nothing needs it. The
    fix is a Python 3.10 (3.8 with KAN-TTS) environment on Linux x86_64.
    """

    need = _need(ctx, "ttsfrd")
    info = dict(facts["ttsfrd"])
    wheels = list(facts.get("installable") or [])
    t = targets.current()
    details = {"python": t.version, "system": t.system,
               "machine": t.machine, "installable": wheels,
               "real_wheels": sorted(REAL_WHEELS)}
    if info.get("real"):
        return ok(f"the real ttsfrd {info['version']} is installed for this interpreter",
                  **details)
    if wheels:
        return ok(f"a real wheel installs here: {', '.join(wheels)}", **details)
    where = (f"{t.system} {t.machine}" if not _platform_ok()
             else f"CPython {_py_tag()}")
    summary = (f"no real ttsfrd wheel for {where}: they exist only for cp38 (0.3.6) and cp310 "
               "(0.4.2) on linux x86_64 (`not a supported wheel on this platform`)")
    fix = _install_fix("", ctx, wheels)
    py = target_python(ctx)
    details["target_python"] = py
    if need == "required":
        return fail(summary, Fix(f"Use Python {py} on Linux x86_64 (WSL on Windows) for this "
                                 "recipe. " + fix.description.strip(),
                                 commands=fix.commands), **details)
    if need is not None or info.get("placeholder"):
        return warn(summary, Fix(f"ttsfrd cannot be installed on this interpreter; use Python "
                                 f"{py} on Linux x86_64, or rely on the WeTextProcessing "
                                 "fallback.", commands=fix.commands), **details)
    return skip(summary + "; nothing here needs it", **details)


# --- ttsfrd.libs --------------------------------------------------------------------------

def collect_libs(ctx: Context) -> dict[str, Any]:
    """The installed ttsfrd (metadata and files), cosyvoice-ttsfrd's bundled wheels, and its
    compiled module's ELF: NEEDED, RPATH, RUNPATH and each needed library resolved as the
    loader would (found where, or missing), or why the file cannot be read."""
    from tts_doctor import elf

    info = inspect_package("ttsfrd")
    facts: dict[str, Any] = {"ttsfrd": info, "installable": installable_wheels(),
                             **cosy_facts()}
    so = info.get("compiled")
    if not so:
        return facts
    try:
        elfinfo = elf.read(so)
        res = elf.resolve(so)
    except (OSError, elf.NotELF, ValueError) as exc:
        facts["read_error"] = str(exc)
        return facts
    facts.update(needed=list(elfinfo.needed), rpath=list(elfinfo.rpath),
                 runpath=list(elfinfo.runpath), missing=dict(res.missing),
                 found=dict(res.found))
    return facts


@probe("ttsfrd.libs", title="The ttsfrd extension's shared libraries resolve (libre2.so.11)",
       families=("T7",), collect=collect_libs, component="ttsfrd")
def libs(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that the shared libraries the ttsfrd extension needs (libre2.so.11) resolve.

    No finding when the recipe marks ttsfrd absent; `skip` without a compiled module (placeholder,
    not installed). Reads the extension's ELF NEEDED, RPATH and RUNPATH and resolves them as the
    loader would, without importing it: all found is `ok`, any missing fails (an unreadable file
    fails with a reinstall of the real wheel: cosyvoice-ttsfrd's bundled one, or ModelScope's
    find-links, never PyPI's placeholder). The fix installs the ttsfrd_dependency wheel, which
    puts libre2.so.11 next to the extension: the one cosyvoice-ttsfrd bundles, or one fetched with
    `modelscope download` of iic/CosyVoice-ttsfrd.
    """
    info = dict(facts["ttsfrd"])
    wheels = list(facts.get("installable") or [])
    so = info.get("compiled")
    if not so:
        why = "is a placeholder" if info.get("placeholder") else "is not installed"
        return skip(f"ttsfrd {why}: no compiled module to check (see ttsfrd.origin)")
    if "read_error" in facts:
        return fail(f"cannot read {so}: {facts['read_error']}",
                    Fix("Reinstall the real ttsfrd build (from the wheel it came from: not "
                        "PyPI, which has only the 0.1.0 placeholder).",
                        commands=reinstall_commands(info.get("version"), cosy=facts,
                                                    wheels=wheels)),
                    module=so)
    missing: dict[str, Any] = dict(facts.get("missing") or {})
    found: dict[str, Any] = dict(facts.get("found") or {})
    details = {"module": so, "needed": list(facts.get("needed") or []),
               "rpath": list(facts.get("rpath") or []),
               "runpath": list(facts.get("runpath") or []), "missing": missing,
               "found": {k: v for k, v in found.items()
                         if not k.startswith(("libc.", "libm.", "libdl.", "libpthread.",
                                              "ld-linux", "libgcc_s", "librt."))}}
    if not missing:
        return ok(f"every library ttsfrd {info['version']} needs resolves "
                  f"({len(found)} found; libre2.so.11 at "
                  f"{found.get('libre2.so.11', 'n/a')})", **details)
    names = ", ".join(sorted(missing))
    bundled = _bundled("ttsfrd_dependency-*.whl", facts)
    if bundled is not None:
        commands: tuple[str, ...] = (dists.pip_install(str(bundled), extra="--no-deps"),)
        where = f"cosyvoice-ttsfrd bundles it: {bundled.name}"
    else:
        local = COSY_LOCAL
        commands = steps(cmd("modelscope", "download", "--model", COSY_MODEL, "--local_dir",
                             local),
                         dists.pip_install(f"{local}/ttsfrd_dependency-0.1-py3-none-any.whl",
                                           extra="--no-deps"))
        where = f"it ships next to the ttsfrd wheel in ModelScope's {COSY_MODEL}"
    fix = Fix(f"Install the ttsfrd_dependency wheel, which puts libre2.so.11 and libmvec.so.1 "
              f"next to the extension (its RPATH is $ORIGIN); {where}.", commands=commands)
    return fail(f"`import ttsfrd` fails: {names} cannot be found by the loader "
                f"(`{sorted(missing)[0]}: cannot open shared object file`)", fix, **details)


# --- ttsfrd.version -----------------------------------------------------------------------

def version_verdict(version: str) -> Optional[str]:
    """Why this ttsfrd version is too old, or None. 0.0.x answers `language type invalid:
    zhcn` to ModelScope's Sambert pipeline (modelscope#80)."""
    release = _release(version)
    if release is not None and release[:2] < (0, 1):
        return (f"ttsfrd {version} is too old: ModelScope's Sambert pipeline fails with "
                "`language type invalid: zhcn` (it needs >= 0.1)")
    return None


@probe("ttsfrd.version", title="ttsfrd is recent enough for ModelScope's Sambert pipeline",
       families=("T4",), collect=collect_package, component="ttsfrd")
def version(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that the installed ttsfrd is recent enough for ModelScope's Sambert pipeline.

    No finding when the recipe marks ttsfrd absent; `skip` when it is not installed or is the
    placeholder. Reads the version from metadata: below 0.1 fails (`language type invalid: zhcn`),
    and so does a version outside a specifier the recipe gives for ttsfrd; otherwise `ok`. The fix
    uninstalls ttsfrd and installs a current real build, or sets up a Python where one installs.
    """
    info = dict(facts["ttsfrd"])
    wheels = list(facts.get("installable") or [])
    if not info["installed"]:
        return skip("ttsfrd is not installed (see ttsfrd.origin)")
    if info["placeholder"]:
        return skip(f"ttsfrd {info['version']} is the PyPI placeholder: its version says "
                    "nothing (see ttsfrd.origin)", version=info["version"])
    problem = version_verdict(info["version"])
    wanted = ctx.version_range("ttsfrd")
    if not problem and wanted and wanted not in ("required", "optional", "absent", "shim"):
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            if not SpecifierSet(wanted).contains(info["version"], prereleases=True):
                problem = f"ttsfrd {info['version']} is outside the recipe's range {wanted}"
        except InvalidSpecifier:
            pass
    if problem:
        commands = _real_install_commands(wheels) or _other_python_commands(ctx)
        return fail(problem, Fix("Upgrade ttsfrd to a current real build.",
                                 commands=steps(dists.pip_uninstall("ttsfrd"), *commands)),
                    version=info["version"])
    return ok(f"ttsfrd {info['version']} is recent enough (>= 0.1)", version=info["version"])


# --- ttsfrd.engine (worker) ---------------------------------------------------------------

def collect_engine(ctx: Context) -> dict[str, Any]:
    """The installed ttsfrd (metadata and files), cosyvoice-ttsfrd's bundled wheels, what
    `import ttsfrd` raised (and its message), the module's file, whether it has
    `TtsFrontendEngine` (else its public attributes and sys.platform), what constructing one
    raised, and the engine's public methods."""
    info = inspect_package("ttsfrd")
    facts: dict[str, Any] = {"ttsfrd": info, "installable": installable_wheels(),
                             **cosy_facts()}
    if not info["installed"] and not info["module"]:
        return facts
    try:
        import ttsfrd
    except Exception as exc:
        facts.update(import_error=f"{type(exc).__name__}: {exc}", import_message=str(exc))
        return facts
    facts["module"] = str(getattr(ttsfrd, "__file__", ""))
    cls = getattr(ttsfrd, "TtsFrontendEngine", None)
    facts["has_engine"] = cls is not None
    if cls is None:
        facts.update(attributes=sorted(a for a in dir(ttsfrd) if not a.startswith("_")),
                     platform=sys.platform)
        return facts
    try:
        cls()
    except Exception as exc:
        facts["construct_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    facts["methods"] = sorted(a for a in dir(cls) if not a.startswith("_"))
    return facts


@probe("ttsfrd.engine", title="import ttsfrd and construct TtsFrontendEngine",
       memo=True, isolated=True, families=("T3",), component="ttsfrd",
       crash_fix=Fix("Importing ttsfrd crashed the process (`Illegal instruction` means the "
                     "build needs CPU instructions this machine lacks; a segfault, a broken "
                     "dependency wheel). Reinstall ttsfrd and ttsfrd_dependency from "
                     f"ModelScope (its find-links, and {COSY_MODEL} for the Python 3.10 "
                     "wheel): PyPI has only the placeholder.",
                     commands=REINSTALL_ANY),
       collect=collect_engine)
def engine(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that ttsfrd imports and that `TtsFrontendEngine()` constructs.

    No finding when the recipe marks ttsfrd absent; `skip` when it is neither installed nor
    importable. Imports ttsfrd in the worker: a missing shared library fails with a pointer to
    ttsfrd.libs; any other import error, a module without `TtsFrontendEngine` (the placeholder, or
    not Linux) or a constructor that raises fails; otherwise `ok` with the engine's methods. The
    fixes install the real build or force-reinstall the installed one with ttsfrd_dependency (from
    cosyvoice-ttsfrd's bundled wheels, or ModelScope: never PyPI, which has only the placeholder); a
    crash while importing is reported with a force-reinstall of both from ModelScope.
    """
    info = dict(facts["ttsfrd"])
    wheels = list(facts.get("installable") or [])
    if not info["installed"] and not info["module"]:
        return skip("ttsfrd is not installed (see ttsfrd.origin)")
    error = facts.get("import_error")
    if error:
        if "cannot open shared object file" in error:
            lib = str(facts.get("import_message") or "").split(":")[0]
            return fail(f"`import ttsfrd` fails: {error}",
                        Fix(f"{lib} is missing: install the ttsfrd_dependency wheel "
                            "(see ttsfrd.libs).",
                            commands=(manual("tts-doctor", "check", "--only", "ttsfrd.libs",
                                             "--python", dists.executable()),)),
                        error=error, module=info.get("compiled"))
        return fail(f"`import ttsfrd` fails: {error}"[:400],
                    Fix("Reinstall the real ttsfrd build.",
                        commands=steps(dists.pip_uninstall("ttsfrd"),
                                       *_install_fix("", ctx, wheels).commands)),
                    error=error)
    where = str(facts.get("module") or "")
    if not facts.get("has_engine"):
        attrs = list(facts.get("attributes") or [])
        what = ("PyPI's placeholder" if info.get("placeholder")
                else "not the real engine" if _platform_ok()
                else f"no engine on {facts.get('platform')}: ttsfrd is Linux-only")
        return fail(f"module 'ttsfrd' has no attribute 'TtsFrontendEngine' ({what}; it has "
                    f"{', '.join(attrs) or 'nothing'})",
                    Fix("Replace it with the real build.",
                        commands=steps(dists.pip_uninstall("ttsfrd"),
                                       *_install_fix("", ctx, wheels).commands)),
                    module=where, attributes=attrs)
    if facts.get("construct_error"):
        return fail(f"TtsFrontendEngine() raised {facts['construct_error']}"[:400],
                    Fix("Reinstall the real build, ttsfrd and its ttsfrd_dependency wheel "
                        "(not from PyPI, which has only the placeholder).",
                        commands=reinstall_commands(info.get("version"), dependency=True,
                                                    cosy=facts, wheels=wheels)),
                    module=where)
    methods = list(facts.get("methods") or [])
    return ok(f"ttsfrd imports and TtsFrontendEngine() constructs ({os.path.basename(where)})",
              module=where, methods=methods)


# --- ttsfrd.resource (worker) -------------------------------------------------------------


def _resource_candidates(ctx: Context) -> tuple[list[tuple[Path, str]], Optional[int]]:
    """(folder, where it comes from) in order of preference, and the index of the one that
    must exist even when none does (named by the user or the recipe, cosyvoice-ttsfrd's own
    folder, the recipe's ModelScope model), or None."""
    given = ctx.options.get("ttsfrd.resource") or ((ctx.recipe or {}).get("model") or {}).get(
        "resource")
    if given:
        source = "--set ttsfrd.resource" if ctx.options.get("ttsfrd.resource") else \
            "the recipe's model.resource"
        return [(Path(str(given)).expanduser(), source)], 0
    out: list[tuple[Path, str]] = []
    expected: Optional[int] = None
    cosy = _cosy_dir()
    if cosy is not None:
        out.append((cosy / "resource", "cosyvoice-ttsfrd's package folder"))
        expected = 0
    out.append((Path("pretrained_models") / "CosyVoice-ttsfrd" / "resource",
                "CosyVoice's pretrained_models"))
    cache = (ctx.recipe or {}).get("cache") or {}
    # a model that ships resource.zip (ModelScope's Sambert): the pipeline extracts it there
    if cache.get("hub") == "modelscope" and cache.get("repo") and \
            "resource.zip" in (cache.get("files") or []):
        repo = str(cache["repo"])
        if expected is None:
            expected = len(out)
        out += [(d / "resource", f"ModelScope cache of {repo}")
                for d in modelscope_model_dirs(repo)]
    out += [(d / "resource", f"ModelScope cache of {COSY_MODEL}")
            for d in modelscope_model_dirs(COSY_MODEL)]
    for root in modelscope_roots():
        try:
            for d in sorted(root.glob("*/*sambert*")):
                out.append((d / "resource", f"ModelScope cache of {d.parent.name}/{d.name}"))
        except OSError:
            continue
    return out, expected


def _zip_state(path: Path) -> dict[str, Any]:
    import zipfile

    state: dict[str, Any] = {"path": str(path), "bytes": path.stat().st_size}
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            state["members"] = len(z.namelist())
        state["ok"] = bad is None
        if bad is not None:
            state["error"] = f"bad CRC in member {bad}"
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
        state["ok"] = False
        state["error"] = f"{type(exc).__name__}: {exc}"
    return state


def _mark() -> int:
    """Where the worker's captured output ends now (-1: output is not captured to a file)."""
    import stat

    try:
        sys.stdout.flush()
        sys.stderr.flush()
        st = os.fstat(1)
        return st.st_size if stat.S_ISREG(st.st_mode) else -1
    except (OSError, ValueError):
        return -1


def _since(mark: int) -> str:
    """What native code printed since `mark` (C stdio flushed first)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:
        pass
    if mark < 0:
        return ""
    try:
        with open("/proc/self/fd/1", "rb") as f:
            f.seek(mark)
            return f.read(8000).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _resource_fix(folder: Path, source: str, zips: list[dict[str, Any]],
                  cosy: Optional[dict[str, Any]] = None, exists: Optional[bool] = None) -> Fix:
    """How to put the resource folder right. `cosy` (the recorded `cosy_facts()`) and
    `exists` (whether the folder exists) are read here when not given."""
    intact = next((z for z in zips if z.get("ok")), None)
    broken = next((z for z in zips if not z.get("ok")), None)
    target = str(folder.parent)
    extract = dists.command("-m", "zipfile", "-e", os.path.join(target, "resource.zip"), target)
    if intact is not None:
        return Fix(f"resource.zip is intact but not (fully) extracted: extract it so that "
                   f"{folder} holds the resource files.",
                   commands=(dists.command("-m", "zipfile", "-e", str(intact["path"]), target),))
    cosy = cosy if cosy is not None else cosy_facts()
    if exists is None:
        exists = folder.exists()
    if cosy.get("cosy_dir") and folder == Path(cosy["cosy_dir"]) / "resource":
        commands: tuple[str, ...] = steps(
            *((manual("rm", "-rf", str(folder)),) if exists else ()),
            cmd(os.path.join(_bindir(), "cosyvoice-post-install")))
        what = (f"cosyvoice-post-install downloads resource.zip ({COSY_RESOURCE_URL}) and "
                "extracts it there")
    elif "ModelScope cache of" in source and COSY_MODEL not in source:
        repo = source.split("ModelScope cache of ", 1)[1]
        commands = steps(cmd("modelscope", "download", "--model", repo, "resource.zip",
                             "--local_dir", target), extract)
        what = f"download resource.zip of {repo} again and extract it"
    else:
        commands = steps(cmd("modelscope", "download", "--model", COSY_MODEL, "--local_dir",
                             target), extract)
        what = f"download {COSY_MODEL} (it holds resource.zip) and extract it"
    lead = ""
    if broken is not None:
        lead = f"resource.zip is corrupt ({broken.get('error')}): delete it; "
        commands = steps(manual("rm", "-f", str(broken["path"])), *commands)
    return Fix(f"{lead}{what}. Or point the doctor at the folder your code passes to "
               "initialize(): --set ttsfrd.resource=DIR.", commands=commands)


def _frontend_call(eng: Any, lang: str) -> str:
    if lang == "pinyinvg":
        return str(eng.do_voicegen_frd(SAMPLE_TEXT) or "")
    return str(eng.gen_tacotron_symbols(SAMPLE_TEXT) or "")


def collect_resource(ctx: Context) -> dict[str, Any]:
    """Where ttsfrd's resource folder is and what the engine makes of it.

    The places searched (in order, with where each comes from), the one chosen (the first
    that exists or has a resource.zip beside it, else the one that must exist, else, with a
    real engine and nothing anywhere, CosyVoice's default: `nowhere`), whether it exists and
    is a folder, its entries, each resource.zip next to it CRC-tested, the installed ttsfrd
    and cosyvoice-ttsfrd's bundled wheels; with the real engine, what `initialize()` returned,
    the language type that loads, what the frontend returns for a sample sentence, what the
    C++ code printed and what raised."""
    candidates, expected = _resource_candidates(ctx)
    for p, _ in candidates:  # what appears there decides (tts_doctor.memo)
        footprint.depends(str(p), depth=1)
        footprint.depends(str(p.parent / "resource.zip"))
    # the folder a zip sits next to also counts: "present but not extracted" is a verdict
    found = next(((p, s) for p, s in candidates
                  if p.exists() or (p.parent / "resource.zip").is_file()), None)
    if found is None and expected is not None:
        found = candidates[expected]
    folder, source = found if found is not None else (None, "")
    info = inspect_package("ttsfrd")
    facts: dict[str, Any] = {"candidates": [[str(p), s] for p, s in candidates],
                             "ttsfrd": info, **cosy_facts()}
    if folder is None:
        if not info.get("real"):
            return facts
        # A real engine and no resource anywhere the known stacks look: initialize() will
        # fail. Judge CosyVoice's default folder (what its frontend passes to initialize()).
        facts["nowhere"] = True
        folder, source = next((p, s) for p, s in candidates
                              if s == "CosyVoice's pretrained_models")
    entries: list[str] = []
    if folder.is_dir():
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            entries = []
    zips = []
    for z in (folder / "resource.zip", folder.parent / "resource.zip"):
        if z.is_file():
            zips.append(_zip_state(z))
    facts.update(folder=str(folder), source=source, exists=folder.exists(),
                 is_dir=folder.is_dir(), entries=entries, zips=zips)
    if not info.get("real"):
        return facts
    # the C++ engine reads the folder itself, unseen by the footprint: observed every time
    footprint.volatile("ttsfrd's engine reads its resource folder")
    # the engine's own verdict: initialize() in this (worker) process
    init: Optional[bool] = None
    output = ""
    lang_ok: Optional[str] = None
    frd = ""
    engine_error = None
    try:
        import ttsfrd

        eng = ttsfrd.TtsFrontendEngine()
        mark = _mark()
        init = bool(eng.initialize(str(folder)))
        if init:
            wanted = ctx.options.get("ttsfrd.lang") or ((ctx.recipe or {}).get("model")
                                                        or {}).get("lang_type")
            for lang in ([str(wanted)] if wanted else list(LANG_TYPES)):
                if eng.set_lang_type(lang):
                    lang_ok = lang
                    break
            if lang_ok:
                frd = _frontend_call(eng, lang_ok)
        output = _since(mark)
    except Exception as exc:
        engine_error = f"{type(exc).__name__}: {exc}"
    facts.update(initialize=init, lang_type=lang_ok, frontend_output=frd,
                 native_output=output[-8000:], engine_error=engine_error)
    return facts


@probe("ttsfrd.resource", title="ttsfrd's resource folder is present, intact, and "
       "initialize() accepts it", isolated=True, families=("T5",), timeout=120,
       component="ttsfrd",
       crash_fix=Fix("TtsFrontendEngine.initialize() crashed on this resource folder: its "
                     "files are corrupt or from another ttsfrd release. Extract resource.zip "
                     "again (see ttsfrd.resource's details for the folder).",
                     commands=(manual("tts-doctor", "check", "--only", "ttsfrd.resource",
                                      "-v"),)),
       collect=collect_resource, memo=True)
def resource(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks ttsfrd's resource folder: present, intact, and accepted by `initialize()`.

    No finding when the recipe marks ttsfrd absent. Searches `--set ttsfrd.resource`, the recipe's
    model.resource, cosyvoice-ttsfrd's folder, pretrained_models and the ModelScope caches;
    CRC-tests any resource.zip next to it; with the real engine, calls `initialize()` in the worker,
    sets a language type and runs a sample sentence, keeping what the C++ code prints. Problems fail
    (warn when ttsfrd is optional); no folder or no engine: `skip` (no folder fails when required).
    The fix extracts resource.zip, or downloads it again.
    """
    need = _need(ctx, "ttsfrd")
    candidates = [(Path(p), str(src)) for p, src in facts.get("candidates") or []]
    details: dict[str, Any] = {"searched": [str(p) for p, _ in candidates][:12]}
    info = dict(facts["ttsfrd"])
    if not facts.get("folder"):
        return skip("no ttsfrd engine and no resource folder (see ttsfrd.origin)",
                    **details)
    nowhere = bool(facts.get("nowhere"))
    if nowhere:
        details["nowhere"] = True
    folder, source = Path(facts["folder"]), str(facts.get("source") or "")
    details.update(folder=str(folder), source=source)
    entries = list(facts.get("entries") or [])
    details["entries"] = entries[:20]
    zips = list(facts.get("zips") or [])
    details["zips"] = zips
    problems = []
    if not facts.get("exists"):
        problems.append(f"{folder} does not exist")
    elif not facts.get("is_dir"):
        problems.append(f"{folder} is not a folder")
    elif not [e for e in entries if e != "resource.zip"]:
        problems.append(f"{folder} is empty" + (" (only resource.zip)" if entries else ""))
    for z in zips:
        if not z["ok"]:
            problems.append(f"{z['path']} is corrupt: {z['error']}")

    init: Optional[bool] = facts.get("initialize")
    output = str(facts.get("native_output") or "")
    lang_ok: Optional[str] = facts.get("lang_type")
    frd = str(facts.get("frontend_output") or "")
    engine_error = facts.get("engine_error")
    details.update(initialize=init, lang_type=lang_ok, frontend_output=frd[:200],
                   native_output=output[-1500:], engine_error=engine_error)
    if engine_error and init is None:
        details["note"] = "the engine did not load (see ttsfrd.engine)"
    native = f" (C++: {_first_line(output)})" if output else ""
    fix = _resource_fix(folder, source, zips, facts, bool(facts.get("exists")))
    weak = need == "optional"
    if init is False:
        problems.insert(0, f"TtsFrontendEngine().initialize() returned False{native}")
    elif init and not lang_ok:
        problems.insert(0, "initialize() returned True but no language type loads "
                        f"({', '.join(LANG_TYPES)}){native}")
    if problems and nowhere:
        summary = (f"ttsfrd {info.get('version') or ''} is installed but no resource folder "
                   f"exists anywhere the known stacks look ({len(candidates)} places, "
                   f"CosyVoice's default {folder} among them): initialize() fails there"
                   f"{native}").replace("ttsfrd  is", "ttsfrd is")
        return (fail if need == "required" else warn)(summary[:500], fix, **details)
    if problems:
        summary = "ttsfrd resource invalid: " + "; ".join(problems)
        return (warn if weak else fail)(summary[:500], fix, **details)
    if init is None:
        return skip(f"resource folder {folder} looks complete ({len(entries)} entries), but "
                    "the engine does not load here to initialize() it (see ttsfrd.engine)",
                    **details)
    if not frd.strip():
        return warn(f"initialize() and set_lang_type({lang_ok!r}) succeed, but the frontend "
                    f"returns nothing for a sample sentence{native}", fix, **details)
    return ok(f"initialize({folder}) returned True; lang type {lang_ok}; the frontend "
              f"processes a sample sentence", **details)


def _first_line(output: str) -> str:
    """The most telling line the engine printed: a failure if there is one."""
    lines = [x.strip() for x in output.splitlines() if x.strip()]
    for line in lines:
        if any(w in line.lower() for w in ("fail", "not found", "invalid", "error")):
            return line[:160]
    return lines[0][:160] if lines else ""


# --- KAN-TTS ------------------------------------------------------------------------------

def collect_kantts(ctx: Context) -> dict[str, Any]:
    """The installed kantts read from its metadata and files, without importing it."""
    return {"kantts": inspect_package("kantts")}


@probe("ttsfrd.kantts", title="KAN-TTS (kantts) is the real package, on a Python it supports",
       families=("T2", "T8"), collect=collect_kantts, component="kantts")
def kantts(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that KAN-TTS (kantts) is the real package, on a Python its metadata accepts.

    No finding when the recipe marks kantts absent. Reads metadata and files only: not installed
    fails when required, warns when the recipe names it, else skips; PyPI's placeholder (its
    summary, or at most one .py file) fails; a `Requires-Python` that rejects this interpreter warns
    (installed past its gate); otherwise `ok`. The fix installs modelscope[audio] from ModelScope's
    find-links, here on Python 3.8, else in a new Python 3.8 venv.
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    need = _need(ctx, "kantts")
    info = dict(facts["kantts"])
    py = targets.current().version
    on38 = targets.current().version_info[:2] == (3, 8)
    install = ((dists.pip_install("modelscope[audio]", extra=f"-f {FIND_LINKS}"),) if on38
               else steps(manual("python3.8", "-m", "venv", ".venv-kantts"),
                          manual(".venv-kantts/bin/python", "-m", "pip", "install",
                                 "modelscope[audio]", "-f", FIND_LINKS)))
    how = ("KAN-TTS declares Requires-Python <3.9: it installs only into a Python 3.8 "
           "environment, from ModelScope's find-links (modelscope[audio] pulls it with the "
           "real ttsfrd).")
    if not info["installed"]:
        if need == "required":
            return fail("kantts is not installed (`No module named 'kantts'`), and the recipe "
                        "needs it (the Sambert pipeline imports KAN-TTS)",
                        Fix(how, commands=install), python=py)
        if need is not None:
            return warn("kantts is not installed; the recipe lists it as optional",
                        Fix(how, commands=install), python=py)
        return skip("kantts is not installed", python=py)
    if info["placeholder"]:
        return fail(f"kantts {info['version']} is PyPI's placeholder "
                    f"(\"{info['package_summary']}\", only hello()): not KAN-TTS, a "
                    "supply-chain risk",
                    Fix("Uninstall the placeholder; " + how,
                        commands=steps(dists.pip_uninstall("kantts"), *install)), **info)
    spec = info.get("requires_python")
    if spec:
        try:
            accepted = SpecifierSet(spec).contains(py, prereleases=True)
        except InvalidSpecifier:
            accepted = True
        if not accepted:
            return warn(f"kantts {info['version']} declares Requires-Python {spec} but runs on "
                        f"Python {py}: installed past its gate, untested here",
                        Fix(how, commands=install), **info)
    return ok(f"kantts {info['version']} (KAN-TTS) is installed", **info)
