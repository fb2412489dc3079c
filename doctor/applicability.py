"""Whether a probe applies, decided from data: the components a probe declares it judges
(`@probe(..., component="scipy")`) against the recipe's `[requires]` table.

One rule for every probe, applied by the runner before the probe runs (a probe that does not
apply is not run at all, and no worker is started for it):

- `skip`: the recipe marks one of the probe's components `absent` (the deployment does not use
  it): no finding. An *opt-in* component (OPT_IN: judged only when a recipe asks for it, such
  as the CUDA toolchain or WeTextProcessing) makes its probe `skip` unless the recipe needs at
  least one of the probe's opt-in components (anything but absent or unmentioned).
- `required`: the recipe needs a component (`required`, a version range, `true`; `shim` too
  for the components whose shims forward to the real library, SHIM_NEEDS_IT). A required
  component that is not installed is a `fail` with the install fix: `not_installed()`.
- `run`: everything else (no recipe, `optional`, not mentioned).

The component `gpu` combines `requires.gpu` and `requires.cuda` (the cuda.* probes' rule).

Runs in the doctor's process and, through `not_installed`, inside isolated probes in the
worker: standard library only.
"""

from __future__ import annotations

from typing import Iterable, Optional

from tts_doctor.finding import Fix, Result, fail, skip
from tts_doctor.registry import Context

SKIP = "skip"
RUN = "run"
REQUIRED = "required"

# components whose probes judge only what a recipe asks for
OPT_IN = frozenset({"wetextprocessing", "pynini", "cuda-toolchain"})
# `shim` still needs the library: the scipy_names and resample shims forward to SciPy
SHIM_NEEDS_IT = frozenset({"scipy"})
# what a probe may declare besides the recipe's components (doctor/recipe.py COMPONENTS)
EXTRA_COMPONENTS = ("gpu",)


def need(ctx: Context, component: str) -> Optional[str]:
    """The recipe's need of one component: 'required', 'optional', 'absent', 'shim' or None.
    `gpu` is `requires.gpu` and `requires.cuda` together: either required is required; either
    absent (and the other not optional) is absent."""
    if component == "gpu":
        gpu, cuda = ctx.needs("gpu"), ctx.needs("cuda")
        if "required" in (gpu, cuda):
            return "required"
        if "absent" in (gpu, cuda) and gpu != "optional":
            return "absent"
        return gpu or cuda
    return ctx.needs(component)


def required(ctx: Context, component: str) -> bool:
    """Whether the recipe needs the component installed."""
    value = need(ctx, component)
    return value == "required" or (value == "shim" and component in SHIM_NEEDS_IT)


def decide(components: Iterable[str], ctx: Context) -> str:
    """SKIP, RUN or REQUIRED for a probe judging these components (see the module's rule)."""
    components = tuple(components)
    if not components:
        return RUN
    opt_in = [c for c in components if c in OPT_IN]
    if opt_in and all(need(ctx, c) in (None, "absent") for c in opt_in):
        return SKIP
    if any(need(ctx, c) == "absent" for c in components if c not in OPT_IN):
        return SKIP
    return REQUIRED if any(required(ctx, c) for c in components) else RUN


def not_installed(ctx: Context, component: str, fix: Fix, label: Optional[str] = None,
                  **details: object) -> Result:
    """The verdict on a component that is not installed: `fail` with the install fix when the
    recipe requires it, else `skip`."""
    label = label or component
    if required(ctx, component):
        return fail(f"{label} is not installed, and the recipe needs it", fix, **details)
    return skip(f"{label} is not installed", **details)


def describe(components: Iterable[str]) -> str:
    """One sentence for the probe reference: which components the probe judges, and when it
    does not apply."""
    components = tuple(components)
    if not components:
        return ""
    names = " and ".join(f"`{c}`" for c in components)
    plural = "s" if len(components) > 1 else ""
    if all(c in OPT_IN for c in components):
        return (f"Judges the recipe component{plural} {names}: only when a recipe needs "
                f"{'one of them' if plural else 'it'}.")
    return (f"Judges the recipe component{plural} {names}: no finding when a recipe marks "
            f"{'one of them' if plural else 'it'} absent.")
