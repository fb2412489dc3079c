"""CUDA: the torch build against the NVIDIA driver (C1, C2), the GPU's architecture against
the wheel's kernels (C3), a real kernel, cuDNN (C6), the CUDA environment variables, and the
toolchain a JIT-compiled kernel needs (O6).

The driver is found without torch: NVML through nvidia-ml-py's `pynvml` (driver version, the
highest CUDA it supports, the GPUs), else /proc/driver/nvidia/version. torch's side comes from
importing it in the worker (`torch.version.cuda`, `torch.cuda.get_arch_list()`, the devices it
sees). Each verdict is a pure function of those facts (`judge_build`, `judge_driver`,
`judge_arch`, `judge_env`), so GPU verdicts are testable on a machine without one; the kernel
and cuDNN probes run the real thing. With no driver every probe here says `skip` with the
reason, except `cuda.build` when the recipe needs a GPU (then `fail`).

Every probe is split (docs/DEVELOPING.md, "Collect and judge"): its `collect_*` function
observes in the worker, under the diagnosed interpreter (the driver, what torch says, what a
kernel or a conv1d returned or raised), and returns those facts as JSON; the probe function
judges them in the doctor's process, where version numbers are compared with `packaging` and
the wheel tables (which driver runs which CUDA, which index ships which architecture) are
applied. `check --save-facts` keeps the facts, and a later doctor judges them again with newer
tables.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import shutil
import subprocess
import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.facts.nvidia import gpu_need, nvml, visible_devices
from tts_doctor.facts.torch_wheels import (
    INDEX,
    _line,
    _reinstall,
    _same_torch,
)
from tts_doctor.finding import Fix, Result, export, fail, manual, ok, skip, steps, system, warn
from tts_doctor.registry import Context, probe

PROC_VERSION = "/proc/driver/nvidia/version"
NVML_LIB = "libnvidia-ml.so.1"

# The CUDA builds download.pytorch.org publishes for each torch release line (the install
# matrix of pytorch.org "Previous versions"). A line newer than the table is assumed to have
# the newest row's builds, and the fix says so.
WHEEL_CUDA: dict[tuple[int, int], tuple[str, ...]] = {
    (1, 12): ("10.2", "11.3", "11.6"),
    (1, 13): ("11.6", "11.7"),
    (2, 0): ("11.7", "11.8"),
    (2, 1): ("11.8", "12.1"),
    (2, 2): ("11.8", "12.1"),
    (2, 3): ("11.8", "12.1"),
    (2, 4): ("11.8", "12.1", "12.4"),
    (2, 5): ("11.8", "12.1", "12.4"),
    (2, 6): ("11.8", "12.4", "12.6"),
    (2, 7): ("11.8", "12.6", "12.8"),
    (2, 8): ("12.6", "12.8", "12.9"),
    (2, 9): ("12.6", "12.8", "13.0"),
}

# The oldest Linux driver of each CUDA toolkit (CUDA release notes, "CUDA Toolkit and
# Corresponding Driver Versions"): what a driver supports when NVML cannot say, and what to
# upgrade to.
DRIVER_FOR_CUDA: tuple[tuple[str, str], ...] = (
    ("11.0", "450.36.06"), ("11.1", "455.23"), ("11.2", "460.27.03"), ("11.3", "465.19.01"),
    ("11.4", "470.42.01"), ("11.5", "495.29.05"), ("11.6", "510.39.01"),
    ("11.7", "515.43.04"), ("11.8", "520.61.05"), ("12.0", "525.60.13"),
    ("12.1", "530.30.02"), ("12.2", "535.54.03"), ("12.3", "545.23.06"),
    ("12.4", "550.54.14"), ("12.5", "555.42.02"), ("12.6", "560.28.03"),
    ("12.8", "570.26"), ("12.9", "575.51.03"), ("13.0", "580.65.06"),
)

# The first CUDA release that compiles for an architecture (SASS): a wheel built with an
# older CUDA cannot contain kernels for it.
ARCH_MIN_CUDA: dict[tuple[int, int], str] = {
    (7, 0): "9.0", (7, 5): "10.0", (8, 0): "11.0", (8, 6): "11.1", (8, 9): "11.8",
    (9, 0): "11.8", (10, 0): "12.8", (10, 3): "12.9", (12, 0): "12.8", (12, 1): "12.9",
}

# The SASS architectures (sm_XY as XY) in the Linux x86_64 torch wheels of each CUDA index
# (torch.cuda.get_arch_list() of the published builds): CUDA 11.8-12.6 builds keep Maxwell
# (sm_50) to Hopper; cu128/cu129 start at Volta and add Blackwell, and drop Volta from torch
# 2.11 (pytorch#172352); CUDA 13 itself supports Turing (sm_75) and newer only.
INDEX_ARCHS: dict[str, tuple[int, ...]] = {
    "11.8": (50, 60, 70, 75, 80, 86, 90),
    "12.1": (50, 60, 70, 75, 80, 86, 90),
    "12.4": (50, 60, 70, 75, 80, 86, 90),
    "12.6": (50, 60, 70, 75, 80, 86, 90),
    "12.8": (70, 75, 80, 86, 90, 100, 120),
    "12.9": (70, 75, 80, 86, 90, 100, 120),
    "13.0": (75, 80, 86, 90, 100, 110, 120),
}
VOLTA_DROPPED = (2, 11)  # the first line whose cu128/cu129 builds lack sm_70


def index_archs(line: tuple[int, ...], cuda_version: str) -> Optional[tuple[int, ...]]:
    """The SASS architectures torch `line`'s build for `cuda_version` ships (None: unknown)."""
    archs = INDEX_ARCHS.get(cuda_version)
    if archs is None:
        return None
    if cuda_version in ("12.8", "12.9") and tuple(line[:2]) >= VOLTA_DROPPED:
        archs = tuple(a for a in archs if a != 70)
    return archs


