"""Your own synthesis function: `package.module:function` returning (samples, sample_rate).

Model options: `function` (the `module:attr` spec, `--callable`), `path` (a folder to put
first on sys.path, for a module that is not installed). The function is called as
`function(text, **extra)` where `extra` holds only the keywords its signature accepts:

- `device` ('cpu', 'cuda', 'cuda:1', 'mps') and `precision` ('fp32', 'fp16', 'bf16'): with
  `precision`, the ladder may ask for half precision; without it, fp32 only;
- `stage`: the profiler's `stage(name)` context manager factory, to mark your own stages
  (`with stage("vocoder"): ...`); without it the whole call is the `model` stage.

Samples may be a numpy array, a torch tensor or a list, float in [-1, 1] or int16 PCM, shape
(N,), (1, N) or (N, 1). The profiler reads torch's allocator when torch is imported.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from tts_doctor.finding import Fix
from tts_doctor.smoke import fetch
from tts_doctor.smoke.engine import Engine, EngineConfigError, EngineUnavailable, option

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class ModuleMissing(EngineConfigError):
    """The function's module is not importable (not installed, not on sys.path)."""


def resolve(spec: str, path: Optional[str] = None) -> Callable[..., Any]:
    """Import `module:attr` (dotted attr allowed); EngineConfigError with the reason."""
    if not _SPEC.match(spec or ""):
        raise EngineConfigError(f"callable {spec!r} is not of the form package.module:function")
    module_name, attr = spec.split(":", 1)
    if path:
        folder = str(Path(path).expanduser())
        if not Path(folder).is_dir():
            raise EngineConfigError(f"callable path {path} is not a directory")
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ModuleMissing(f"cannot import {module_name} for --callable {spec}: "
                            f"{exc}") from None
    except Exception as exc:
        raise EngineConfigError(f"importing {module_name} for --callable {spec} raised "
                                f"{type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise EngineConfigError(f"{module_name} has no attribute {attr!r}") from None
    if not callable(obj):
        raise EngineConfigError(f"{spec} is a {type(obj).__name__}, not a function")
    return obj


class CallableEngine(Engine):
    name = "callable"

    def __init__(self, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None):
        super().__init__(model, recipe)
        spec = option(model, "function")
        if spec is None:
            raise EngineConfigError("the callable engine needs --callable package.module:function"
                                    " (or --set function=...)")
        self.spec = spec
        try:
            self.func = resolve(spec, option(model, "path"))
        except ModuleMissing as exc:
            recipe_model = (recipe or {}).get("model") or {}
            if recipe_model.get("function") != spec:
                raise  # the user's own --callable: a usage error
            raise self._adapter_missing(str(exc), model, recipe or {}) from None
        try:
            params = inspect.signature(self.func).parameters
        except (TypeError, ValueError):
            params = {}
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self.accepts = {k for k in ("device", "precision", "stage") if var_kw or k in params}
        self.precisions = ("fp32", "fp16", "bf16") if "precision" in self.accepts else ("fp32",)
        self.can_use_cpu = "device" in self.accepts
        self.uses_torch = "torch" in sys.modules

    @staticmethod
    def _adapter_missing(why: str, model: dict[str, Any],
                         recipe: dict[str, Any]) -> EngineUnavailable:
        """A recipe's adapter that is not installed: what is missing, and how to get it."""
        problems = [why]
        commands: list[str] = []
        details: dict[str, Any] = {"function": model.get("function")}
        cache = fetch.cache_spec(recipe)
        folder = option(model, "model_dir")
        if folder:
            lacking = fetch.missing(Path(folder).expanduser(), cache.get("files") or ())
            if not Path(folder).expanduser().is_dir():
                problems.append(f"the model folder {folder} does not exist")
            elif lacking:
                problems.append(f"{folder} is missing {', '.join(lacking)}")
            details.update(model_dir=folder, missing=lacking)
            if cache.get("repo") and (lacking or not Path(folder).expanduser().is_dir()):
                commands.append(fetch.download_command(cache.get("hub") or "modelscope",
                                                       cache["repo"], local_dir=folder))
        hint = (f"Recipe {recipe.get('name')} runs your adapter, a function returning "
                "(samples, sample_rate): write it (the recipe's comments say how), put its "
                "folder on PYTHONPATH (or --set path=DIR), or name yours with --callable "
                "MODULE:FUNCTION")
        return EngineUnavailable("; ".join(problems), Fix(hint, commands=tuple(commands)),
                                 **details)

    def resolve_device(self, requested: str) -> str:
        if requested == "auto":
            torch = sys.modules.get("torch")
            if "device" in self.accepts and torch is not None and torch.cuda.is_available():
                return "cuda"
            return "cpu"
        if requested != "cpu" and "device" not in self.accepts:
            raise EngineConfigError(f"{self.spec} takes no device argument: it cannot be asked "
                                    f"to run on {requested} (add a `device` parameter)")
        return requested

    def load(self, device: str, precision: str) -> None:
        self.device = device
        self.precision = precision
        self.uses_torch = "torch" in sys.modules

    def synthesize(self, text: str) -> tuple[Any, int]:
        kwargs: dict[str, Any] = {}
        if "device" in self.accepts:
            kwargs["device"] = self.device
        if "precision" in self.accepts:
            kwargs["precision"] = self.precision
        if "stage" in self.accepts:
            kwargs["stage"] = self.profiler.stage
            return self.func(text, **kwargs)
        with self.profiler.stage("model"):
            return self.func(text, **kwargs)

    def info(self) -> dict[str, Any]:
        return {"function": self.spec, "accepts": sorted(self.accepts)}
