"""An injected memory cap: out-of-memory on demand, for testing the ladder without a GPU.

`MemoryCap(limit)` is a torch dispatch mode that counts the bytes of every storage an op
allocates while the mode is active and frees them when the last tensor using the storage
dies; when the live total passes the limit it raises the real `torch.OutOfMemoryError`
(the class `torch.cuda.OutOfMemoryError` is an alias of), exactly what a full GPU raises, so
the ladder's handling is the same code path. Views and in-place results share their input's
storage and are not counted twice; weights allocated before the cap are not counted at all:
the cap limits activation memory, which is what grows with the text.

The reference engine takes it from its `memory_cap` model option (`--set memory_cap=24MiB`).
It costs a Python call per op: a test instrument, not a production path.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from tts_doctor.smoke.sizes import fmt_bytes


class MemoryCap(TorchDispatchMode):
    def __init__(self, limit: int):
        super().__init__()
        self.limit = int(limit)
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] <= 0:
            del self._refs[key]
            self.live -= entry[1]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            key = st.data_ptr()
            if key in self._refs:
                self._refs[key][0] += 1
            elif key in inputs or key == 0:
                continue  # a view of memory allocated before (weights, inputs)
            else:
                self._refs[key] = [1, st.nbytes()]
                self.live += st.nbytes()
                self.peak = max(self.peak, self.live)
                if self.live > self.limit:
                    raise torch.OutOfMemoryError(
                        f"out of memory: the injected cap of {fmt_bytes(self.limit)} "
                        f"(model option memory_cap) was exceeded, {fmt_bytes(self.live)} of "
                        "activations live (tts-doctor's CPU stand-in for a full GPU)")
            weakref.finalize(t, self._release, key)
        return out
