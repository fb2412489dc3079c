"""Lazy post-import hooks: patch SciPy the moment user code imports it, and not before.

This module is standard-library only (CPython 3.7+) and imports nothing at module level but
`sys`. `install()` puts one `ShimFinder` first on `sys.meta_path`. The finder answers None
for every module except the few it watches (`scipy.signal`, `scipy.integrate`,
`scipy.linalg`, `scipy.stats`); for those it lets the normal finders find the module, and
wraps the loader so that, right after the module has executed (before `import` returns to
the caller, so `from scipy.signal import kaiser` works), the shims for it are applied. Shim
code is loaded only then.

Where the shim code comes from: `tts-doctor shims install` copies this package (the files
in `PAYLOAD`) into the target environment's site-packages, into a folder named
`_tts_doctor_shims-<hash>` (a hyphen: not an importable name, so the environment gains no
importable package and nothing shadows a package of the user's), and writes a `.pth` that
records that folder and the sha256 of every file in it. The copy is loaded by path under the
private module name `_tts_doctor_shims`; nothing is added to `sys.path`. The installed shims
depend on nothing of the doctor's: uninstalling, moving or deleting the doctor (pipx, a
multi-stage Docker build) leaves them working.

Start-up cost: the `.pth` line runs `BOOT` (below, a few lines). BOOT registers a
`LazyShimFinder` that does nothing until a watched module is imported; only then are the
recorded files checked against their sha256, this file compiled and the real `ShimFinder`
put in its place. A Python process that never imports SciPy pays for parsing one line.

Failure is silent and recorded, never an import error: if the copy is missing, damaged
(a sha256 differs) or fails to patch, SciPy is left exactly as SciPy made it, no warning is
emitted (so `python -W error` still imports SciPy), and the reason is kept in the finder's
`errors`, where `tts-doctor check` (probe `shims.installed`) and `tts-doctor shims status`
read it and report a failure with the fix.

`TTS_DOCTOR_SHIMS=0` in the environment makes `install()` (and BOOT) do nothing for that
process.
"""

import sys

FINDER_MARK = "__tts_doctor_shims_finder__"
PRIVATE_NAME = "_tts_doctor_shims"
ENV_SWITCH = "TTS_DOCTOR_SHIMS"

# module imported by user code -> shims that act on it
WATCH = {
    "scipy.signal": ("scipy_names", "resample"),
    "scipy.integrate": ("scipy_names",),
    "scipy.linalg": ("scipy_names",),
    "scipy.stats": ("scipy_names",),
}
# shim -> submodule of the shims package with patch(module) / unpatch(module)
PATCHERS = {"scipy_names": "scipy_names", "resample": "resample"}

# The files of this package that `shims install` copies into an environment (the code the
# hooked shims need; mel is a library shim and needs torch, so it is not copied).
PAYLOAD = ("__init__.py", "_hooks.py", "scipy_names.py", "resample.py")

# Run by the .pth line at start-up with globals SHIMS, ROOT (the folder of the installed
# copy), FILES (its file names -> sha256), WATCH (the keys above), PTH (the .pth file) and
# LOAD (below). Kept tiny: compiling is most of its cost. Standard library only; CPython 3.7+.
BOOT = """\
import os, sys
if (os.environ.get("TTS_DOCTOR_SHIMS", "").strip().lower() not in ("0", "false", "off", "no")
        and not any(hasattr(f, "__tts_doctor_shims_finder__") for f in sys.meta_path)):
    # (the check: site may read one folder twice, e.g. through a lib64 -> lib link)
    class LazyShimFinder:
        __tts_doctor_shims_finder__ = lazy = True
        shims, root, files, pth, errors = set(SHIMS), ROOT, dict(FILES), PTH, []

        def find_spec(self, fullname, path=None, target=None):
            if fullname in WATCH and self.shims:
                exec(LOAD, globals())
                return load(self, fullname, path, target)

    sys.meta_path.insert(0, LazyShimFinder())
"""

# Compiled on the first import of a watched module: check the installed copy against the
# recorded sha256s, run its _hooks.py and hand over to its ShimFinder. Any problem: the lazy
# finder switches itself off and records why (no warning: `-W error` must not break SciPy).
LOAD = """\
def load(lazy, fullname, path, target):
    try:
        module = sys.modules.get("_tts_doctor_shims._hooks")
        root = lazy.root
        if module is None:
            if not os.path.isdir(root):  # the environment was moved: look beside sys.path
                name = os.path.basename(root)
                root = next((os.path.join(p, name) for p in sys.path
                             if os.path.isdir(os.path.join(p, name))), root)
            import hashlib
            code = None
            for rel in sorted(lazy.files):
                source = os.path.join(root, rel)
                with open(source, "rb") as fh:
                    data = fh.read()
                if hashlib.sha256(data).hexdigest() != lazy.files[rel]:
                    raise ImportError(source + " is not the file tts-doctor installed "
                                      "(its sha256 differs)")
                if rel == "_hooks.py":
                    code = compile(data, source, "exec")
            if code is None:
                raise ImportError("no _hooks.py among the installed files")
            module = type(sys)("_tts_doctor_shims._hooks")
            module.__file__ = os.path.join(root, "_hooks.py")
            exec(code, module.__dict__)
            sys.modules["_tts_doctor_shims._hooks"] = module
        finder = module.install(sorted(lazy.shims), root)
    except Exception as exc:
        lazy.shims = set()
        lazy.errors.append("cannot load the installed shims (" + type(exc).__name__ + ": "
                           + str(exc) + "); SciPy is left as it is. Reinstall them "
                           "(tts-doctor shims install --python " + sys.executable + ") or "
                           "remove them (tts-doctor shims uninstall, or delete " + lazy.pth
                           + " and " + lazy.root + ")")
        return None
    return finder.find_spec(fullname, path, target) if finder is not None else None
"""


