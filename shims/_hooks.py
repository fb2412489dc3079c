"""Lazy post-import hooks: patch SciPy the moment user code imports it, and not before.

This module is standard-library only and imports nothing at module level but `sys`: the
`.pth` file that `tts-doctor shims install` writes reads and runs it (as the module
`_tts_doctor_shims_hooks`) in processes of that environment, so it may rely on nothing else
being importable there. `install()` puts one `ShimFinder` first on `sys.meta_path`. The
finder answers None for every module except the few it watches (`scipy.signal`,
`scipy.integrate`, `scipy.linalg`, `scipy.stats`); for those it lets the normal finders
find the module, and wraps the loader so that, right after the module has executed (before
`import` returns to the caller, so `from scipy.signal import kaiser` works), the shims for
it are applied. Shim code is loaded only then.

Where the shim code comes from: the `.pth` records the folder of the doctor's `shims`
package (`root`). If `import shims` finds that same folder (the doctor is installed in this
environment, or the doctor's worker put it on the path), it is imported normally. Otherwise
the package is loaded from `root` under the private name `_tts_doctor_shims`, without adding
anything to `sys.path`: the environment gains no importable package, and a `shims` package
of the user's own is never shadowed. If the folder is gone (the doctor was removed or
moved), the import of SciPy still succeeds and one RuntimeWarning says what happened and how
to remove the `.pth`.

Start-up cost: the `.pth` line runs `BOOT` (below, a few lines). BOOT registers a
`LazyShimFinder` that does nothing until a watched module is imported; only then is this
file read from the shims folder and compiled (about 1 ms) and the real `ShimFinder` put in
its place. A Python process that never imports SciPy pays for parsing one short line.

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

# Run by the .pth line at start-up with globals SHIMS, ROOT (the shims package folder), WATCH
# (the keys above), PTH (the .pth file) and LOAD (below). Kept tiny: compiling is most of its
# cost. Standard library only; Python 3.9 syntax.
BOOT = """\
import os, sys
if (os.environ.get("TTS_DOCTOR_SHIMS", "").strip().lower() not in ("0", "false", "off", "no")
        and not any(hasattr(f, "__tts_doctor_shims_finder__") for f in sys.meta_path)):
    # (the check: site may read one folder twice, e.g. through a lib64 -> lib link)
    class LazyShimFinder:
        __tts_doctor_shims_finder__ = lazy = True
        shims, root, pth, errors = set(SHIMS), ROOT, PTH, []

        def find_spec(self, fullname, path=None, target=None):
            if fullname in WATCH:
                exec(LOAD, globals())
                return load(self, fullname, path, target)

    sys.meta_path.insert(0, LazyShimFinder())
"""

# Compiled on the first import of a watched module: read this file from ROOT, run it as the
# module _tts_doctor_shims_hooks, and hand over to its ShimFinder.
LOAD = """\
def load(lazy, fullname, path, target):
    module = sys.modules.get("_tts_doctor_shims_hooks")
    if module is None:
        source = os.path.join(lazy.root, "_hooks.py")
        try:
            with open(source, "rb") as fh:
                code = compile(fh.read(), source, "exec")
        except OSError as exc:
            if lazy in sys.meta_path:
                sys.meta_path.remove(lazy)
            import warnings
            warnings.warn("tts-doctor shims: cannot load " + source + " (" + str(exc) + "); "
                          + fullname + " is left as SciPy made it. The shims' code is gone: "
                          "remove them with `tts-doctor shims uninstall --python "
                          + sys.executable + "`, or delete " + lazy.pth, RuntimeWarning,
                          stacklevel=3)
            return None
        module = type(sys)("_tts_doctor_shims_hooks")
        module.__file__ = source
        exec(code, module.__dict__)
        sys.modules["_tts_doctor_shims_hooks"] = module
    finder = module.install(sorted(lazy.shims), lazy.root)
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
        """The shims package: imported normally if it is the doctor's, else from root."""
        if self.package is not None:
            return self.package
        for name in ("shims", PRIVATE_NAME):
            mod = sys.modules.get(name)
            if mod is not None and getattr(mod, "__tts_doctor_shims__", False):
                self.package = mod
                return mod
        import importlib
        import importlib.util
        import os

        root = os.path.realpath(self.root) if self.root else None
        spec = importlib.util.find_spec("shims") if "shims" not in sys.modules else None
        if spec is not None and spec.origin and (
                root is None or os.path.realpath(os.path.dirname(spec.origin)) == root):
            self.package = importlib.import_module("shims")
            return self.package
        if root is None:
            raise ImportError("the tts-doctor shims package is not importable here")
        init = os.path.join(root, "__init__.py")
        if not os.path.exists(init):
            raise ImportError(f"the tts-doctor shims package is gone from {root}")
        spec = importlib.util.spec_from_file_location(PRIVATE_NAME, init,
                                                      submodule_search_locations=[root])
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
        """Apply the shims watching `module` (idempotent); problems become one warning."""
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
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            import warnings

            where = self.root or "the shims package"
            warnings.warn(
                f"tts-doctor shims could not patch {name} ({type(exc).__name__}: {exc}); it "
                f"is left as SciPy made it. The shims were installed from {where}; reinstall "
                "them (tts-doctor shims install) or remove them (tts-doctor shims uninstall "
                f"--python {sys.executable}).", RuntimeWarning, stacklevel=2)
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
