"""The engine protocol every smoke engine follows, its errors, and the engine registry.

An engine is built from the recipe's `[model]` table (plus `--set` overrides), checks its
configuration cheaply in `__init__` (paths exist, ids are well formed), loads the model in
`load(device, precision)` and turns text into `(samples, sample_rate)` in `synthesize(text)`,
marking its stages through `self.profiler` (set by the session before `load`).

Two kinds of failure are kept apart because they mean different things to the user:

- `EngineConfigError`: the input is wrong (no such checkpoint, a corrupt one, a model id that
  is not in the local cache, a malformed `module:function`). A usage error: exit code 2.
- `EngineUnavailable`: the environment cannot run this engine (a library is missing or does
  not import). A finding (`smoke.load` fail) with a fix: exit code 1.
"""

from __future__ import annotations

import importlib
from typing import Any, Optional

from tts_doctor.errors import UserError
from tts_doctor.finding import Fix
from tts_doctor.smoke.profiler import NullProfiler

PRECISIONS = ("fp32", "fp16", "bf16")

# name -> "module:Class"; one module per engine, imported only when chosen.
ENGINES: dict[str, str] = {
    "reference": "tts_doctor.smoke.engines.reference:ReferenceEngine",
    "piper": "tts_doctor.smoke.engines.piper:PiperEngine",
    "modelscope": "tts_doctor.smoke.engines.modelscope:ModelScopeEngine",
    "indextts2": "tts_doctor.smoke.engines.indextts2:IndexTTS2Engine",
    "callable": "tts_doctor.smoke.engines.callable:CallableEngine",
}


class EngineConfigError(UserError, ValueError):
    """The engine's input is wrong (missing or corrupt checkpoint, bad id): exit code 2."""


class EngineUnavailable(RuntimeError):
    """The environment cannot run the engine (a library is missing or broken)."""

    def __init__(self, message: str, fix: Fix, **details: Any):
        super().__init__(message)
        self.fix = fix
        self.details = details


class SynthesisContractError(RuntimeError):
    """The engine returned something that is not (samples, sample_rate)."""


class Engine:
    """Defaults shared by the engines; each engine overrides what it supports.

    Attributes an engine sets: `name`; `uses_torch` (torch allocator stats apply);
    `precisions` it can run; `vocoder_chunks` (it can vocode in overlapping chunks);
    `can_use_cpu` (the ladder's last rung may move it to the CPU); `random_weights`.
    """

    name = "engine"
    uses_torch = False
    precisions: tuple[str, ...] = ("fp32",)
    vocoder_chunks = False
    can_use_cpu = True
    random_weights = False

    def __init__(self, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None):
        self.model = dict(model)
        self.recipe = recipe or {}
        self.profiler: Any = NullProfiler()
        self.device = "cpu"
        self.precision = "fp32"
        self.vocoder_chunk: Optional[tuple[int, int]] = None

    # The protocol -----------------------------------------------------------------------
    def resolve_device(self, requested: str) -> str:
        """'auto' -> the best device this engine can use here; others are checked."""
        return "cpu" if requested == "auto" else requested

    def load(self, device: str, precision: str) -> None:
        raise NotImplementedError

    def synthesize(self, text: str) -> tuple[Any, int]:
        raise NotImplementedError

    def set_vocoder_chunking(self, chunk: Optional[tuple[int, int]]) -> None:
        """(frames, overlap) to vocode in chunks, None for one piece."""
        self.vocoder_chunk = chunk

    def info(self) -> dict[str, Any]:
        """What the report says about the model (sizes, weights, files)."""
        return {}

    def close(self) -> None:
        """Drop the model so its memory can be freed."""


def option(model: dict[str, Any], key: str, default: Any = None, kind: type = str) -> Any:
    """A `[model]` value (recipe or --set string) as `kind`, or EngineConfigError."""
    if key not in model or model[key] in (None, ""):
        return default
    value = model[key]
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise EngineConfigError(f"model option {key}={value!r} is not a valid "
                                f"{kind.__name__}") from None


def create(name: str, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None) -> Engine:
    """Build the named engine (its module is imported only now)."""
    if name not in ENGINES:
        raise EngineConfigError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)(model, recipe)