def disabled():
    """Whether TTS_DOCTOR_SHIMS=0 (or false/off/no) turns the shims off for this process."""
    import os

    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("0", "false", "off", "no")


class _PatchingLoader:
    """Delegates to the real loader; after exec_module, applies the shims and steps aside."""

    def __init__(self, inner, finder):
        self._inner = inner
        self._finder = finder

    def create_module(self, spec):
        create = getattr(self._inner, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        self._inner.exec_module(module)
        # put the real loader back, so the module looks exactly as it would without us
        module.__loader__ = self._inner
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._inner
        self._finder.apply(module)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class ShimFinder:
    """A meta-path finder that only ever wraps the loaders of the modules in WATCH."""

    def __init__(self, shims, root=None, package=None):
        self.shims = set(shims)
        self.root = root
        self.package = package
        self.applied = {}  # module name -> [names patched]
        self.errors = []
        self._busy = set()
        setattr(self, FINDER_MARK, True)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in WATCH or fullname in self._busy:
            return None
        if not self.shims.intersection(WATCH[fullname]):
            return None
        self._busy.add(fullname)
        try:
            spec = None
            for finder in sys.meta_path:
                if getattr(finder, FINDER_MARK, False):
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, self)
        return spec

    # -- applying ------------------------------------------------------------------------

    def load_package(self):
        """The shims package: the one `activate()` passed, else the installed copy at root,
        loaded by path under the private name `_tts_doctor_shims` (nothing added to
        sys.path)."""
        if self.package is not None:
            return self.package
        mod = sys.modules.get(PRIVATE_NAME)
        if mod is not None and getattr(mod, "__tts_doctor_shims__", False):
            self.package = mod
            return mod
        import importlib.util
        import os

        if not self.root:
            raise ImportError("the tts-doctor shims package is not importable here")
        init = os.path.join(self.root, "__init__.py")
        if not os.path.exists(init):
            raise ImportError("the tts-doctor shims package is gone from " + self.root)
        spec = importlib.util.spec_from_file_location(PRIVATE_NAME, init,
                                                      submodule_search_locations=[self.root])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PRIVATE_NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(PRIVATE_NAME, None)
            raise
        self.package = module
        return module

    def apply(self, module):
        """Apply the shims watching `module` (idempotent); problems are recorded in
        `errors`, and the module is left as it was."""
        name = module.__name__
        wanted = [s for s in WATCH.get(name, ()) if s in self.shims]
        if not wanted or disabled():
            return []
        done = []
        try:
            package = self.load_package()
            import importlib

            for shim in wanted:
                patcher = importlib.import_module(f"{package.__name__}.{PATCHERS[shim]}")
                done += patcher.patch(module)
        except Exception as exc:
            # silent on purpose: a warning here would make `import scipy.signal` fail under
            # `python -W error`; tts-doctor check reads `errors` and reports it
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        self.applied.setdefault(name, [])
        self.applied[name] += [n for n in done if n not in self.applied[name]]
        return done

    def add(self, shims):
        """Watch more shims; modules already imported are patched now."""
        self.shims.update(shims)
        for name in WATCH:
            module = sys.modules.get(name)
            if module is not None:
                self.apply(module)


def active_finder():
    """The finder on sys.meta_path (from the .pth or from activate()), or None. It may be the
    .pth's LazyShimFinder (attribute `lazy`) until a watched module has been imported."""
    for finder in sys.meta_path:
        if getattr(finder, FINDER_MARK, False):
            return finder
    return None


def install(shims, root=None, package=None):
    """Register the hooks for `shims` (idempotent); returns the finder, or None if disabled.

    Called by the `.pth` line at start-up (with `root`) and by `shims.activate()` (with the
    package). Modules already imported are patched at once.
    """
    if disabled():
        return None
    shims = set(shims)
    for lazy in [f for f in sys.meta_path if getattr(f, "lazy", False)]:
        # the .pth's placeholder (one per site folder holding the .pth): take its place
        sys.meta_path.remove(lazy)
        shims.update(lazy.shims)
        root = root or lazy.root
    finder = active_finder()
    if finder is None:
        finder = ShimFinder(shims, root, package)
        sys.meta_path.insert(0, finder)
    elif package is not None and finder.package is None:
        finder.package = package
    finder.add(shims)
    return finder
