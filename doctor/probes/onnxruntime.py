"""ONNX Runtime: one build installed, and the CUDA provider really usable (O2).

`onnxruntime`, `onnxruntime-gpu` (and the DirectML, OpenVINO, ROCm builds) all install the same
`onnxruntime` package folder: with two of them, the last install wins file by file and the
metadata of the other lies (wyoming-piper#32: piper pulls in the CPU build over the GPU one and
the CUDA provider silently disappears). The providers probe then asks the runtime itself:
`get_available_providers()`, the CUDA provider library's needed libraries resolved as the
loader would (`libcublasLt.so.12`, `libcudnn.so.9`: CosyVoice#91), and a real session on a
tiny model built here, which is where ONNX Runtime silently falls back to the CPU.
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
import shlex
from typing import Any, Optional

from tts_doctor import dists, elf
from tts_doctor.applicability import not_installed
from tts_doctor.facts.nvidia import gpu_need
from tts_doctor.finding import Fix, Result, cmd, fail, manual, ok, skip, steps, text, warn
from tts_doctor.registry import Context, probe

# Distributions that provide the `onnxruntime` package (they overwrite each other).
BUILDS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
          "onnxruntime-rocm", "onnxruntime-silicon", "onnxruntime-training", "onnxruntime-qnn",
          "ort-nightly", "ort-nightly-gpu")
CUDA_PROVIDER_LIB = "libonnxruntime_providers_cuda.so"


def installed_builds() -> list[tuple[str, str]]:
    """(name, version) of every installed ONNX Runtime build."""
    out = []
    for name in BUILDS:
        version = dists.version(name)
        if version is not None:
            out.append((dists.distribution(name).metadata["Name"], version))
    return out


def nvidia_driver() -> Optional[str]:
    """The NVIDIA kernel driver's version line, or 'libcuda' when only the user-space driver
    library is found; None on a host without an NVIDIA driver."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        m = re.search(r"Kernel Module\s+(\S+)", first)
        return m.group(1) if m else first.strip()[:80]
    except OSError:
        pass
    if "libcuda.so.1" in elf.ld_cache():
        return "libcuda"
    return None


def _needs_gpu(ctx: Context) -> bool:
    """Whether the recipe needs a GPU: the cuda.* probes' rule (`requires.gpu` or
    `requires.cuda` required, a version range included)."""
    return gpu_need(ctx) == "required"


def _keep(builds: list[tuple[str, str]]) -> str:
    """Which build to keep: the GPU build when it is one of them (it runs on the CPU too, and
    was installed for a reason), else the CPU build, else the first."""
    names = {dists.canonical(n): v for n, v in builds}
    for name in ("onnxruntime-gpu", "onnxruntime"):
        if name in names:
            return f"{name}=={names[name]}"
    name, version = builds[0]
    return f"{name}=={version}"


def winner(builds: list[tuple[str, str]], package_dir: str) -> Optional[str]:
    """The build whose compiled module is on disk: the sha256 of
    `onnxruntime/capi/onnxruntime_pybind11_state*.so` compared with each build's RECORD."""
    import base64
    import hashlib

    found = glob.glob(os.path.join(package_dir, "capi", "onnxruntime_pybind11_state*.so"))
    if not found:
        return None
    digest = hashlib.sha256()
    with open(found[0], "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    ours = "sha256=" + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")
    rel = "onnxruntime/capi/" + os.path.basename(found[0])
    for name, _version in builds:
        dist = dists.distribution(name)
        for line in (dist.read_text("RECORD") or "").splitlines() if dist else []:
            parts = line.split(",")
            if len(parts) >= 2 and parts[0] == rel and parts[1] == ours:
                return name
    return None


def _files_from(package_dir: str) -> dict[str, Any]:
    """What is on disk in the shared `onnxruntime` folder: its version and whether the CUDA
    provider library is there (the build whose files won)."""
    out: dict[str, Any] = {"cuda_provider_file": os.path.exists(
        os.path.join(package_dir, "capi", CUDA_PROVIDER_LIB))}
    try:
        with open(os.path.join(package_dir, "__init__.py"), encoding="utf-8") as fh:
            m = re.search(r"__version__\s*=\s*[\"']([^\"']+)", fh.read())
        out["version_on_disk"] = m.group(1) if m else None
    except OSError:
        out["version_on_disk"] = None
    return out


