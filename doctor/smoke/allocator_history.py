"""`--memory-snapshot FILE`: PyTorch's CUDA allocator history, for its memory viewer.

Records every allocation and free with its stack (`torch.cuda.memory._record_memory_history`)
while the smoke synthesis runs and dumps the pickle with `_dump_snapshot`; drag the file onto
https://pytorch.org/memory_viz (or run torch/cuda/_memory_viz.py locally) to see which
tensors made the peak. The history exists only for CUDA's caching allocator: on a CPU or MPS
run nothing is recorded and the report says so.
"""

from __future__ import annotations

import sys
from typing import Optional

from tts_doctor import atomic

MAX_ENTRIES = 100_000


def unavailable(device: str) -> Optional[str]:
    """Why no history can be recorded on this device, or None."""
    torch = sys.modules.get("torch")
    if not device.startswith("cuda"):
        return (f"the run is on {device}: the allocator history exists only for CUDA's caching "
                "allocator (torch.cuda.memory._record_memory_history)")
    if torch is None or not torch.cuda.is_available():
        return "torch sees no CUDA device"
    if not hasattr(torch.cuda.memory, "_record_memory_history"):
        return f"torch {torch.__version__} has no torch.cuda.memory._record_memory_history"
    return None


def start() -> None:
    import torch

    torch.cuda.memory._record_memory_history(max_entries=MAX_ENTRIES)


def dump(path: str) -> None:
    """Write the snapshot atomically and stop recording."""
    import torch

    try:
        with atomic.atomic_path(path) as tmp:
            torch.cuda.memory._dump_snapshot(str(tmp))
    finally:
        torch.cuda.memory._record_memory_history(enabled=None)
