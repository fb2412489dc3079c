"""PyTorch itself: installed, importable, which build (CPU, CUDA, ROCm)."""

from __future__ import annotations

import time

from doctor import dists
from doctor.finding import Fix, Result, fail, ok, skip, warn
from doctor.registry import Context, probe

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@probe("torch.build", title="torch is installed, imports, and says which build it is",
       isolated=True, families=("C1",),
       crash_fix=Fix("Importing torch crashed the process: the install is broken (mixed "
                     "CUDA libraries, a wheel for another CPU). Reinstall torch.",
                     commands=("{python} -m pip install --force-reinstall --no-deps torch",)))
def build(ctx: Context) -> Result:
    meta_version = dists.version("torch")
    need = ctx.needs("torch")
    if meta_version is None:
        fix = Fix("Install PyTorch (pick the CUDA or CPU index that matches this machine).",
                  commands=(dists.pip_install("torch"),
                            dists.pip_install("torch", extra=f"--index-url {CPU_INDEX}")))
        if need == "required":
            return fail("torch is not installed, and the recipe needs it", fix)
        return skip("torch is not installed")
    t0 = time.perf_counter()
    try:
        import torch
    except Exception as exc:  # ImportError, OSError from a missing libtorch_cuda.so...
        fix = Fix(f"torch {meta_version} is installed but does not import; reinstall it "
                  "(and everything built against it) from one index.",
                  commands=(dists.pip_install("torch==" + meta_version,
                                              extra="--force-reinstall --no-deps"),))
        return fail(f"torch {meta_version} is installed but `import torch` fails: "
                    f"{type(exc).__name__}: {exc}"[:400], fix, version=meta_version,
                    error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    runtime = str(torch.__version__)
    cuda = getattr(torch.version, "cuda", None)
    hip = getattr(torch.version, "hip", None)
    kind = f"CUDA {cuda}" if cuda else f"ROCm {hip}" if hip else "CPU"
    details = {"version": runtime, "metadata_version": meta_version, "cuda": cuda, "hip": hip,
               "build": kind, "location": str(getattr(torch, "__file__", "")),
               "import_s": round(seconds, 3),
               "debug": bool(getattr(torch.version, "debug", False))}
    if dists.release(runtime) != dists.release(meta_version):
        fix = Fix("The torch that imports is not the one pip installed (two copies on the "
                  "path, or a partial upgrade). Remove every copy and install once.",
                  commands=(dists.pip_uninstall("torch"), dists.pip_install("torch")))
        return warn(f"torch imports as {runtime} but metadata says {meta_version}", fix,
                    **details)
    return ok(f"torch {runtime} ({kind} build), imports in {seconds:.1f} s", **details)
