"""Memory readers: process RSS and its resettable peak, torch allocator stats, NVML.

Three numbers for a GPU (../shared/REFERENCE.md "Memory"): torch *allocated* (what live
tensors need), torch *reserved* (allocated plus the caching allocator's blocks), and the
*device used* memory NVML reports (reserved plus the CUDA context, cuBLAS/cuDNN workspaces,
ONNX Runtime and other processes: what actually runs out). On CPU the number is the
process's resident set: its peak (Linux VmHWM) is reset at each stage start by writing 5 to
/proc/self/clear_refs, so every stage gets its own peak, like `reset_peak_memory_stats()`.

torch is never imported here: the readers use it only when the engine already has.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
from typing import Any, Optional

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _torch() -> Any:
    return sys.modules.get("torch")


def rss() -> int:
    """Resident set size of this process, bytes (cheap: one read of /proc/self/statm)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        import psutil

        return int(psutil.Process().memory_info().rss)


class PeakRSS:
    """The process's peak RSS since the last reset (Linux VmHWM + clear_refs)."""

    def __init__(self) -> None:
        self.resettable = self._try_reset()

    @staticmethod
    def _try_reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.resettable:
            self._try_reset()

    def read(self) -> int:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so RSS reflects live memory."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def device_kind(device: str) -> str:
    return device.split(":", 1)[0]


def synchronize(device: str) -> None:
    torch = _torch()
    if torch is None:
        return
    kind = device_kind(device)
    if kind == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)
    elif kind == "mps":
        with contextlib.suppress(Exception):
            torch.mps.synchronize()


def free_cache(device: str) -> None:
    """Drop garbage and return cached blocks: before a retry and between measurements."""
    gc.collect()
    torch = _torch()
    kind = device_kind(device)
    if torch is not None and kind == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    elif torch is not None and kind == "mps":
        with contextlib.suppress(Exception):
            torch.mps.empty_cache()
    malloc_trim()


class TorchStats:
    """The caching allocator's counters for one device (CUDA; MPS has current values only)."""

    def __init__(self, device: str):
        torch = _torch()
        kind = device_kind(device)
        self.device = device
        self.cuda = bool(torch is not None and kind == "cuda" and torch.cuda.is_available())
        self.mps = bool(torch is not None and kind == "mps")
        self.available = self.cuda or self.mps

    def reset_peak(self) -> None:
        if self.cuda:
            _torch().cuda.reset_peak_memory_stats(self.device)

    def allocated(self) -> Optional[int]:
        torch = _torch()
        if self.cuda:
            return int(torch.cuda.memory_allocated(self.device))
        if self.mps:
            with contextlib.suppress(Exception):
                return int(torch.mps.current_allocated_memory())
        return None

    def read(self) -> dict[str, Optional[int]]:
        """allocated/reserved now and peak since the last reset, retries and OOMs so far."""
        torch = _torch()
        if self.cuda:
            s = torch.cuda.memory_stats(self.device)
            return {
                "allocated": int(s.get("allocated_bytes.all.current", 0)),
                "reserved": int(s.get("reserved_bytes.all.current", 0)),
                "allocated_peak": int(s.get("allocated_bytes.all.peak", 0)),
                "reserved_peak": int(s.get("reserved_bytes.all.peak", 0)),
                "inactive_split": int(s.get("inactive_split_bytes.all.current", 0)),
                "num_alloc_retries": int(s.get("num_alloc_retries", 0)),
                "num_ooms": int(s.get("num_ooms", 0)),
            }
        if self.mps:
            alloc = self.allocated()
            driver = None
            with contextlib.suppress(Exception):
                driver = int(torch.mps.driver_allocated_memory())
            return {"allocated": alloc, "reserved": driver, "allocated_peak": None,
                    "reserved_peak": None, "inactive_split": None, "num_alloc_retries": None,
                    "num_ooms": None}
        return {}


class NVML:
    """Device-level used memory from NVML for the GPU a torch device index names.

    CUDA_VISIBLE_DEVICES is honoured (indices or GPU-/MIG- UUIDs: MIG instances are queried
    through their own handles). `available` is False without a driver (no GPU here).
    """

    def __init__(self, device: str):
        self.available = False
        self.handle: Any = None
        self.name: Optional[str] = None
        self.error: Optional[str] = None
        if device_kind(device) != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            ids = [v.strip() for v in visible.split(",")] if visible else None
            target = ids[index] if ids and index < len(ids) else str(index)
            if target.startswith(("GPU-", "MIG-")):
                self.handle = pynvml.nvmlDeviceGetHandleByUUID(target)
            else:
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(int(target))
            name = pynvml.nvmlDeviceGetName(self.handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
            self._pynvml = pynvml
            self.available = True
        except Exception as exc:  # no driver, no library, odd CUDA_VISIBLE_DEVICES
            self.error = f"{type(exc).__name__}: {exc}"

    def used(self) -> Optional[int]:
        if not self.available:
            return None
        try:
            return int(self._pynvml.nvmlDeviceGetMemoryInfo(self.handle).used)
        except Exception:
            return None

    def total(self) -> Optional[int]:
        if not self.available:
            return None
        try:
            return int(self._pynvml.nvmlDeviceGetMemoryInfo(self.handle).total)
        except Exception:
            return None


def live_tensors() -> tuple[int, int]:
    """(count, bytes) of torch tensors reachable by the garbage collector, CPU and GPU.

    Exact where RSS is noisy: a tensor kept alive across requests shows up here whatever the
    allocator does with freed pages. Costs one walk of gc.get_objects() (~50 ms).
    """
    torch = _torch()
    if torch is None:
        return 0, 0
    import warnings

    count = 0
    seen: dict[int, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() pokes deprecated module attributes
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor) and not isinstance(obj, torch.nn.Parameter):
                    count += 1
                    st = obj.untyped_storage()
                    seen[st.data_ptr()] = st.nbytes()
            except Exception:
                continue
    return count, sum(seen.values())
