"""PyTorch itself: installed, importable, which build (CPU, CUDA, ROCm)."""

from __future__ import annotations

import subprocess
import time
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.applicability import not_installed
from tts_doctor.facts.torch_wheels import index_for, same_build_commands, torchaudio_line
from tts_doctor.finding import Fix, Result, cmd, fail, manual, ok, steps, warn
from tts_doctor.registry import Context, probe

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_VERSIONS = ("import importlib.metadata as m\n"
             "for n in ('torch', 'torchaudio'):\n"
             "    try: print(n, m.version(n))\n"
             "    except Exception: pass\n")


def reinstall_after_crash(python: str) -> Optional[Fix]:
    """The crash advice of torch.build for the interpreter whose `import torch` died: the
    exact reinstall of the installed build (read from that interpreter's metadata, without
    importing torch), from the index that publishes it. None when the versions cannot be read.
    """
    try:
        out = subprocess.run([python, "-I", "-c", _VERSIONS], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    have = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    version = have.get("torch")
    if not version:
        return None
    release = ".".join(map(str, dists.release(version) or ())) or version.split("+")[0]
    names, reqs = ["torch"], [f"torch=={release}"]
    if "torchaudio" in have:
        line = torchaudio_line(version)
        names.append("torchaudio")
        reqs.append(f"torchaudio=={line}.*" if line else "torchaudio")
    index = index_for(version)
    extra = ["--index-url", index] if index else []
    return Fix(f"Importing torch {version} crashed the process (a signal, not an exception): "
               "its files are damaged (a truncated shared library from an interrupted "
               "download gives SIGBUS, a wheel for another CPU SIGILL). Reinstall the same "
               f"build, without pip's cache, from the index that publishes it "
               f"({index or 'PyPI'}).",
               commands=steps(cmd(python, "-m", "pip", "uninstall", "-y", *names),
                              cmd(python, "-m", "pip", "install", "--no-cache-dir", *extra,
                                  *reqs)))


def collect_build(ctx: Context) -> dict[str, Any]:
    """What torch says about itself: its metadata version (and torchaudio's: a reinstall
    keeps the pair), then (in the worker) what `import torch` raises or which build it
    reports, and how long the import took."""
    facts: dict[str, Any] = {"metadata_version": dists.version("torch"),
                             "torchaudio": dists.version("torchaudio")}
    if facts["metadata_version"] is None:
        return facts
    t0 = time.perf_counter()
    try:
        import torch
    except Exception as exc:  # ImportError, OSError from a missing libtorch_cuda.so...
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    facts.update({
        "import_s": round(time.perf_counter() - t0, 3),
        "version": str(torch.__version__),
        "cuda": getattr(torch.version, "cuda", None),
        "hip": getattr(torch.version, "hip", None),
        "location": str(getattr(torch, "__file__", "")),
        "debug": bool(getattr(torch.version, "debug", False)),
    })
    return facts


@probe("torch.build", title="torch is installed, imports, and says which build it is",
       memo=True, isolated=True, families=("C1",), component="torch",
       crash_fix=Fix("Importing torch crashed the process: the install is broken (mixed "
                     "CUDA libraries, a wheel for another CPU). Reinstall the same torch "
                     "version from the index its build came from: PyPI for the default CUDA "
                     "build, https://download.pytorch.org/whl/<tag> for a '+cpu' or '+cuXXX' "
                     "one (`pip show torch` gives the version and tag).",
                     commands=(manual("{python}", "-m", "pip", "show", "torch"),)),
       crash_fix_for=reinstall_after_crash, collect=collect_build)
def build(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks that torch is installed and imports, and reports which build it is (CPU, CUDA, ROCm).

    Reads torch's version from metadata, then imports it in the worker and reads
    `torch.version.cuda` / `torch.version.hip` and the import time. Not installed: `skip`, or `fail`
    when the recipe requires torch (fix: `pip install torch`, from the default or the CPU index). An
    import error fails (fix: uninstall torch and torchaudio, then install the same release from the
    index of its build's local tag: `+cpu` or `+cu128` from download.pytorch.org, a plain version
    from PyPI); a runtime release that differs from the metadata warns (two copies or a partial
    upgrade: uninstall, install once); otherwise `ok`. A crash while importing is reported with a
    force-reinstall.
    """
    meta_version = facts.get("metadata_version")
    if meta_version is None:
        fix = Fix("Install PyTorch (pick the CUDA or CPU index that matches this machine).",
                  commands=(dists.pip_install("torch"),
                            dists.pip_install("torch", extra=f"--index-url {CPU_INDEX}")))
        return not_installed(ctx, "torch", fix)
    error = facts.get("import_error")
    if error:
        index = index_for(meta_version) or "PyPI"
        fix = Fix(f"torch {meta_version} is installed but does not import; reinstall the same "
                  f"build (with torchaudio, when installed) from the index that publishes it "
                  f"({index}).",
                  commands=same_build_commands(
                      meta_version, torchaudio_installed=facts.get("torchaudio") is not None))
        return fail(f"torch {meta_version} is installed but `import torch` fails: "
                    f"{error}"[:400], fix, version=meta_version, error=error)
    runtime = str(facts.get("version"))
    cuda, hip = facts.get("cuda"), facts.get("hip")
    kind = f"CUDA {cuda}" if cuda else f"ROCm {hip}" if hip else "CPU"
    seconds = float(facts.get("import_s") or 0.0)
    details = {"version": runtime, "metadata_version": meta_version, "cuda": cuda, "hip": hip,
               "build": kind, "location": facts.get("location") or "",
               "import_s": round(seconds, 3), "debug": bool(facts.get("debug"))}
    if _release(runtime) != _release(meta_version):
        fix = Fix("The torch that imports is not the one pip installed (two copies on the "
                  "path, or a partial upgrade). Remove every copy and install once.",
                  commands=steps(dists.pip_uninstall("torch"), dists.pip_install("torch")))
        return warn(f"torch imports as {runtime} but metadata says {meta_version}", fix,
                    **details)
    return ok(f"torch {runtime} ({kind} build), imports in {seconds:.1f} s", **details)


def _release(version: str) -> tuple[int, ...]:
    """The release part of a version (`2.13.0+cpu` -> (2, 13, 0)), by packaging; an invalid
    version compares by its text."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return (hash(version),)