def index_ships(capability: tuple[int, int], line: tuple[int, ...],
                cuda_version: str) -> Optional[bool]:
    """Whether that build runs a GPU of `capability` from a binary (the same architecture, or
    an older minor of the same major)."""
    archs = index_archs(line, cuda_version)
    if archs is None:
        return None
    major, minor = capability
    return any(a // 10 == major and a % 10 <= minor for a in archs)


def indexes_for_arch(capability: tuple[int, int], torch_version: Optional[str]
                     ) -> dict[str, Optional[bool]]:
    """For each CUDA index of torch's release line: does its wheel ship kernels for the GPU?
    {'cu126': True, 'cu128': False, 'cu130': False} for a Pascal card on torch 2.9."""
    options, _known = variants(torch_version)
    line = _line(torch_version)
    return {tag(c): index_ships(capability, line, c) for c in options}


# Keys of the caching allocator's configuration (PYTORCH_CUDA_ALLOC_CONF / PYTORCH_ALLOC_CONF):
# the common ones parsed by c10 (strings of torch 2.13's libc10.so) and the CUDA/ROCm ones
# documented in "CUDA semantics: Optimizing memory usage with PYTORCH_CUDA_ALLOC_CONF".
ALLOC_KEYS = frozenset({
    "backend", "max_split_size_mb", "max_non_split_rounding_mb", "roundup_power2_divisions",
    "garbage_collection_threshold", "expandable_segments", "large_segment_size_mb",
    "release_lock_on_cudamalloc", "release_lock_on_hipmalloc",
    "pinned_use_cuda_host_register", "pinned_use_hip_host_register",
    "pinned_num_register_threads", "pinned_use_background_threads",
    "pinned_max_round_threshold_mb", "pinned_max_cached_size_mb",
    "pinned_reserve_segment_size_mb", "per_process_memory_fraction",
    "graph_capture_record_stream_reuse",
})
ALLOC_VARS = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF", "PYTORCH_HIP_ALLOC_CONF")


# --- facts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Driver:
    """The NVIDIA driver as NVML (or /proc) sees it; `present` False means no usable driver."""

    present: bool
    version: Optional[str] = None        # "570.86.10"
    cuda: Optional[str] = None           # the highest CUDA it supports, "12.8"
    source: Optional[str] = None         # "nvml" or the /proc file
    devices: tuple[dict[str, Any], ...] = ()  # index, name, uuid, capability (NVML order)
    reason: Optional[str] = None         # why there is none, or what NVML said

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Driver:
        """The driver back from its facts (`to_dict` after a trip through JSON)."""
        return cls(bool(d.get("present")), d.get("version"), d.get("cuda"), d.get("source"),
                   tuple(dict(x) for x in d.get("devices") or ()), d.get("reason"))


@dataclass(frozen=True)
class TorchCuda:
    """What the imported torch says about CUDA."""

    version: str
    cuda: Optional[str] = None           # torch.version.cuda
    hip: Optional[str] = None
    arch_list: tuple[str, ...] = ()      # torch.cuda.get_arch_list() (sm_XY, compute_XY)
    available: bool = False
    init_error: Optional[str] = None     # what torch.cuda.init() raised
    devices: tuple[dict[str, Any], ...] = ()  # index, name, capability, as torch numbers them
    location: Optional[str] = None

    @property
    def build(self) -> str:
        return f"CUDA {self.cuda}" if self.cuda else f"ROCm {self.hip}" if self.hip else "CPU"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "build": self.build}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TorchCuda:
        """torch's CUDA side back from its facts (`to_dict` after a trip through JSON)."""
        return cls(str(d.get("version")), d.get("cuda"), d.get("hip"),
                   tuple(str(a) for a in d.get("arch_list") or ()), bool(d.get("available")),
                   d.get("init_error"), tuple(dict(x) for x in d.get("devices") or ()),
                   d.get("location"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cuda_from_int(value: int) -> str:
    """NVML's CUDA version integer to 'major.minor': 12080 -> '12.8'."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def parse_proc_version(text: str) -> Optional[str]:
    """The driver version in /proc/driver/nvidia/version (proprietary or open module)."""
    m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


def _vtuple(v: Optional[str]) -> tuple[int, ...]:
    """The release numbers of a driver or CUDA version ('570.86.10' -> (570, 86, 10), '12.8'),
    for ordering; () when there is none or it is not a version.

    By `packaging`, so judge side only (the doctor's process): the collectors keep NVIDIA's
    strings as they are (nvcc's release is cut to 'major.minor' when read)."""
    from packaging.version import InvalidVersion, Version

    if not v:
        return ()
    try:
        return Version(str(v)).release
    except InvalidVersion:
        return ()


def cuda_for_driver(driver_version: Optional[str]) -> Optional[str]:
    """The highest CUDA a driver version supports, from the toolkit/driver table (judge
    side: a driver read from /proc, which does not say, gets it in `driver_of`)."""
    have = _vtuple(driver_version)
    if not have:
        return None
    best = None
    for cuda, minimum in DRIVER_FOR_CUDA:
        if have >= _vtuple(minimum):
            best = cuda
    return best


def driver_for_cuda(cuda: str) -> Optional[str]:
    want = _vtuple(cuda)[:2]
    for c, minimum in DRIVER_FOR_CUDA:
        if _vtuple(c)[:2] >= want:
            return minimum
    return None


def nvml_device_facts(nv: Any, index: int) -> dict[str, Any]:
    handle = nv.nvmlDeviceGetHandleByIndex(index)
    out: dict[str, Any] = {"index": index, "name": _text(nv.nvmlDeviceGetName(handle))}
    for key, call in (("uuid", "nvmlDeviceGetUUID"),
                      ("capability", "nvmlDeviceGetCudaComputeCapability")):
        try:
            value = getattr(nv, call)(handle)
            out[key] = _text(value) if key == "uuid" else list(value)
        except Exception:
            out[key] = None
    return out


@functools.lru_cache(maxsize=1)
def driver_facts() -> Driver:
    """The NVIDIA driver, found without torch: NVML first, then /proc. Observations only:
    a driver read from /proc has `cuda` None (the judge looks it up, `driver_of`)."""
    nv, error = nvml()
    proc = None
    try:
        with open(PROC_VERSION, encoding="utf-8", errors="replace") as fh:
            proc = parse_proc_version(fh.read())
    except OSError:
        pass
    if nv is not None:
        try:
            version = _text(nv.nvmlSystemGetDriverVersion())
            try:
                cuda: Optional[str] = cuda_from_int(int(nv.nvmlSystemGetCudaDriverVersion_v2()))
            except Exception:
                cuda = cuda_from_int(int(nv.nvmlSystemGetCudaDriverVersion()))
            count = int(nv.nvmlDeviceGetCount())
            devices = tuple(nvml_device_facts(nv, i) for i in range(count))
        except Exception as exc:
            error = f"NVML: {exc or type(exc).__name__}"
        else:
            if count == 0:
                return Driver(False, version, cuda, "nvml", (),
                              f"NVIDIA driver {version} is loaded but NVML lists no GPU")
            return Driver(True, version, cuda, "nvml", devices)
    if proc:
        return Driver(True, proc, None, PROC_VERSION, (),
                      f"NVML unavailable ({error}); driver version read from {PROC_VERSION}")
    library = nvml_library()
    where = (f"{NVML_LIB} is at {library} but the kernel module is not loaded" if library
             else f"{NVML_LIB} is not on the loader's path")
    return Driver(False, None, None, None, (),
                  f"no NVIDIA driver ({error}; {where}; no {PROC_VERSION})")


def nvml_library() -> Optional[str]:
    """Where the loader finds the driver's NVML library (None: nowhere)."""
    from tts_doctor import elf

    found = elf.ld_cache().get(NVML_LIB)
    if found:
        return found
    for folder in [*os.environ.get("LD_LIBRARY_PATH", "").split(":"), *elf.DEFAULT_DIRS]:
        if folder and os.path.exists(os.path.join(folder, NVML_LIB)):
            return os.path.join(folder, NVML_LIB)
    return None


@functools.lru_cache(maxsize=1)
def torch_facts() -> Optional[TorchCuda]:
    """torch's CUDA side, or None when torch is not installed. Raises if torch does not import
    (the caller turns that into a skip: torch.build reports it)."""
    if dists.version("torch") is None:
        return None
    import torch

    cuda = getattr(torch.version, "cuda", None)
    hip = getattr(torch.version, "hip", None)
    arch: tuple[str, ...] = ()
    available = False
    init_error = None
    devices: list[dict[str, Any]] = []
    if cuda or hip:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                available = bool(torch.cuda.is_available())
            except Exception as exc:
                init_error = f"{type(exc).__name__}: {exc}"
        if not available and init_error is None:
            try:
                torch.cuda.init()
            except Exception as exc:
                init_error = f"{type(exc).__name__}: {exc}"
            else:
                init_error = "; ".join(str(w.message) for w in caught)[:500] or None
        try:
            arch = tuple(torch.cuda.get_arch_list())
            if not arch:
                flags = torch._C._cuda_getArchFlags()
                arch = tuple(flags.split()) if flags else ()
        except Exception:
            arch = ()
        if available:
            for i in range(torch.cuda.device_count()):
                try:
                    devices.append({"index": i, "name": torch.cuda.get_device_name(i),
                                    "capability": list(torch.cuda.get_device_capability(i))})
                except Exception as exc:
                    devices.append({"index": i, "error": f"{type(exc).__name__}: {exc}"})
    return TorchCuda(str(torch.__version__), cuda, hip, arch, available,
                     init_error[:600] if init_error else None, tuple(devices),
                     os.path.dirname(str(getattr(torch, "__file__", ""))))


def gpu_facts() -> dict[str, Any]:
    """What every cuda.* collector starts from (in the worker): the driver, torch's CUDA side
    (None: not installed) or what importing torch raised, and torchaudio's version (the
    reinstall commands keep it paired with torch)."""
    out: dict[str, Any] = {"driver": driver_facts().to_dict(), "torch": None,
                           "torch_error": None, "torchaudio": dists.version("torchaudio")}
    try:
        info = torch_facts()
    except Exception as exc:
        out["torch_error"] = f"{type(exc).__name__}: {exc}"
    else:
        out["torch"] = info.to_dict() if info is not None else None
    return out


def driver_of(facts: dict[str, Any]) -> Driver:
    """The collected driver, with the highest CUDA it supports from the toolkit/driver table
    when NVML did not say (a driver read from /proc)."""
    driver = Driver.from_dict(facts.get("driver") or {"present": False})
    if driver.present and driver.cuda is None and driver.source == PROC_VERSION:
        driver = replace(driver, cuda=cuda_for_driver(driver.version))
    return driver


def torch_of(facts: dict[str, Any]) -> Optional[TorchCuda]:
    """The collected torch CUDA side (None: not installed, or it did not import)."""
    info = facts.get("torch")
    return TorchCuda.from_dict(info) if info else None


def _torch_or_result(facts: dict[str, Any]) -> tuple[Optional[TorchCuda], Optional[Result]]:
    error = facts.get("torch_error")
    if error:
        return None, skip(f"torch does not import ({error}); see torch.build"[:300])
    info = torch_of(facts)
    if info is None:
        return None, skip("torch is not installed")
    return info, None


def _torch_for_gpu(facts: dict[str, Any], driver: Driver
                   ) -> tuple[Optional[TorchCuda], Optional[Result]]:
    """torch's CUDA facts, or what a GPU probe returns when there are none: torch's own skip,
    or the driver's when there is no NVIDIA driver either."""
    torch_info, early = _torch_or_result(facts)
    if early and not driver.present:
        early = skip(driver.reason or "no NVIDIA driver")
    return torch_info, early


# --- which wheel to install -----------------------------------------------------------------

def tag(cuda: str) -> str:
    return "cu" + cuda.replace(".", "")


def _ge(a: str, b: str) -> bool:
    return _vtuple(a)[:2] >= _vtuple(b)[:2]


def variants(torch_version: Optional[str]) -> tuple[tuple[str, ...], bool]:
    """The CUDA builds published for torch's release line, and whether the line is known
    (a line newer than the table gets the newest row's builds)."""
    line = _line(torch_version)
    if line in WHEEL_CUDA:
        return WHEEL_CUDA[line], True  # type: ignore[index]
    if line > max(WHEEL_CUDA):
        return WHEEL_CUDA[max(WHEEL_CUDA)], False
    return (), False


def pick_variant(options: tuple[str, ...], driver_cuda: Optional[str]) -> tuple[str, bool]:
    """The newest build the driver runs natively, else the oldest of the driver's CUDA major
    (minor-version compatibility), else the oldest; and whether the driver fully supports it."""
    have = _vtuple(driver_cuda)[:2]
    fits = [c for c in options if have and _vtuple(c)[:2] <= have]
    if fits:
        return fits[-1], True
    same_major = [c for c in options if have and _vtuple(c)[0] == have[0]]
    return (same_major or list(options))[0], False


def reinstall_commands(torch_req: str, cuda: Optional[str], *,
                       torchaudio_req: Optional[str] = None,
                       torchaudio: Optional[str] = None) -> tuple[str, ...]:
    """Uninstall torch (and torchaudio, when `torchaudio` says which is installed) and install
    them from one index: the CUDA `cuda` build, or the CPU build. The uninstall comes first
    because an installed `2.13.0+cpu` satisfies a plain `torch==2.13.0` and pip would keep
    it. Pure: the installed torchaudio comes from the collected facts."""
    return _reinstall(torch_req, INDEX.format(tag=tag(cuda) if cuda else "cpu"),
                      torchaudio_req, torchaudio_installed=torchaudio is not None)


# --- verdicts (pure functions of the facts) --------------------------------------------------

def _gpus(driver: Driver) -> str:
    names = [d.get("name") or "?" for d in driver.devices]
    if not names:
        return "a GPU"
    return f"{len(names)} GPU{'s' if len(names) > 1 else ''} ({', '.join(names[:4])})"


def _driver_words(driver: Driver) -> str:
    cuda = f", CUDA {driver.cuda}" if driver.cuda else ""
    return f"NVIDIA driver {driver.version or '?'}{cuda}"


NO_DRIVER_FIX = Fix(
    "Run on a machine with an NVIDIA GPU and its driver (`nvidia-smi` must list the GPU). In "
    "a container, pass the GPU through: install the NVIDIA Container Toolkit on the host and "
    "start the container with `--gpus all` (Docker) or an nvidia.com/gpu resource "
    "(Kubernetes).",
    commands=(manual("nvidia-smi"),))


def judge_build(torch: Optional[TorchCuda], driver: Driver, need: Optional[str], *,
                torchaudio: Optional[str] = None) -> Result:
    """C1: a CPU build of torch on a host that has an NVIDIA driver. `torchaudio`: the
    installed torchaudio's version (the fix reinstalls it with torch), None when absent."""
    details: dict[str, Any] = {"driver": driver.to_dict(),
                               "torch": torch.to_dict() if torch else None, "need_gpu": need}
    if torch is not None and torch.hip:
        return skip(f"torch {torch.version} is a ROCm build: the cuda.* probes are for NVIDIA "
                    "CUDA builds", **details)
    which = (f"torch {torch.version} is a {torch.build} build" if torch is not None
             else "torch is not installed")
    if not driver.present:
        if need == "required":
            return fail(f"the recipe needs an NVIDIA GPU, but this machine has none usable "
                        f"({driver.reason}); {which}", NO_DRIVER_FIX, **details)
        return skip(f"{driver.reason}; {which}", **details)
    if torch is None:
        return skip(f"torch is not installed; {_driver_words(driver)} with {_gpus(driver)}",
                    **details)
    if torch.cuda:
        return ok(f"torch {torch.version} is a CUDA {torch.cuda} build; {_driver_words(driver)}"
                  f" with {_gpus(driver)}", **details)
    options, known = variants(torch.version)
    torch_req, ta_req = _same_torch(torch.version)
    if not options:  # a line older than the table: the newest line's builds
        options, torch_req, ta_req = WHEEL_CUDA[max(WHEEL_CUDA)], "torch", None
    chosen, native = pick_variant(options, driver.cuda)
    commands = reinstall_commands(torch_req, chosen, torchaudio_req=ta_req,
                                  torchaudio=torchaudio)
    note = "" if known else (
        f"; the CUDA builds of torch {'.'.join(map(str, _line(torch.version)))} are assumed to "
        f"be those of {'.'.join(map(str, max(WHEEL_CUDA)))} "
        f"({', '.join(tag(c) for c in options)}): check https://pytorch.org/get-started/locally/")
    driver_note = "" if native else (
        f" No CUDA build of this torch fits driver CUDA {driver.cuda}: update the driver to "
        f"{driver_for_cuda(chosen)} or newer for CUDA {chosen}.")
    fix = Fix(f"Install the CUDA {chosen} build of torch ({tag(chosen)}: the newest build this "
              f"driver supports{note}), with torchaudio from the same index; or keep the CPU "
              f"build and run the model with device='cpu'.{driver_note}", commands=commands)
    return fail(f"torch {torch.version} is a CPU-only build, but this machine has "
                f"{_driver_words(driver)} and {_gpus(driver)}: torch.cuda.is_available() is "
                "False (\"Torch not compiled with CUDA enabled\")", fix,
                index=INDEX.format(tag=tag(chosen)), **details)


def judge_driver(torch: Optional[TorchCuda], driver: Driver, *,
                 torchaudio: Optional[str] = None) -> Result:
    """C2: torch's CUDA runtime newer than the driver supports."""
    details: dict[str, Any] = {"driver_version": driver.version, "driver_cuda": driver.cuda,
                               "source": driver.source,
                               "torch_cuda": torch.cuda if torch else None,
                               "torch": torch.version if torch else None}
    if not driver.present:
        return skip(driver.reason or "no NVIDIA driver", **details)
    words = f"NVIDIA driver {driver.version} supports CUDA up to {driver.cuda or '?'}"
    if torch is None or not torch.cuda:
        what = "not installed" if torch is None else f"a {torch.build} build (see cuda.build)"
        return ok(f"{words}; torch is {what}", **details)
    too_old = torch.init_error and re.search(r"driver.*(too old|insufficient)",
                                             torch.init_error, re.IGNORECASE)
    have, need = _vtuple(driver.cuda)[:2], _vtuple(torch.cuda)[:2]
    options, _ = variants(torch.version)
    fitting = [c for c in options if _vtuple(c)[:2] <= have]
    minimum = driver_for_cuda(torch.cuda)
    commands: list[str] = []
    if fitting:
        torch_req, ta_req = _same_torch(torch.version)
        commands += reinstall_commands(torch_req, fitting[-1], torchaudio_req=ta_req,
                                       torchaudio=torchaudio)
    fix = Fix(f"Update the NVIDIA driver to {minimum or 'a newer release'} or newer (for CUDA "
              f"{torch.cuda})"
              + (f", or install torch's CUDA {fitting[-1]} build, which this driver runs"
                 if fitting else ", or install an older torch built for CUDA "
                 f"{driver.cuda or 'the driver supports'}") + ".",
              commands=tuple(commands))
    if too_old or (have and need and need[0] > have[0]):
        return fail(f"torch {torch.version} is built for CUDA {torch.cuda}, but the {words}: "
                    "\"The NVIDIA driver on your system is too old\""
                    + (f" ({torch.init_error[:200]})" if torch.init_error else ""),
                    fix, **details)
    if have and need and need > have:
        return warn(f"torch {torch.version} is built for CUDA {torch.cuda}, newer than the "
                    f"{words}: it runs under CUDA minor-version compatibility, but kernels "
                    "compiled from PTX and features of the newer runtime fail "
                    "(cudaErrorUnsupportedPtxVersion)", fix, **details)
    return ok(f"{words}; torch {torch.version} is built for CUDA {torch.cuda}", **details)


def arch_support(capability: tuple[int, int], arch_list: tuple[str, ...]) -> tuple[str, str]:
    """How a wheel runs on a GPU of `capability`: ('sass', arch) for a binary built for it or
    for an older minor of the same major, ('ptx', arch) for PTX it can JIT-compile, or
    ('none', '')."""
    major, minor = capability
    sass = []
    ptx = []
    for arch in arch_list:
        m = re.fullmatch(r"(sm|compute)_(\d+)(\d)([af]?)", arch)
        if not m:
            continue
        kind, amaj, amin, suffix = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if kind == "sm":
            exact = (amaj, amin) == (major, minor)
            if exact or (not suffix and amaj == major and amin <= minor):
                sass.append(((amaj, amin), arch))
        elif not suffix and (amaj, amin) <= (major, minor):
            ptx.append(((amaj, amin), arch))
    if sass:
        return "sass", max(sass)[1]
    if ptx:
        return "ptx", max(ptx)[1]
    return "none", ""


def _prefer_driver(candidates: list[str], driver: Driver) -> str:
    """The newest of `candidates` the driver runs natively, else the oldest of them."""
    have = _vtuple(driver.cuda)[:2]
    fits = [c for c in candidates if have and _vtuple(c)[:2] <= have]
    return fits[-1] if fits else candidates[0]


def judge_arch(torch: Optional[TorchCuda], driver: Driver, *,
               torchaudio: Optional[str] = None) -> Result:
    """C3: every GPU's compute capability against the kernels in the wheel."""
    details: dict[str, Any] = {"arch_list": list(torch.arch_list) if torch else [],
                               "torch": torch.version if torch else None}
    if not driver.present:
        return skip(driver.reason or "no NVIDIA driver", **details)
    if torch is None or not torch.cuda:
        return skip("torch is not a CUDA build (see cuda.build)", **details)
    gpus = [d for d in torch.devices if d.get("capability")] or \
        [d for d in driver.devices if d.get("capability")]
    if not gpus:
        return skip("no GPU capability known: torch sees no device and NVML gave none"
                    + (f" ({torch.init_error[:200]})" if torch.init_error else ""), **details)
    if not torch.arch_list:
        return skip(f"torch {torch.version} reports no architecture list", **details)
    rows = []
    for d in gpus:
        cap = (int(d["capability"][0]), int(d["capability"][1]))
        how, arch = arch_support(cap, torch.arch_list)
        rows.append({"index": d.get("index"), "name": d.get("name"),
                     "sm": f"sm_{cap[0]}{cap[1]}", "capability": list(cap), "runs": how,
                     "via": arch or None})
    details["devices"] = rows
    archs = " ".join(torch.arch_list)
    missing = [r for r in rows if r["runs"] == "none"]
    if missing:
        first = missing[0]
        cap = tuple(first["capability"])
        sms = sorted(int(m) for m in re.findall(r"sm_(\d+)", archs))
        newer = not sms or cap[0] * 10 + cap[1] > sms[-1]
        options, _ = variants(torch.version)
        torch_req, ta_req = _same_torch(torch.version)
        line = _line(torch.version)
        shipping = [c for c in options if index_ships(cap, line, c)]
        details["indexes"] = indexes_for_arch(cap, torch.version)
        if newer:
            want = ARCH_MIN_CUDA.get(cap) or max(  # type: ignore[call-overload]
                (v for k, v in ARCH_MIN_CUDA.items() if k <= cap), key=_vtuple, default="12.8")
            good = [c for c in (shipping or options) if _ge(c, want) and c != torch.cuda]
            if good:
                chosen = _prefer_driver(good, driver)
            else:  # no build of this line has it: the first line that does
                line_ok = next((ln for ln in sorted(WHEEL_CUDA)
                                if any(_ge(c, want) for c in WHEEL_CUDA[ln])), None)
                chosen = next(c for c in WHEEL_CUDA[line_ok] if _ge(c, want)) if line_ok \
                    else want
                torch_req = f"torch>={line_ok[0]}.{line_ok[1]}" if line_ok else "torch"
                ta_req = None
            why = (f"{first['sm']} needs a build made with CUDA {want} or newer "
                   f"({tag(chosen)})")
        else:
            if shipping:
                chosen = _prefer_driver(shipping, driver)
            else:
                older = next((c for ln in sorted(WHEEL_CUDA, reverse=True) if ln <= line
                              for c in reversed(WHEEL_CUDA[ln]) if index_ships(cap, ln, c)),
                             None)
                chosen = older or (options[0] if options else "12.6")
            why = (f"{first['sm']} is older than every architecture this build ships (newer "
                   f"CUDA releases drop old GPUs); a build for an older CUDA ({tag(chosen)}) "
                   "still has it")
        if details["indexes"]:
            yes = [t for t, v in details["indexes"].items() if v]
            no = [t for t, v in details["indexes"].items() if v is False]
            why += (f". Of torch {'.'.join(map(str, line))}'s indexes, "
                    + (f"{', '.join(yes)} ship{'s' if len(yes) == 1 else ''} {first['sm']} "
                       "kernels" if yes else f"none ships {first['sm']} kernels")
                    + (f"; {', '.join(no)} {'does' if len(no) == 1 else 'do'} not" if no
                       else ""))
        driver_note = ""
        if driver.cuda and _vtuple(chosen)[:2] > _vtuple(driver.cuda)[:2]:
            driver_note = (f" That build also needs NVIDIA driver {driver_for_cuda(chosen)} or "
                           f"newer (this one supports CUDA {driver.cuda}).")
        fix = Fix(f"Install a torch build whose kernels include {first['sm']}: {why}."
                  f"{driver_note}",
                  commands=reinstall_commands(torch_req, chosen, torchaudio_req=ta_req,
                                              torchaudio=torchaudio))
        names = ", ".join(f"GPU {r['index']} {r['name']} ({r['sm']})" for r in missing)
        return fail(f"{names}: torch {torch.version} has no kernel for "
                    f"{'this architecture' if len(missing) == 1 else 'these architectures'} "
                    f"(it ships {archs}): \"no kernel image is available for execution on the "
                    f"device\" / \"{first['sm']} is not compatible with the current PyTorch "
                    "installation\"", fix, **details)
    ptx = [r for r in rows if r["runs"] == "ptx"]
    summary = ", ".join(f"GPU {r['index']} {r['name']} ({r['sm']}: {r['via']})" for r in rows)
    if ptx:
        return ok(f"{summary}; {', '.join(r['sm'] for r in ptx)} run through PTX compiled "
                  "at first use (a slow first launch; the driver caches it in "
                  "~/.nv/ComputeCache)", **details)
    return ok(f"{summary}: torch {torch.version} ships kernels for every GPU", **details)


# --- CUDA_VISIBLE_DEVICES and the allocator configuration ------------------------------------


def parse_alloc_conf(value: str) -> tuple[list[tuple[str, str]], list[str]]:
    """'key:value,key:value' -> pairs, and syntax problems. Brackets group list values
    (roundup_power2_divisions:[256:1,512:2])."""
    pairs, problems = [], []
    depth, item, items = 0, "", []
    for ch in value:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            items.append(item)
            item = ""
        else:
            item += ch
    items.append(item)
    for it in items:
        it = it.strip()
        if not it:
            continue
        if ":" not in it:
            problems.append(f"'{it}' has no ':' (expected key:value)")
            continue
        key, val = (s.strip() for s in it.split(":", 1))
        pairs.append((key, val))
    return pairs, problems


def check_alloc_value(key: str, value: str) -> Optional[str]:
    """A value problem for a known key (what the allocator rejects when CUDA starts)."""
    boolean = {"expandable_segments", "release_lock_on_cudamalloc",
               "release_lock_on_hipmalloc", "pinned_use_cuda_host_register",
               "pinned_use_hip_host_register", "pinned_use_background_threads",
               "graph_capture_record_stream_reuse"}
    if key in boolean and value not in ("True", "False"):
        return f"{key} must be True or False (case matters), not '{value}'"
    if key == "backend" and value not in ("native", "cudaMallocAsync"):
        return f"backend must be native or cudaMallocAsync, not '{value}'"
    if key.endswith("_mb") or key == "pinned_num_register_threads":
        if not re.fullmatch(r"\d+", value):
            return f"{key} must be an integer, not '{value}'"
        if key == "max_split_size_mb" and int(value) < 20:
            return "max_split_size_mb must be at least 20"
    if key in ("garbage_collection_threshold", "per_process_memory_fraction"):
        try:
            number = float(value)
        except ValueError:
            return f"{key} must be a number between 0 and 1, not '{value}'"
        if not 0.0 < number < 1.0 + (key == "per_process_memory_fraction"):
            return f"{key} must be between 0 and 1, not {value}"
    return None


def judge_env(environ: dict[str, str], driver: Driver) -> Result:
    """CUDA_VISIBLE_DEVICES that hides every GPU, and allocator settings with unknown keys or
    values the allocator rejects."""
    cvd = environ.get("CUDA_VISIBLE_DEVICES")
    order = environ.get("CUDA_DEVICE_ORDER")
    confs = {k: environ[k] for k in ALLOC_VARS if k in environ}
    details: dict[str, Any] = {"CUDA_VISIBLE_DEVICES": cvd, "CUDA_DEVICE_ORDER": order,
                               **confs, "driver_present": driver.present}
    problems: list[str] = []
    exports: list[str] = []
    for var, value in confs.items():
        pairs, syntax = parse_alloc_conf(value)
        problems += [f"{var}: {p}" for p in syntax]
        fixed = []
        for key, val in pairs:
            if key not in ALLOC_KEYS:
                close = difflib.get_close_matches(key, sorted(ALLOC_KEYS), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"{var}: unknown key '{key}'{hint}: CUDA start-up stops "
                                f"with \"Unrecognized key '{key}' in Accelerator allocator "
                                "config\" (before torch 2.9: \"Unrecognized CachingAllocator "
                                "option\")")
                if close:
                    fixed.append(f"{close[0]}:{val}")
                continue
            bad = check_alloc_value(key, val)
            if bad:
                problems.append(f"{var}: {bad}")
                if key == "expandable_segments" or key.startswith(("release_lock", "pinned_use")):
                    fixed.append(f"{key}:{'True' if val.lower() in ('true', '1') else 'False'}")
                continue
            fixed.append(f"{key}:{val}")
        if fixed != [f"{k}:{v}" for k, v in pairs]:
            exports.append(export(var, ",".join(fixed)))
    gpus = [dict(d) for d in driver.devices]
    shown = visible_devices(cvd, gpus) if cvd is not None else None
    if cvd is None or not driver.present:
        hides_all = False
    elif gpus:
        hides_all = shown == []
    else:  # the driver's GPUs are unknown (no NVML): only what hides every GPU anywhere
        hides_all = cvd.split(",")[0].strip() in ("", "-1")
    if hides_all:
        every = ",".join(str(i) for i in range(max(len(gpus), 1)))
        problems.insert(0, f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU from CUDA although "
                           f"the driver lists {len(gpus) or 'some'}: torch.cuda.is_available() "
                           "is False")
        exports.insert(0, export("CUDA_VISIBLE_DEVICES", every))
    if driver.present and len(gpus) > 1 and cvd and order != "PCI_BUS_ID" and \
            any(re.fullmatch(r"\s*\d+\s*", e) for e in cvd.split(",")):
        details["order_note"] = ("CUDA numbers GPUs fastest first unless CUDA_DEVICE_ORDER="
                                 "PCI_BUS_ID; nvidia-smi numbers them by PCI bus")
    if shown is not None and gpus:
        details["visible"] = [{"index": d.get("index"), "name": d.get("name"),
                               "uuid": d.get("uuid")} for d in shown]
    said = ", ".join(f"{k}={v!r}" for k, v in (("CUDA_VISIBLE_DEVICES", cvd), *confs.items())
                     if v is not None)
    if problems:
        return warn("; ".join(problems)[:600],
                    Fix("Set the variables to values CUDA and torch's allocator accept "
                        "(documented keys: " + ", ".join(sorted(ALLOC_KEYS)[:8]) + ", ...).",
                        commands=steps(*exports)), problems=problems, **details)
    if not driver.present and not said:
        return skip(f"{driver.reason or 'no NVIDIA driver'}; no CUDA variable is set", **details)
    return ok(said or "CUDA_VISIBLE_DEVICES and PYTORCH_CUDA_ALLOC_CONF are unset (every GPU "
              "visible, default allocator)", **details)


# --- errors CUDA raises, and what they mean -------------------------------------------------

CUDA_ERRORS: tuple[tuple[str, str, str], ...] = (
    (r"no kernel image is available|not compatible with the current PyTorch", "C3",
     "the wheel has no kernel for this GPU (see cuda.arch for the build to install)"),
    (r"driver.*(too old|insufficient)", "C2",
     "the driver is older than torch's CUDA runtime (see cuda.driver)"),
    (r"out of memory", "C4", "the GPU is full: other processes hold its memory (see vram.devices)"),
    (r"busy or unavailable|exclusive", "",
     "the GPU is in exclusive-process compute mode and another process holds it "
     "(nvidia-smi -q -d COMPUTE), or it is in a bad state"),
    (r"CUDNN_STATUS|libcudnn", "C6", "cuDNN does not match torch's build (see cuda.cudnn)"),
    (r"unspecified launch failure|illegal memory access|ECC|Xid", "",
     "the GPU faulted: check `nvidia-smi -q` and the kernel log for Xid errors"),
)


def classify(message: str) -> tuple[str, str]:
    """(family id or '', what it means) for a CUDA error message."""
    for pattern, family, meaning in CUDA_ERRORS:
        if re.search(pattern, message, re.IGNORECASE):
            return family, meaning
    return "", "run again with CUDA_LAUNCH_BLOCKING=1 to see the failing call"


# --- probes ---------------------------------------------------------------------------------

def collect_build(ctx: Context) -> dict[str, Any]:
    """cuda.build's facts: the driver, torch's CUDA side (or its import error), torchaudio."""
    return gpu_facts()


@probe("cuda.build", title="A CUDA build of torch where an NVIDIA driver is present",
       memo=True, isolated=True, families=("C1",), collect=collect_build,
       component="gpu")
def build(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Fails when torch is a CPU-only wheel on a machine whose NVIDIA driver NVML (or
    /proc/driver/nvidia/version) reports, with the command that installs the CUDA build
    matching the driver's CUDA from download.pytorch.org. With no driver: `skip`, or `fail`
    when the recipe says it needs a GPU."""
    need = gpu_need(ctx)
    driver = driver_of(facts)
    if facts.get("torch_error"):
        return skip(f"torch does not import ({facts['torch_error']}); see torch.build"[:300],
                    driver=driver.to_dict())
    return judge_build(torch_of(facts), driver, need, torchaudio=facts.get("torchaudio"))


def collect_driver(ctx: Context) -> dict[str, Any]:
    """cuda.driver's facts: the driver (NVML or /proc) and torch's CUDA side."""
    return gpu_facts()


@probe("cuda.driver", title="The NVIDIA driver supports the CUDA runtime torch was built for",
       memo=True, isolated=True, families=("C2",), collect=collect_driver,
       component="gpu")
def driver(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Reads the driver version and the highest CUDA it supports through NVML
    (nvmlSystemGetCudaDriverVersion_v2) and compares it with `torch.version.cuda`; a runtime
    of a newer CUDA major than the driver supports fails ("The NVIDIA driver on your system
    is too old"), a newer minor warns (minor-version compatibility: PTX kernels fail)."""
    torch = None if facts.get("torch_error") else torch_of(facts)
    return judge_driver(torch, driver_of(facts), torchaudio=facts.get("torchaudio"))


def collect_arch(ctx: Context) -> dict[str, Any]:
    """cuda.arch's facts: the GPUs' capabilities (NVML, and torch's devices) and the wheel's
    architecture list."""
    return gpu_facts()


@probe("cuda.arch", title="The torch wheel ships kernels for every GPU's architecture",
       memo=True, isolated=True, families=("C3", "F5"), collect=collect_arch,
       component="gpu")
def arch(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Compares each GPU's compute capability with `torch.cuda.get_arch_list()`: a binary for
    the same architecture (sm_XY, or an older minor of the same major) or PTX it can compile
    (compute_XY at or below the GPU's) runs; anything else fails with "no kernel image is
    available for execution on the device" (an RTX 50xx, sm_120, needs a cu128+ build)."""
    driver = driver_of(facts)
    torch, early = _torch_for_gpu(facts, driver)
    if early:
        return early
    return judge_arch(torch, driver, torchaudio=facts.get("torchaudio"))


def run_kernels() -> list[dict[str, Any]]:
    """An elementwise kernel and a 256x256 matmul on each visible GPU, synchronised: per GPU
    what came back (the sum, the largest difference from the CPU's matmul, the time) or what
    it raised."""
    import torch

    out: list[dict[str, Any]] = []
    for index in range(torch.cuda.device_count()):
        device = torch.device("cuda", index)
        t0 = time.perf_counter()
        try:
            x = torch.arange(1 << 16, dtype=torch.float32, device=device)
            total = float((x * 2 + 1).sum().item())
            a = torch.linspace(-1, 1, 256 * 256, dtype=torch.float32).reshape(256, 256)
            got = (a.to(device) @ a.to(device)).cpu()
            torch.cuda.synchronize(device)
            want = a @ a
            out.append({"index": index, "name": torch.cuda.get_device_name(index),
                        "ms": round((time.perf_counter() - t0) * 1000, 1),
                        "sum": total, "sum_of": 1 << 16,
                        "matmul_max_abs_err": float((got - want).abs().max()),
                        "matmul_max_abs": float(want.abs().max())})
        except Exception as exc:
            out.append({"index": index, "error": f"{type(exc).__name__}: {exc}"[:2000]})
        finally:
            try:
                torch.cuda.empty_cache()
            except Exception:
                pass
    return out


def collect_kernel(ctx: Context) -> dict[str, Any]:
    """cuda.kernel's facts: the driver, torch, CUDA_VISIBLE_DEVICES and, when there is a
    driver and torch's CUDA starts, what the kernels returned on each GPU (`kernels`; None:
    not run, and the other facts say why)."""
    facts = gpu_facts()
    facts["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    info = facts["torch"]
    runs = facts["driver"]["present"] and info and info.get("cuda") and info.get("available")
    facts["kernels"] = run_kernels() if runs else None
    return facts


def _kernel_row(r: dict[str, Any]) -> dict[str, Any]:
    """One GPU's kernel facts judged: the problem in what it computed, or what its error
    means."""
    if r.get("error"):
        message = str(r["error"])
        family, meaning = classify(message)
        return {"index": r.get("index"), "error": message[:500], "family": family or None,
                "meaning": meaning}
    n = int(r.get("sum_of") or 1 << 16)
    expected = float(n ** 2)  # sum of 2i+1 for i < n is n^2
    total, err = float(r["sum"]), float(r["matmul_max_abs_err"])
    problem = None
    if abs(total - expected) > expected * 1e-5:
        problem = f"elementwise sum {total} != {expected}"
    elif err > 1e-2 * float(r["matmul_max_abs"]):  # TF32 stays well inside 1 %
        problem = f"matmul differs from the CPU by {err:.3g}"
    return {"index": r.get("index"), "name": r.get("name"), "ms": r.get("ms"),
            "matmul_max_abs_err": err, "problem": problem}


@probe("cuda.kernel", title="A CUDA kernel launches and synchronises on every visible GPU",
       memo=True, isolated=True, timeout=90, collect=collect_kernel, component="gpu")
def kernel(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Runs an elementwise kernel and a 256x256 matmul on each visible GPU, synchronises and
    checks the numbers against the CPU; the CUDA error it raises is the verdict (no kernel
    image, driver too old, out of memory, busy device)."""
    driver = driver_of(facts)
    torch_info, early = _torch_for_gpu(facts, driver)
    if early:
        return early
    assert torch_info is not None
    if not driver.present:
        return skip(driver.reason or "no NVIDIA driver", torch=torch_info.version)
    if not torch_info.cuda:
        return skip(f"torch {torch_info.version} is a {torch_info.build} build (see cuda.build)")
    details: dict[str, Any] = {"torch": torch_info.version}
    cvd = facts.get("CUDA_VISIBLE_DEVICES")
    if not torch_info.available and cvd is not None and driver.devices and \
            visible_devices(cvd, [dict(d) for d in driver.devices]) == []:
        return skip(f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU (see cuda.env)", **details)
    if not torch_info.available:
        family, meaning = classify(torch_info.init_error or "")
        return fail(f"CUDA does not initialise in torch {torch_info.version}: "
                    f"{torch_info.init_error or 'torch.cuda.is_available() is False'}"[:500],
                    Fix(f"CUDA initialisation failed: {meaning}. Check CUDA_VISIBLE_DEVICES "
                        "(cuda.env) and the driver (cuda.driver).",
                        commands=(manual("nvidia-smi"),
                                  manual(dists.executable(), "-c",
                                         "import torch; torch.cuda.init()"))),
                    family=family or None, **details)
    results = [_kernel_row(r) for r in facts.get("kernels") or []]
    details["devices"] = results
    broken = [r for r in results if r.get("error")]
    wrong = [r for r in results if r.get("problem")]
    if broken:
        r = broken[0]
        return fail(f"GPU {r['index']}: the kernel failed: {r['error']}"[:500],
                    Fix(f"{r['meaning'][:1].upper()}{r['meaning'][1:]}.",
                        commands=("CUDA_LAUNCH_BLOCKING=1 tts-doctor check --only cuda -v",)),
                    **details)
    if wrong:
        r = wrong[0]
        return fail(f"GPU {r['index']} {r['name']} computes wrong numbers: {r['problem']}",
                    Fix("The GPU returns wrong results: check `nvidia-smi -q` for ECC and Xid "
                        "errors, and update the driver.",
                        commands=(manual("nvidia-smi", "-q", "-d", "ECC"),)),
                    **details)
    if not results:
        return fail("torch says CUDA is available but counts no device",
                    Fix("Check CUDA_VISIBLE_DEVICES (cuda.env).",
                        commands=(manual("nvidia-smi"),)),
                    **details)
    return ok(", ".join(f"GPU {r['index']} {r['name']}: kernel + matmul in {r['ms']} ms"
                        for r in results), **details)


def cudnn_requirement(requires: list[str]) -> Optional[str]:
    """The nvidia-cudnn requirement of torch's metadata (Linux CUDA wheels pin it)."""
    for req in requires:
        name = re.split(r"[\s=<>!~;\[]", req, maxsplit=1)[0]
        if dists.canonical(name).startswith("nvidia-cudnn"):
            return req.split(";")[0].strip().replace(" ", "")
    return None


def collect_cudnn(ctx: Context) -> dict[str, Any]:
    """cuda.cudnn's facts: torch's requirements (the nvidia-cudnn pin), what
    `torch.backends.cudnn` says, the libcudnn libraries the loader misses when it finds none,
    and, with a GPU, the largest difference of a cuDNN conv1d from the CPU's (or what it
    raised). Each step only when the one before it allows it; the facts say where it stopped."""
    facts = gpu_facts()
    info = facts["torch"]
    if not info or not info.get("cuda"):
        return facts
    import torch

    dist = dists.distribution("torch")
    facts["torch_requires"] = [str(r) for r in (dist.requires or [])] if dist else []
    try:
        version = torch.backends.cudnn.version()
        available = bool(torch.backends.cudnn.is_available())
    except Exception as exc:
        facts["cudnn_error"] = f"{type(exc).__name__}: {exc}"[:2000]
        return facts
    facts.update(cudnn_version=version, cudnn_available=available,
                 cudnn_enabled=bool(torch.backends.cudnn.enabled))
    if not available or version is None:
        facts["cudnn_missing"] = _missing_cudnn(info.get("location"))
        return facts
    if not facts["driver"]["present"] or not info.get("available"):
        return facts
    try:
        x = torch.randn(2, 8, 400, generator=torch.Generator().manual_seed(0))
        w = torch.randn(16, 8, 5, generator=torch.Generator().manual_seed(1))
        with torch.backends.cudnn.flags(enabled=True):
            got = torch.nn.functional.conv1d(x.cuda(), w.cuda(), padding=2).cpu()
        torch.cuda.synchronize()
        facts["conv1d_max_abs_err"] = float(
            (got - torch.nn.functional.conv1d(x, w, padding=2)).abs().max())
    except Exception as exc:
        facts["conv1d_error"] = f"{type(exc).__name__}: {exc}"[:2000]
    return facts


@probe("cuda.cudnn", title="cuDNN loads and runs a conv1d on the GPU", isolated=True,
       memo=True, families=("C6",), timeout=90, collect=collect_cudnn, component="gpu")
def cudnn(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Reads `torch.backends.cudnn.version()` and runs a conv1d through cuDNN on the GPU,
    compared with the CPU; a missing or mismatched cuDNN library (the nvidia-cudnn wheel torch
    pins, or libcudnn.so.N on the loader's path) fails with the exact requirement."""
    driver = driver_of(facts)
    torch_info, early = _torch_for_gpu(facts, driver)
    if early:
        return early
    assert torch_info is not None
    if not torch_info.cuda:
        return skip(f"torch {torch_info.version} is a {torch_info.build} build"
                    + ("" if driver.present else f"; {driver.reason}"))
    requirement = cudnn_requirement(list(facts.get("torch_requires") or []))
    details: dict[str, Any] = {"torch": torch_info.version, "requirement": requirement}
    fix = Fix("Install the cuDNN torch was built against (the nvidia-cudnn wheel its metadata "
              "pins), and make sure no other libcudnn on LD_LIBRARY_PATH shadows it.",
              commands=((dists.pip_install(requirement),) if requirement else ())
              + (dists.pip_install("torch==" + torch_info.version.split("+")[0],
                                   extra="--force-reinstall --index-url "
                                   + INDEX.format(tag=tag(torch_info.cuda))),))
    if facts.get("cudnn_error"):
        return fail(f"cuDNN does not load: {facts['cudnn_error']}"[:500], fix, **details)
    version = facts.get("cudnn_version")
    details.update(version=version, available=facts.get("cudnn_available"),
                   enabled=facts.get("cudnn_enabled"))
    if not facts.get("cudnn_available") or version is None:
        missing = list(facts.get("cudnn_missing") or [])
        details["missing"] = missing
        return fail(f"torch {torch_info.version} finds no cuDNN"
                    + (f" ({', '.join(missing)} not found)" if missing else ""), fix, **details)
    if not driver.present or not torch_info.available:
        return skip(f"cuDNN {version} loads; no GPU to run it on ("
                    f"{driver.reason or torch_info.init_error or 'CUDA unavailable'})", **details)
    if facts.get("conv1d_error"):
        message = str(facts["conv1d_error"])
        return fail(f"cuDNN {version}: conv1d on the GPU failed: {message}"[:500], fix,
                    error=message[:1000], **details)
    err = float(facts["conv1d_max_abs_err"])
    details["max_abs_err"] = err
    if err > 1e-2:
        return fail(f"cuDNN {version}: conv1d on the GPU differs from the CPU by {err:.3g}",
                    fix, **details)
    return ok(f"cuDNN {version} runs conv1d on the GPU (max error vs CPU {err:.1e})", **details)


def _missing_cudnn(torch_dir: Optional[str]) -> list[str]:
    """libcudnn libraries libtorch_cuda.so needs that the loader would not find."""
    from tts_doctor import elf

    if not torch_dir:
        return []
    lib = os.path.join(torch_dir, "lib", "libtorch_cuda.so")
    if not os.path.exists(lib):
        return []
    res = elf.resolve(lib, depth=2)
    return sorted(name for name in res.missing if "cudnn" in name)


ENV_VARS = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", *ALLOC_VARS)


def collect_env(ctx: Context) -> dict[str, Any]:
    """cuda.env's facts: the CUDA variables as set (unset ones absent), the driver's GPUs, and
    what torch's own allocator parser (torch >= 2.9) says of each allocator setting
    (`torch_rejects`: None when torch is not installed or nothing is set)."""
    environ = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    confs = {k: environ[k] for k in ALLOC_VARS if k in environ}
    return {"driver": driver_facts().to_dict(), "environ": environ,
            "torch": dists.version("torch"),
            "torch_rejects": _torch_rejects(confs) if confs and dists.version("torch")
            else None}


@probe("cuda.env", title="CUDA_VISIBLE_DEVICES and PYTORCH_CUDA_ALLOC_CONF", isolated=True,
       memo=True, collect=collect_env, component="gpu")
def env(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Reports CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER and the caching allocator settings.
    Warns when CUDA_VISIBLE_DEVICES hides every GPU the driver has ('', -1, an index past the
    last GPU), and when PYTORCH_CUDA_ALLOC_CONF / PYTORCH_ALLOC_CONF holds a key the allocator
    does not know (torch stops at CUDA start-up) or a value it rejects."""
    environ = {str(k): str(v) for k, v in (facts.get("environ") or {}).items()}
    result = judge_env(environ, driver_of(facts))
    confs = {k: environ[k] for k in ALLOC_VARS if k in environ}
    if confs and facts.get("torch") and result.status.value != "warn":
        # torch's own parser on the values it would read at CUDA start-up
        rejected = list(facts.get("torch_rejects") or [])
        if rejected:
            return warn("; ".join(rejected)[:600],
                        Fix("Fix the allocator settings torch rejects (or empty the "
                            "variable for the defaults).",
                            commands=steps(*(export(k, "") for k in confs))),
                        problems=rejected, **result.details)
    return result


def _torch_rejects(confs: dict[str, str]) -> list[str]:
    """What torch's own allocator parser says of each setting: one line per variable it
    rejects (collector side; [] when this torch has no such parser)."""
    try:
        import torch

        setter = getattr(torch._C, "_accelerator_setAllocatorSettings", None)
        getter = getattr(torch._C, "_accelerator_getAllocatorSettings", None)
    except Exception:
        return []
    if setter is None:
        return []
    out = []
    before = None
    try:  # the getter parses the environment's settings too, and raises on a bad one
        before = getter() if getter else None
    except Exception:
        pass
    for var, value in confs.items():
        try:
            setter(value)
        except Exception as exc:
            out.append(f"{var}: torch rejects it: {str(exc).splitlines()[0][:200]}")
    if before is not None:
        try:
            setter(before)
        except Exception:
            pass
    return out


def _run_version(path: str, *args: str) -> tuple[Optional[str], str]:
    try:
        proc = subprocess.run([path, *args], capture_output=True, text=True, timeout=15,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return None, f"{path} {' '.join(args)} did not finish in 15 s"
    except OSError as exc:
        return None, f"{path}: {exc.strerror or exc}"
    if proc.returncode != 0:
        return None, f"{path} exited with {proc.returncode}: {(proc.stderr or proc.stdout)[-200:]}"
    return proc.stdout.strip() or proc.stderr.strip(), ""


def find_cuda_home(environ: dict[str, str]) -> tuple[Optional[str], str]:
    """CUDA_HOME the way torch.utils.cpp_extension finds it, and how."""
    home = environ.get("CUDA_HOME") or environ.get("CUDA_PATH")
    if home:
        return home, "CUDA_HOME" if environ.get("CUDA_HOME") else "CUDA_PATH"
    nvcc = shutil.which("nvcc", path=environ.get("PATH"))
    if nvcc:
        return os.path.dirname(os.path.dirname(nvcc)), f"nvcc on PATH ({nvcc})"
    if os.path.exists("/usr/local/cuda"):
        return "/usr/local/cuda", "the default /usr/local/cuda"
    return None, "no CUDA_HOME, no nvcc on PATH, no /usr/local/cuda"


def _torch_cuda_text() -> Optional[str]:
    """torch.version.cuda read from torch/version.py, without importing torch."""
    dist = dists.distribution("torch")
    if dist is None:
        return None
    try:
        text = open(str(dist.locate_file("torch/version.py")), encoding="utf-8").read()
    except OSError:
        return None
    m = re.search(r"^cuda(?::[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return m.group(1) if m else None


def toolchain_facts(environ: dict[str, str]) -> dict[str, Any]:
    """What torch.utils.cpp_extension would use: CUDA_HOME found as torch finds it, nvcc's
    release (by running it), cuda_runtime.h, ninja (by running it), a C++ compiler, and
    torch's CUDA (read from torch/version.py, no import). The diagnosed interpreter's own
    bin folder is searched after PATH: `pip install ninja` puts ninja there."""
    from tts_doctor import target as targets

    path = os.pathsep.join(filter(None, [environ.get("PATH", ""),
                                         os.path.join(targets.current().prefix, "bin")]))
    home, how = find_cuda_home(environ)
    nvcc = os.path.join(home, "bin", "nvcc") if home else None
    nvcc_line, nvcc_error = (_run_version(nvcc, "--version") if nvcc and os.path.exists(nvcc)
                             else (None, f"no nvcc at {nvcc}" if nvcc else how))
    release = re.search(r"release (\d+\.\d+)", nvcc_line or "")
    header = os.path.join(home, "include", "cuda_runtime.h") if home else None
    ninja = shutil.which("ninja", path=path)
    ninja_line, ninja_error = _run_version(ninja, "--version") if ninja else (None, "not on PATH")
    # where the headers are, for a CUDA_HOME that lacks them (nvcc behind a wrapper script)
    homes = [os.path.dirname(os.path.dirname(t)) for t in (_wrapped(nvcc),
                                                            os.path.realpath(nvcc or "")) if t]
    homes.append("/usr/local/cuda")
    with_headers = [h for h in dict.fromkeys(homes)
                    if os.path.exists(os.path.join(h, "include", "cuda_runtime.h"))]
    return {"cuda_home": home, "cuda_home_from": how, "nvcc": nvcc,
            "nvcc_cuda": release.group(1) if release else None,
            "nvcc_error": nvcc_error or None,
            "cuda_runtime_h": header if header and os.path.exists(header) else None,
            "homes_with_headers": with_headers,
            "ninja": ninja, "ninja_version": ninja_line, "ninja_error": ninja_error or None,
            "cxx_name": environ.get("CXX", "c++"),
            "cxx": shutil.which(environ.get("CXX", "c++"), path=path),
            "torch_cuda": _torch_cuda_text()}


def judge_toolchain(facts: dict[str, Any], need: str) -> Result:
    """O6: every piece the JIT build needs, and nvcc's CUDA major against torch's."""
    problems, commands = [], []
    nvcc_cuda, torch_cuda, home = facts["nvcc_cuda"], facts["torch_cuda"], facts["cuda_home"]
    if not nvcc_cuda:
        problems.append(f"no working nvcc ({facts['nvcc_error']})")
        want = (torch_cuda or "12.8").replace(".", "-")
        commands.append(system("apt-get", "install", "-y", f"cuda-nvcc-{want}",
                               f"cuda-cudart-dev-{want}",
                               note="from NVIDIA's CUDA apt repository"))
    elif not facts["cuda_runtime_h"]:
        problems.append(f"CUDA_HOME is {home} (from {facts['cuda_home_from']}) but "
                        f"{home}/include/cuda_runtime.h does not exist: torch would compile and "
                        "link against CUDA_HOME/include and CUDA_HOME/lib64 and find neither the "
                        "headers nor libcudart")
        if facts["homes_with_headers"]:
            commands.append(export("CUDA_HOME", facts["homes_with_headers"][0]))
    if nvcc_cuda and torch_cuda and _vtuple(nvcc_cuda)[0] != _vtuple(torch_cuda)[0]:
        problems.append(f"nvcc is CUDA {nvcc_cuda} but torch was built with CUDA {torch_cuda}: "
                        "torch refuses to build extensions across CUDA majors (\"The detected "
                        "CUDA version mismatches the version that was used to compile "
                        "PyTorch\")")
        commands.append(export("CUDA_HOME", f"/usr/local/cuda-{torch_cuda}",
                               note=f"a CUDA {torch_cuda} toolkit"))
    if not facts["ninja_version"]:
        problems.append(f"ninja: {facts['ninja_error']}")
        commands.append(dists.pip_install("ninja"))
    if not facts["cxx"]:
        problems.append(f"no C++ compiler ({facts['cxx_name']} not on PATH)")
        commands.append(system("apt-get", "install", "-y", "g++"))
    details = {"need": need, **facts}
    if problems:
        what = "; ".join(problems)
        fix = Fix("Give torch.utils.cpp_extension what it needs to build the kernel: nvcc of "
                  "torch's CUDA major, CUDA_HOME naming that toolkit's folder (with "
                  "include/cuda_runtime.h, not the folder of a wrapper script), ninja and a "
                  "C++ compiler; or turn the custom kernel off (IndexTTS-2: "
                  "use_cuda_kernel=False) and use the slower PyTorch path.",
                  commands=steps(*commands))
        if need == "required":
            return fail(f"the recipe needs a CUDA toolchain: {what}"[:600], fix, **details)
        return warn(f"the recipe's optional CUDA kernel cannot be built, it falls back to "
                    f"PyTorch (\"Failed to load custom CUDA kernel\"): {what}"[:600], fix,
                    **details)
    note = "" if torch_cuda else " (torch is not a CUDA build: nothing will be compiled yet)"
    return ok(f"nvcc {nvcc_cuda} (CUDA_HOME {home}, from {facts['cuda_home_from']}), ninja "
              f"{facts['ninja_version']}, {facts['cxx']}{note}", **details)


def collect_toolchain(ctx: Context) -> dict[str, Any]:
    """cuda.toolchain's facts (`toolchain_facts`), only for a recipe that needs a toolchain:
    nvcc and ninja are run, which costs time."""
    return toolchain_facts(dict(os.environ))


@probe("cuda.toolchain", title="nvcc, CUDA headers, a C++ compiler and ninja for JIT-built "
       "CUDA kernels (when the recipe needs them)", families=("O6",),
       collect=collect_toolchain, component="cuda-toolchain")
def toolchain(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Only for a recipe that needs a CUDA toolchain (`requires.cuda-toolchain`, e.g.
    IndexTTS-2's BigVGAN kernel, compiled at first use by torch.utils.cpp_extension): finds
    CUDA_HOME as torch does (CUDA_HOME, CUDA_PATH, nvcc on PATH, /usr/local/cuda), runs
    `nvcc --version` and `ninja --version`, checks cuda_runtime.h and a C++ compiler, and
    compares nvcc's CUDA major with torch's. Required: fail; optional: warn."""
    need = ctx.needs("cuda-toolchain")  # an opt-in component: runs when the recipe needs it
    return judge_toolchain(facts, need)


def _wrapped(nvcc: Optional[str]) -> Optional[str]:
    """The real nvcc behind a small wrapper script (`exec /usr/local/cuda-X/bin/nvcc "$@"`)."""
    if not nvcc:
        return None
    try:
        with open(nvcc, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    m = re.search(rb"exec\s+(\S+/nvcc)\b", head)
    return m.group(1).decode() if m and os.path.exists(m.group(1).decode()) else None

