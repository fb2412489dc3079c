"""What the shims see in an environment: removed names still missing, names restored, who
`scipy.signal.resample` is. Standard library only (Python 3.9), so that `tts-doctor shims
status` can run this file by path in an interpreter where the shims package is not
importable (`python -c "runpy.run_path(...)"`), and the `shims.installed` probe can import it.
"""

import importlib
import sys

MARK = "__tts_doctor_shim__"


def _resolve(dotted):
    module, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except Exception:
        return None


def scan(table):
    """table: {"modules": {module: {removed name: dotted home}}}. For scipy.signal, every
    name of scipy.signal.windows is added (the window functions SciPy 1.13 removed)."""
    finder = next((f for f in sys.meta_path if getattr(f, "__tts_doctor_shims_finder__", False)),
                  None)
    out = {"executable": sys.executable, "modules": {},
           "hooks": None if finder is None else {"shims": sorted(finder.shims),
                                                 "root": getattr(finder, "root", None)}}
    for modname, names in table["modules"].items():
        try:
            module = importlib.import_module(modname)
        except Exception as exc:
            out["modules"][modname] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        names = dict(names)
        if modname == "scipy.signal":
            try:
                windows = importlib.import_module("scipy.signal.windows")
                for n in getattr(windows, "__all__", ()):
                    if n != "get_window":
                        names.setdefault(n, "scipy.signal.windows." + n)
            except Exception:
                pass
        state = {"missing": [], "shimmed": [], "unfixable": []}
        for name, home in sorted(names.items()):
            try:
                value = getattr(module, name)
            except Exception:
                value = None
            mark = getattr(value, MARK, None)
            if value is not None and mark is None:
                continue  # the real thing
            if _resolve(home) is None:
                state["unfixable"].append(name)
            elif mark:
                state["shimmed"].append(name)
            else:
                state["missing"].append(name)
        if modname == "scipy.signal":
            fn = getattr(module, "resample", None)
            state["resample"] = None if fn is None else (getattr(fn, MARK, None) or "scipy")
        out["modules"][modname] = state
    out["errors"] = list(getattr(finder, "errors", []) or [])
    return out
