"""Probes that declare the recipe components they judge, and nothing else: no hand-written
recipe check. Each one leaves a file named after itself in `--set applies.marker=DIR` when it
runs, so a test can tell "not run" from "ran and said nothing".

Loaded through TTS_DOCTOR_PLUGINS=component_probes with this folder on PYTHONPATH.
"""

from __future__ import annotations

import os

from tts_doctor.finding import ok
from tts_doctor.registry import probe


def _ran(ctx, name):
    folder = ctx.options.get("applies.marker")
    if folder:
        with open(os.path.join(folder, name), "w") as fh:
            fh.write(str(os.getpid()))
    return ok(f"{name} ran")


@probe("applies.scipy-worker", title="judges scipy, in the worker", isolated=True,
       component="scipy")
def scipy_worker(ctx):
    return _ran(ctx, "applies.scipy-worker")


@probe("applies.scipy-here", title="judges scipy, in-process", component="scipy")
def scipy_here(ctx):
    return _ran(ctx, "applies.scipy-here")


@probe("applies.gpu", title="judges the GPU (requires.gpu and requires.cuda)", isolated=True,
       component="gpu")
def gpu(ctx):
    return _ran(ctx, "applies.gpu")


@probe("applies.pair", title="judges torch and transformers together",
       component=("transformers", "torch"))
def pair(ctx):
    return _ran(ctx, "applies.pair")


@probe("applies.toolchain", title="judges an opt-in component", component="cuda-toolchain")
def toolchain(ctx):
    return _ran(ctx, "applies.toolchain")


@probe("applies.nothing", title="declares no component", isolated=True)
def nothing(ctx):
    return _ran(ctx, "applies.nothing")
