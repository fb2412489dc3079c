"""Shims that replace broken calls: resample, SciPy's removed names, a mel extractor.

Two kinds:

- **hooked** shims patch a library when user code imports it, so unmodified code works:
  `scipy_names` (the names SciPy removed, as forwards to their new homes: it only adds what
  is missing, the default) and `resample` (replaces a *working* `scipy.signal.resample` with a
  band-limited resampler whose results differ from SciPy's: an explicit opt-in only, never a
  default and never applied by `tts-doctor fix`). `tts-doctor shims install` makes them
  permanent for an environment (a `.pth` file and a private copy of this code);
  `shims.activate()` does the same for the running process only.
- **library** shims are used from code: `shims.mel.MelSpectrogram` (torchaudio's mel
  spectrogram without torchaudio), `shims.resample.resample(x, orig_sr, target_sr)`.

Importing this package imports nothing heavy (no numpy, scipy or torch): the submodules do,
when they are used. Every object a shim adds to a library carries the attribute
``__tts_doctor_shim__`` naming the shim, so `tts-doctor check` reports it as shimmed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, Optional

__tts_doctor_shims__ = True

HOOKED: dict[str, str] = {
    "scipy_names": "names SciPy removed (scipy.signal.hann, kaiser, ...; scipy.integrate."
                   "simps, trapz, cumtrapz; ...) restored as forwards to their new homes",
    "resample": "OPT-IN: replaces scipy.signal.resample (a working function) with a "
                "band-limited resampler (soxr, else SciPy's polyphase filter), fast for every "
                "length; its results differ from SciPy's FFT method",
}
# What `tts-doctor shims install` and `activate()` install when no name is given, and the only
# hooked shims `tts-doctor fix` applies: the shims that add what is missing and never replace
# a working function.
DEFAULT = ("scipy_names",)
# Hooked shims that replace a working function (its results change): installed only when
# named, never by `fix` (which prints them as a recommendation). name -> what changes.
OPT_IN: dict[str, str] = {
    "resample": "scipy.signal.resample(x, num) is computed by a band-limited resampler "
                "instead of SciPy's FFT method: faster on lengths with large prime factors, "
                "but the numbers differ (the FFT method treats the signal as periodic, the "
                "resampler as silence outside it; a 3-cycle periodic sine from 100 to 250 "
                "samples is off by about 1.7e-2 at the ends, where SciPy is exact), and "
                "SciPy's own resample tests fail with it",
}
LIBRARY: dict[str, str] = {
    "mel": "used from code: from tts_doctor.shims.mel import MelSpectrogram (torchaudio's "
           "semantics, pure torch when torchaudio does not load)",
}
ALL = (*HOOKED, *LIBRARY)


def _hook_module() -> Any:
    from . import _hooks

    return _hooks


def activate(names: Optional[Iterable[str]] = None) -> dict[str, Any]:
    """Turn hooked shims on in this process (the DEFAULT ones when `names` is None; opt-in
    shims such as `resample` only when named).

    What `tts-doctor shims install` does for every process of an environment, for users who
    prefer code: SciPy modules imported later are patched on import, ones already imported
    are patched now. Honours TTS_DOCTOR_SHIMS=0 (then nothing happens). Returns `status()`.
    """
    chosen = list(DEFAULT) if names is None else list(names)
    unknown = [n for n in chosen if n not in HOOKED]
    if unknown:
        library = [n for n in unknown if n in LIBRARY]
        hint = f" ({', '.join(library)}: {LIBRARY[library[0]]})" if library else ""
        raise ValueError(f"unknown hooked shim(s) {', '.join(map(repr, unknown))}{hint}; "
                         f"valid: {', '.join(HOOKED)}")
    _hook_module().install(chosen, package=sys.modules[__name__])
    return status()


def deactivate() -> list[str]:
    """Remove the hooks from this process and undo every patch they made; returns the names
    removed. (A `.pth` installed in the environment activates them again in new processes.)"""
    hooks = _hook_module()
    removed: list[str] = []
    finder = hooks.active_finder()
    while finder is not None:
        sys.meta_path.remove(finder)
        finder = hooks.active_finder()
    import importlib

    for name in hooks.WATCH:
        module = sys.modules.get(name)
        if module is None:
            continue
        for shim in hooks.WATCH[name]:
            patcher = importlib.import_module(f"{__name__}.{hooks.PATCHERS[shim]}")
            removed += [f"{name}.{n}" for n in patcher.unpatch(module)]
    return removed


def status() -> dict[str, Any]:
    """What is active in this process: the hooked shims, where they came from, and the names
    patched so far per module (a module not imported yet is patched when it is)."""
    hooks = _hook_module()
    finder = hooks.active_finder()
    patched: dict[str, list[str]] = {}
    for name in hooks.WATCH:
        module = sys.modules.get(name)
        if module is None:
            continue
        names = sorted(n for n, v in list(vars(module).items())
                       if getattr(v, "__tts_doctor_shim__", None))
        if names:
            patched[name] = names
    return {
        "active": finder is not None,
        "disabled": hooks.disabled(),
        "shims": sorted(finder.shims) if finder is not None else [],
        "source": (None if finder is None else
                   "pth" if getattr(finder, "root", None) or getattr(finder, "lazy", False)
                   else "activate"),
        "patched": patched,
        "errors": list(getattr(finder, "errors", [])),
    }
