"""Sambert-HiFiGAN through ModelScope's text-to-speech pipeline, from the local cache only.

Model options: `model_id` (e.g. `damo/speech_sambert-hifigan_tts_zh-cn_16k`, `--model-id`)
or `model_dir` (a downloaded model folder), `cache_dir` (default `$MODELSCOPE_CACHE`, else
`~/.cache/modelscope`), `voice` (a speaker such as `zhitian_emo`; default: the model's first).

Offline by construction: the pipeline is given the local folder, never the id, so the hub is
not contacted. Before importing anything the folder is checked for the files the Sambert-
HiFiGAN model reads (modelscope/models/audio/tts/sambert_hifi.py): `configuration.json`,
`resource.zip` (or the extracted `resource/`: the ttsfrd frontend's data) and `voices.zip`
(or `voices/voices.json`); a recipe's `cache.files` list replaces that default. Missing
files are named one by one.

The call shapes used are ModelScope's public ones:
`pipeline(task=Tasks.text_to_speech, model=DIR, device=...)`, then
`pipe(input=text, voice=VOICE)[OutputKeys.OUTPUT_WAV]` (WAV bytes, 16-bit PCM).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix
from tts_doctor.smoke.engine import Engine, EngineConfigError, EngineUnavailable, option

# (alternatives: any one present satisfies the requirement)
REQUIRED = (("configuration.json",), ("resource.zip", "resource"),
            ("voices.zip", "voices/voices.json"))


def cache_root(cache_dir: Optional[str] = None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("MODELSCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelscope"


def candidates(model_id: str, root: Path) -> list[Path]:
    """Where ModelScope versions put a model: hub/<id>, hub/models/<id> ('.' as '___'),
    and <root>/<id> for a MODELSCOPE_CACHE that already points at the hub folder."""
    ids = [model_id]
    if "." in model_id:
        ids.append(model_id.replace(".", "___"))
    out = []
    for mid in ids:
        out += [root / "hub" / mid, root / "hub" / "models" / mid, root / mid,
                root / "models" / mid]
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def missing_files(model_dir: Path, required: Any = REQUIRED) -> list[str]:
    missing = []
    for alternatives in required:
        if isinstance(alternatives, str):
            alternatives = (alternatives,)
        if not any((model_dir / a).exists() for a in alternatives):
            missing.append(" or ".join(alternatives))
    return missing


class ModelScopeEngine(Engine):
    name = "modelscope"
    uses_torch = True
    precisions = ("fp32",)

    def __init__(self, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None):
        super().__init__(model, recipe)
        self.voice = option(model, "voice")
        model_dir = option(model, "model_dir")
        self.model_id = option(model, "model_id")
        files = (recipe or {}).get("cache", {}).get("files")
        required = tuple((f,) for f in files) if files else REQUIRED
        if model_dir:
            self.model_dir = Path(model_dir).expanduser()
            if not self.model_dir.is_dir():
                raise EngineConfigError(f"model_dir {model_dir} is not a directory")
        elif self.model_id:
            root = cache_root(option(model, "cache_dir"))
            found = [p for p in candidates(self.model_id, root) if p.is_dir()]
            if not found:
                looked = ", ".join(str(p) for p in candidates(self.model_id, root)[:2])
                raise EngineConfigError(
                    f"model {self.model_id} is not in the local ModelScope cache (looked in "
                    f"{looked}); download it once where the network is allowed: python -c "
                    f"\"from modelscope import snapshot_download; "
                    f"snapshot_download('{self.model_id}')\" (or set MODELSCOPE_CACHE)")
            self.model_dir = found[0]
        else:
            raise EngineConfigError("the modelscope engine needs --model-id ID (or --set "
                                    "model_dir=PATH)")
        missing = missing_files(self.model_dir, required)
        if missing:
            raise EngineConfigError(
                f"{self.model_dir} is incomplete: missing {', '.join(missing)} (an interrupted "
                "download; download the model again)")
        self.pipe: Any = None
        self.rate: Optional[int] = None

    def resolve_device(self, requested: str) -> str:
        if requested == "auto":
            try:
                import torch

                return "cuda" if torch.cuda.is_available() else "cpu"
            except Exception:
                return "cpu"
        if requested == "mps":
            raise EngineUnavailable("--device mps: ModelScope's pipeline takes cpu or gpu",
                                    Fix("Use --device cpu"))
        return requested

    def load(self, device: str, precision: str) -> None:
        if self.pipe is not None and device == self.device:
            return
        try:
            from modelscope.outputs import OutputKeys
            from modelscope.pipelines import pipeline
            from modelscope.utils.constant import Tasks
        except ImportError as exc:
            raise EngineUnavailable(
                f"modelscope does not import ({exc})",
                Fix("Install ModelScope with its audio extras (Sambert-HiFiGAN also needs "
                    "kantts and ttsfrd: tts-doctor check --only ttsfrd says how)",
                    commands=(dists.pip_install("modelscope[audio]"),)),
                model_dir=str(self.model_dir)) from None
        self._output_key = OutputKeys.OUTPUT_WAV
        with self.profiler.stage("load"):
            kwargs = {"task": Tasks.text_to_speech, "model": str(self.model_dir),
                      "device": "gpu" if device.startswith("cuda") else "cpu"}
            self.pipe = pipeline(**kwargs)
        self.device = device
        self.precision = precision

    def synthesize(self, text: str) -> tuple[Any, int]:
        import numpy as np
        from tts_doctor.smoke import wav

        with self.profiler.stage("model"):
            kwargs: dict[str, Any] = {"input": text}
            if self.voice:
                kwargs["voice"] = self.voice
            output = self.pipe(**kwargs)
        self.profiler.mark_first_audio()
        with self.profiler.stage("post"):
            try:
                data = output[self._output_key]
            except (KeyError, TypeError):
                raise RuntimeError(f"the pipeline returned no {self._output_key!r}: "
                                   f"{type(output).__name__}") from None
            samples, rate = wav.read(bytes(data))
        self.rate = int(rate)
        return np.asarray(samples, dtype=np.float32), int(rate)

    def info(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "model_dir": str(self.model_dir),
                "voice": self.voice, "weights": "pretrained"}

    def close(self) -> None:
        self.pipe = None
