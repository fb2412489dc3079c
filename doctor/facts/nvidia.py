"""The NVIDIA driver as NVML reports it (nvidia-ml-py's pynvml), and what the recipe needs of
the GPU; shared by the cuda, vram and onnxruntime probes."""

from __future__ import annotations

import functools
import re
from typing import Any, Optional

from tts_doctor import applicability
from tts_doctor.registry import Context


def nvml() -> tuple[Any, Optional[str]]:
    """(pynvml initialised, None) or (None, why not). Initialised once per process."""
    return _nvml_once()


@functools.lru_cache(maxsize=1)
def _nvml_once() -> tuple[Any, Optional[str]]:
    try:
        import pynvml
    except Exception as exc:
        return None, f"nvidia-ml-py (pynvml) does not import: {type(exc).__name__}: {exc}"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return None, f"NVML: {exc or type(exc).__name__}"
    return pynvml, None


def gpu_need(ctx: Context) -> Optional[str]:
    """'required', 'optional', 'absent' or None, from the recipe's requires.gpu / cuda: the
    need of the component `gpu` (doctor/applicability.py)."""
    return applicability.need(ctx, "gpu")


def visible_devices(value: Optional[str], devices: list[dict[str, Any]]
                    ) -> Optional[list[dict[str, Any]]]:
    """The GPUs CUDA would show under CUDA_VISIBLE_DEVICES=value (None: the variable is
    unset, every GPU). Like the CUDA runtime, the list stops at the first entry that names no
    device: '', '-1' and an index past the last GPU hide everything after them. Entries are
    indices, or GPU-/MIG- UUIDs (a unique prefix is enough); `devices` may carry a
    `mig` list of instances with their own UUIDs."""
    if value is None:
        return None
    out: list[dict[str, Any]] = []
    for raw in value.split(","):
        entry = raw.strip()
        if re.fullmatch(r"\d+", entry):
            index = int(entry)
            if index >= len(devices):
                break
            out.append(devices[index])
            continue
        if entry.startswith(("GPU-", "MIG-")):
            pool = [*devices, *(m for d in devices for m in (d.get("mig") or []))]
            hits = [d for d in pool if str(d.get("uuid") or "").startswith(entry)]
            if len(hits) != 1:
                break
            out.append(hits[0])
            continue
        break
    return out
