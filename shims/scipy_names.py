"""The names SciPy removed, restored as thin forwards to their current homes.

SciPy 1.13 removed the window functions from `scipy.signal` (they live in
`scipy.signal.windows`; `hanning` went earlier), and 1.14 removed `simps`, `trapz` and
`cumtrapz` from `scipy.integrate` (now `simpson`, `trapezoid`, `cumulative_trapezoid`). Code
that still calls them (librosa < 0.10.2 calls `scipy.signal.hann`, ParallelWaveGAN and old
resampy import `kaiser`) fails with AttributeError or ImportError (FAILURES.md S1-S3).

`patch(module)` adds to a SciPy module the names it lacks, each a forward that emits a
DeprecationWarning naming the new home and then calls it. Names the module has are never
replaced. Every object added carries ``__tts_doctor_shim__ = "scipy_names"`` (and
``__wrapped__``, the function it forwards to), so the doctor can tell a shimmed name from a
real one. Names with no current home in SciPy (the wavelets `cwt`, `ricker`, `morlet`...,
removed in favour of PyWavelets; `bspline`, `cubic`, `quadratic`; `romberg`, `quadrature`)
are not restored: a forward would have to reimplement them, not forward.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Any, Callable, Optional

SHIM_NAME = "scipy_names"

# Window functions: every name scipy.signal.windows exports, read from the installed SciPy at
# patch time, plus these older aliases.
WINDOW_ALIASES = {"hanning": "hann"}

# The windows scipy.signal itself exported until SciPy 1.13 removed them (1.12's list). Only
# their absence counts as the problem (FAILURES.md S1/S2); the other windows (dpss, taylor,
# general_cosine, ...) were only ever in scipy.signal.windows and `hanning` left long before:
# they are restored too, harmlessly, but their absence alone does not make the shim needed.
SIGNAL_WINDOWS_UNTIL_1_13 = (
    "barthann", "bartlett", "blackman", "blackmanharris", "bohman", "boxcar", "chebwin",
    "cosine", "exponential", "flattop", "gaussian", "general_gaussian", "hamming", "hann",
    "kaiser", "nuttall", "parzen", "triang", "tukey",
)

# module -> {removed name: "module.attribute" of its current home}
FORWARDS: dict[str, dict[str, str]] = {
    "scipy.signal": {
        # removed in 1.13 (deprecated in 1.11): the *2 variants used scipy.integrate.odeint
        "impulse2": "scipy.signal.impulse",
        "step2": "scipy.signal.step",
        "lsim2": "scipy.signal.lsim",
    },
    "scipy.integrate": {
        # removed in 1.14
        "simps": "scipy.integrate.simpson",
        "trapz": "scipy.integrate.trapezoid",
        "cumtrapz": "scipy.integrate.cumulative_trapezoid",
    },
    "scipy.linalg": {
        # removed in 1.13: they were NumPy's functions all along
        "tri": "numpy.tri",
        "tril": "numpy.tril",
        "triu": "numpy.triu",
        "kron": "numpy.kron",
    },
    "scipy.stats": {
        # removed in 1.14 (the trapezoidal distribution)
        "trapz": "scipy.stats.trapezoid",
    },
}

MODULES = ("scipy.signal", "scipy.integrate", "scipy.linalg", "scipy.stats")


def _resolve(dotted: str) -> Optional[Any]:
    module, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def forwards_for(module_name: str) -> dict[str, str]:
    """Every name this shim knows for `module_name` -> the dotted name of its current home."""
    out: dict[str, str] = {}
    if module_name == "scipy.signal":
        try:
            windows = importlib.import_module("scipy.signal.windows")
        except ImportError:
            windows = None
        names = list(getattr(windows, "__all__", ()))
        out.update({n: f"scipy.signal.windows.{n}" for n in names
                    if n != "get_window"})  # get_window never left scipy.signal
        out.update({old: f"scipy.signal.windows.{new}" for old, new in WINDOW_ALIASES.items()})
    out.update(FORWARDS.get(module_name, {}))
    return out


def counts_as_problem(module_name: str, name: str) -> bool:
    """Whether `module_name.name` missing means code that worked on an older SciPy breaks."""
    if module_name == "scipy.signal" and name in SIGNAL_WINDOWS_UNTIL_1_13:
        return True
    return name in FORWARDS.get(module_name, {})


def _simps(target: Callable[..., Any]) -> Callable[..., Any]:
    """simps(y, x=None, dx=1.0, axis=-1, even=None): simpson made x keyword-only and dropped
    `even`, so the forward adapts the call instead of passing it through."""

    def simps(y: Any, x: Any = None, dx: float = 1.0, axis: int = -1,
              even: Optional[str] = None) -> Any:
        if even is not None:
            raise TypeError("scipy.integrate.simps(even=...) has no equivalent in "
                            "scipy.integrate.simpson (it always uses Cartwright's "
                            "correction for an even number of samples); drop `even`")
        return target(y, x=x, dx=dx, axis=axis)

    return simps


_ADAPTERS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "scipy.integrate.simps": _simps,
}


def make_forward(module_name: str, name: str, home: str,
                 target: Callable[..., Any]) -> Callable[..., Any]:
    """A function named `name` that warns (DeprecationWarning naming `home`) and calls
    `target`, marked ``__tts_doctor_shim__ = "scipy_names"``."""
    call = _ADAPTERS.get(f"{module_name}.{name}", lambda t: t)(target)
    message = (f"{module_name}.{name} was removed from SciPy; tts-doctor's scipy_names shim "
               f"forwards it to {home}. Call {home} instead.")

    @functools.wraps(target)
    def forward(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return call(*args, **kwargs)

    forward.__name__ = name
    forward.__qualname__ = name
    forward.__module__ = module_name
    forward.__tts_doctor_shim__ = SHIM_NAME  # type: ignore[attr-defined]
    forward.__tts_doctor_home__ = home  # type: ignore[attr-defined]
    if call is not target:
        forward.__doc__ = (call.__doc__ or "") + "\n" + (target.__doc__ or "")
    return forward


def _present(module: Any, name: str) -> bool:
    try:
        getattr(module, name)
    except AttributeError:
        return False
    except Exception:
        return True  # a lazy attribute that fails is the module's own business
    return True


def missing(module: Any) -> dict[str, str]:
    """The known removed names `module` lacks (or has only as our forwards) -> their homes."""
    out = {}
    for name, home in forwards_for(module.__name__).items():
        current = getattr(module, name, None) if _present(module, name) else None
        if current is None or getattr(current, "__tts_doctor_shim__", None) == SHIM_NAME:
            out[name] = home
    return out


def patch(module: Any) -> list[str]:
    """Add to `module` (scipy.signal, scipy.integrate, scipy.linalg, scipy.stats) the removed
    names it lacks, as marked forwards. Returns the names added; existing names are kept."""
    added = []
    for name, home in forwards_for(module.__name__).items():
        if _present(module, name):
            continue
        target = _resolve(home)
        if target is None:
            continue  # the new home is missing too (a SciPy too old or too new): leave it
        setattr(module, name, make_forward(module.__name__, name, home, target))
        added.append(name)
    return added


def unpatch(module: Any) -> list[str]:
    """Remove the forwards `patch` added to `module`."""
    removed = []
    for name, value in list(vars(module).items()):
        if getattr(value, "__tts_doctor_shim__", None) == SHIM_NAME:
            delattr(module, name)
            removed.append(name)
    return removed