def collect_install(ctx: Context) -> dict[str, Any]:
    """Which ONNX Runtime builds the metadata lists ([name, version]), whether an NVIDIA
    driver is found (for the install advice), and, with two or more builds, what is on disk
    in their shared `onnxruntime` folder: its version, the CUDA provider library, and whose
    RECORD the compiled module's sha256 matches."""
    builds = installed_builds()
    facts: dict[str, Any] = {"builds": [[n, v] for n, v in builds],
                             "nvidia_driver": nvidia_driver()}
    if len(builds) < 2:
        return facts
    dist = dists.distribution(builds[0][0])
    won = None
    try:
        package_dir = str(dist.locate_file("onnxruntime"))
        facts["on_disk"] = dict(_files_from(package_dir), package_dir=package_dir)
        won = winner(builds, package_dir)
    except Exception as exc:
        facts["on_disk_error"] = f"{type(exc).__name__}: {exc}"
    facts["files_on_disk_from"] = won
    return facts


@probe("onnxruntime.install", title="Exactly one ONNX Runtime build installed (onnxruntime vs "
       "onnxruntime-gpu overwrite each other)", families=("O2",), collect=collect_install,
       component="onnxruntime")
def install(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that exactly one ONNX Runtime build (onnxruntime, onnxruntime-gpu...) is installed.

    No finding when the recipe marks onnxruntime absent; none installed: `skip`, or `fail` when
    required (fix: onnxruntime-gpu when an NVIDIA driver is found, else onnxruntime). Reads the
    metadata of the known builds: one is `ok`; two or more fail, because they share one
    `onnxruntime` folder, and the finding says whose compiled module is on disk (its sha256 against
    each build's RECORD). The fix uninstalls them all and installs one, the GPU build when it is
    among them.
    """
    builds = [(str(n), str(v)) for n, v in facts.get("builds") or []]
    if not builds:
        return not_installed(ctx, "onnxruntime", Fix(
            "Install ONNX Runtime (the GPU build on a host with an NVIDIA GPU).",
            commands=(dists.pip_install("onnxruntime-gpu" if facts.get("nvidia_driver")
                                        else "onnxruntime"),)), label="ONNX Runtime")
    details: dict[str, Any] = {"builds": [{"name": n, "version": v} for n, v in builds]}
    if len(builds) == 1:
        return ok(f"{builds[0][0]} {builds[0][1]} is the only ONNX Runtime build", **details)
    details.update(facts.get("on_disk") or {})
    won = facts.get("files_on_disk_from")
    details["files_on_disk_from"] = won
    listed = " and ".join(f"{n} {v}" for n, v in builds)
    keep = _keep(builds)
    on_disk = (f"the compiled module on disk is {won}'s" if won else
               "the compiled module on disk matches none of them")
    fix = Fix("The builds share one `onnxruntime` folder: uninstall all of them, then install "
              f"exactly one ({keep.split('==')[0]}: the GPU build also runs on the CPU). Pin "
              "it so that a dependency (piper-tts, rembg...) does not pull the other one back "
              "in.",
              commands=steps(dists.pip_uninstall(*(n for n, _ in builds)),
                             dists.pip_install(keep)))
    return fail(f"{listed} are both installed: they overwrite each other's files ({on_disk}); "
                "which providers you get depends on the install order", fix, **details)


# --- a tiny ONNX model, encoded here (no `onnx` package needed) -------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: Any) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def identity_model() -> bytes:
    """An ONNX model (IR 7, opset 13) with one Identity node on a float[4] tensor."""
    dim = _field(1, _field(1, 4))                               # TensorShapeProto.dim
    tensor = _field(1, 1) + _field(2, dim)                      # elem_type FLOAT, shape
    vtype = _field(1, tensor)                                   # TypeProto.tensor_type
    node = _field(1, "x") + _field(2, "y") + _field(3, "n") + _field(4, "Identity")
    graph = (_field(1, node) + _field(2, "tts_doctor") + _field(11, _field(1, "x") +
             _field(2, vtype)) + _field(12, _field(1, "y") + _field(2, vtype)))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 7) + _field(2, "tts-doctor") + _field(7, graph) + _field(8, opset)


def _session_providers(ort: Any, providers: list[str]) -> tuple[list[str], Optional[str]]:
    """The providers a real session ends up with (ONNX Runtime falls back to the CPU with
    only a log line when the CUDA provider cannot load), and the error if it raised."""
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(identity_model(), sess_options=options,
                                       providers=providers)
        import numpy as np

        out = session.run(None, {"x": np.arange(4, dtype=np.float32)})[0]
        if [float(v) for v in out] != [0.0, 1.0, 2.0, 3.0]:
            return list(session.get_providers()), f"the Identity model returned {out!r}"
        return list(session.get_providers()), None
    except Exception as exc:
        return [], f"{type(exc).__name__}: {exc}"[:400]


def _pip_cuda_libs(package_dir: str) -> dict[str, str]:
    """CUDA libraries shipped by pip wheels (nvidia-cublas-cu12...) next to onnxruntime:
    found by `onnxruntime.preload_dlls()` (ORT >= 1.21) or after `import torch`, not by the
    loader on its own."""
    site = os.path.dirname(package_dir)
    out = {}
    for path in glob.glob(os.path.join(site, "nvidia", "*", "lib", "lib*.so*")):
        out.setdefault(os.path.basename(path), path)
    return out


def collect_providers(ctx: Context) -> dict[str, Any]:
    """What ONNX Runtime says here: the builds the metadata lists, what `import onnxruntime`
    raised, its version, available providers and device, whether an NVIDIA driver is found;
    then one real session on a one-node model: on the CPU provider when no GPU is expected
    (no GPU build, no driver, no GPU recipe), else, when the CUDA provider is listed, the
    provider library's needed libraries the loader cannot resolve (and which of them pip's
    CUDA wheels hold) and the providers a CUDA session ends up with."""
    builds = installed_builds()
    facts: dict[str, Any] = {"builds": [[n, v] for n, v in builds]}
    if not builds:
        return facts
    try:
        import onnxruntime as ort
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    package_dir = os.path.dirname(ort.__file__)
    available = list(ort.get_available_providers())
    driver = nvidia_driver()
    names = {dists.canonical(n) for n, _ in builds}
    gpu_dist = "onnxruntime-gpu" in names or "ort-nightly-gpu" in names
    facts.update(version=getattr(ort, "__version__", None), available=available,
                 device=ort.get_device(), nvidia_driver=driver, package_dir=package_dir)
    if not (gpu_dist or bool(driver) or _needs_gpu(ctx)):
        asked = ["CPUExecutionProvider"]
    elif "CUDAExecutionProvider" in available:
        lib = os.path.join(package_dir, "capi", CUDA_PROVIDER_LIB)
        missing: dict[str, str] = {}
        if os.path.exists(lib):
            missing = dict(elf.resolve(lib).missing)
        in_wheels = _pip_cuda_libs(package_dir)
        facts.update(provider_library=lib, missing=missing,
                     in_pip_wheels={m: in_wheels[m] for m in missing if m in in_wheels})
        asked = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        return facts  # a GPU is expected and the CUDA provider is not there: no session
    active, error = _session_providers(ort, asked)
    facts.update(session_asked=asked, session_providers=active, session_error=error)
    return facts


@probe("onnxruntime.providers", title="ONNX Runtime imports; the CUDA provider is present and "
       "its libraries load when a GPU is expected", isolated=True, families=("O2",),
       crash_fix=Fix("Importing onnxruntime or creating a session crashed the process (mixed "
                     "files of two builds, or a CUDA library of the wrong version). Reinstall "
                     "exactly one build.",
                     commands=steps(cmd("{python}", "-m", "pip", "uninstall", "-y",
                                        "onnxruntime", "onnxruntime-gpu"),
                                    cmd("{python}", "-m", "pip", "install", "onnxruntime-gpu"))),
       collect=collect_providers, component="onnxruntime", memo=True)
def providers(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that ONNX Runtime imports and, where a GPU is expected, runs a session on CUDA.

    No finding when the recipe marks onnxruntime absent; `skip` when none is installed; an import
    error fails. A GPU is expected when a GPU build is installed, an NVIDIA driver is found or the
    recipe requires a GPU (`requires.gpu` or `requires.cuda`, the cuda.* probes' rule); if not, a
    one-node model must run on the CPU. If so, a missing CUDAExecutionProvider, provider libraries
    the loader cannot resolve, or a session that falls back to the CPU fail (some only warn, or
    pass, with no driver and no GPU recipe). Fixes: reinstall one GPU build, LD_LIBRARY_PATH to
    pip's CUDA wheels, onnxruntime-gpu[cuda,cudnn].
    """
    builds = [(str(n), str(v)) for n, v in facts.get("builds") or []]
    if not builds:
        return skip("ONNX Runtime is not installed")
    names = {dists.canonical(n) for n, _ in builds}
    gpu_dist = "onnxruntime-gpu" in names or "ort-nightly-gpu" in names
    if facts.get("import_error"):
        error = str(facts["import_error"])
        fix = Fix("ONNX Runtime does not import: reinstall exactly one build.",
                  commands=steps(dists.pip_uninstall(*(n for n, _ in builds)),
                                 dists.pip_install(_keep(builds))))
        return fail(f"onnxruntime does not import: {error}"[:400], fix,
                    builds=sorted(names), error=error)
    available = list(facts.get("available") or [])
    driver = facts.get("nvidia_driver")
    need_gpu = _needs_gpu(ctx)
    details: dict[str, Any] = {"version": facts.get("version"),
                               "builds": sorted(names), "available": available,
                               "device": facts.get("device"), "nvidia_driver": driver,
                               "recipe_needs_gpu": need_gpu}
    expected = gpu_dist or bool(driver) or need_gpu
    has_cuda = "CUDAExecutionProvider" in available
    one_gpu = steps(dists.pip_uninstall(*(n for n, _ in builds)),
                    dists.pip_install(_keep(builds) if gpu_dist else "onnxruntime-gpu"))
    active = list(facts.get("session_providers") or [])
    error = facts.get("session_error")
    if not expected:
        details.update(session_providers=active, session_error=error)
        if error:
            fix = Fix("ONNX Runtime imports but cannot run a one-node model: reinstall it.",
                      commands=(dists.pip_install(_keep(builds), extra="--force-reinstall"),))
            return fail(f"onnxruntime {details['version']} cannot run a model: {error}", fix,
                        **details)
        return ok(f"onnxruntime {details['version']}: providers {', '.join(available)}; a "
                  "session runs on the CPU (no NVIDIA driver on this host)", **details)
    if not has_cuda:
        if gpu_dist:
            fix = Fix("onnxruntime-gpu is installed but the files on disk are a CPU build "
                      "(another ONNX Runtime build was installed over it): uninstall every "
                      "build and install onnxruntime-gpu alone.", commands=one_gpu)
            return fail("onnxruntime-gpu is installed but the CUDA provider is absent: "
                        f"get_available_providers() = {available}", fix, **details)
        fix = Fix("This is the CPU build of ONNX Runtime where a GPU is expected: install "
                  "onnxruntime-gpu instead (for the host's CUDA major).", commands=one_gpu)
        report = fail if need_gpu else warn
        where = f"on a host with an NVIDIA driver ({driver})" if driver else \
            "and the recipe needs a GPU"
        return report(f"onnxruntime {details['version']} is a CPU build {where}: providers "
                      f"{available}", fix, **details)
    missing = dict(facts.get("missing") or {})
    in_wheels = dict(facts.get("in_pip_wheels") or {})
    details.update(provider_library=facts.get("provider_library"), missing=missing,
                   missing_but_in_pip_wheels=sorted(m for m in missing if m in in_wheels))
    details.update(session_providers=active, session_error=error)
    if "CUDAExecutionProvider" in active and not error:
        return ok(f"onnxruntime {details['version']}: a session runs on the CUDA provider "
                  f"(driver {driver})", **details)
    fallback = (f"a session falls back to {active or 'nothing'}"
                + (f" ({error})" if error else ""))
    if missing:
        lost = ", ".join(sorted(missing))
        if all(m in in_wheels for m in missing):
            fix = Fix("The CUDA libraries are installed as pip wheels but the loader does not "
                      "search there: call onnxruntime.preload_dlls() (ONNX Runtime >= 1.21) or "
                      "`import torch` before creating the session, or add their folders to "
                      "LD_LIBRARY_PATH.",
                      commands=(text("export LD_LIBRARY_PATH=" + ":".join(
                          shlex.quote(d) for d in sorted({posixpath.dirname(in_wheels[m])
                                                          for m in missing}))
                          + ':"$LD_LIBRARY_PATH"'),))
        else:
            fix = Fix("Install the CUDA libraries this ONNX Runtime build was made for (its "
                      "`cuda,cudnn` extras bring them as pip wheels), or the onnxruntime-gpu "
                      "release built for the CUDA major the image has.",
                      commands=(dists.pip_install(f"onnxruntime-gpu[cuda,cudnn]=="
                                                  f"{details['version']}"),))
        summary = (f"the CUDA provider is listed but its library cannot load: {lost} not "
                   f"found; {fallback}")
        if not driver and not need_gpu:
            return warn("no NVIDIA driver on this host, and even on a GPU host " + summary,
                        fix, **details)
        return fail(summary, fix, **details)
    if not driver and not need_gpu:
        return ok(f"onnxruntime {details['version']}: the CUDA provider's libraries all "
                  "resolve; no NVIDIA driver on this host, so sessions run on the CPU here",
                  **details)
    fix = Fix("The CUDA provider's libraries are present but a session still does not use "
              "it: the driver is older than this build's CUDA, or no GPU is visible "
              "(CUDA_VISIBLE_DEVICES). Check the cuda.* findings, or install the "
              "onnxruntime-gpu release built for the driver's CUDA (ONNX Runtime's CUDA "
              "table; no newer release is known to fix it by itself).",
              commands=(manual("nvidia-smi"),))
    return fail(f"the CUDA provider is listed and its libraries resolve, but {fallback}", fix,
                **details)
