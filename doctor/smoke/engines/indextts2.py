"""IndexTTS-2 from a local checkpoint directory.

Model options: `checkpoint_dir` (`--checkpoint`; the folder with config.yaml and the
weights), `config` (default `<checkpoint_dir>/config.yaml`), `speaker` (the reference voice
WAV IndexTTS-2 clones: required), `use_cuda_kernel` (BigVGAN's fused kernel, default false:
it needs nvcc and ninja: docs/troubleshooting.md, O6).

Before importing anything (in `load`), the directory is checked for the files IndexTTS2's
constructor opens (indextts/infer_v2.py): config.yaml, `gpt_checkpoint` (gpt.pth),
`s2mel_checkpoint` (s2mel.pth), `dataset.bpe_model` (bpe.model), `w2v_stat` (wav2vec2bert_stats.pt),
`emo_matrix` (feat2.pt), `spk_matrix` (feat1.pt) and `qwen_emo_path` (qwen0.6bemo4-merge/),
names read from the config when it gives them. Missing files (and a missing reference
voice) are a failed `smoke.load` naming each one, with the download command.

Offline: HF_HUB_OFFLINE=1 is set, and the Hugging Face cache is pinned to
`<checkpoint_dir>/hf_cache` before `indextts.infer_v2` is imported (that module points
HF_HUB_CACHE at the relative ./checkpoints/hf_cache, which depends on the working directory).

Call shapes (public): `IndexTTS2(cfg_path=..., model_dir=..., use_fp16=..., device=...,
use_cuda_kernel=...)`, then `infer(spk_audio_prompt=WAV, text=TEXT, output_path=None)`,
which returns `(sampling_rate, int16 array (N, channels))`. Stages are marked by wrapping the
model's parts when they are there: `gpt.inference_speech` and the s2mel CFM's `inference`
(acoustic), `bigvgan` (vocoder); time outside them is unattributed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Optional

from tts_doctor.finding import Fix
from tts_doctor.smoke import fetch
from tts_doctor.smoke.engine import Engine, EngineConfigError, EngineUnavailable, option

DEFAULT_FILES = {
    "gpt_checkpoint": "gpt.pth",
    "s2mel_checkpoint": "s2mel.pth",
    "bpe_model": "bpe.model",
    "w2v_stat": "wav2vec2bert_stats.pt",
    "emo_matrix": "feat2.pt",
    "spk_matrix": "feat1.pt",
    "qwen_emo_path": "qwen0.6bemo4-merge",
}


def config_names(config_text: str) -> dict[str, str]:
    """The file names a config.yaml gives (a minimal reader: `key: value` lines)."""
    out = dict(DEFAULT_FILES)
    for key in DEFAULT_FILES:
        m = re.search(rf"^\s*{key}\s*:\s*['\"]?([^'\"#\n]+?)['\"]?\s*(#.*)?$", config_text,
                      re.MULTILINE)
        if m:
            out[key] = m.group(1).strip()
    return out


class _Staged:
    """A callable stand-in that runs the wrapped callable inside a profiler stage."""

    def __init__(self, target: Any, stage: Callable[[str], Any], name: str):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_stage", stage)
        object.__setattr__(self, "_name", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._stage(self._name):
            return self._target(*args, **kwargs)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._target, item)


class IndexTTS2Engine(Engine):
    name = "indextts2"
    uses_torch = True
    precisions = ("fp32", "fp16")

    def __init__(self, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None):
        super().__init__(model, recipe)
        ckpt = option(model, "checkpoint_dir")
        if ckpt is None:
            raise EngineConfigError("the indextts2 engine needs --checkpoint DIR (the folder "
                                    "with config.yaml, gpt.pth, s2mel.pth...)")
        self.dir = Path(ckpt).expanduser()
        if self.dir.exists() and not self.dir.is_dir():
            raise EngineConfigError(f"checkpoint directory {ckpt} is not a directory")
        self.config = Path(option(model, "config", str(self.dir / "config.yaml"))).expanduser()
        speaker = option(model, "speaker")
        self.speaker = Path(speaker).expanduser() if speaker is not None else None
        if self.speaker is not None and not self.speaker.is_file():
            raise EngineConfigError(f"speaker prompt {speaker} does not exist")
        self.use_cuda_kernel = option(model, "use_cuda_kernel", False, bool)
        self.tts: Any = None
        self.wrapped: list[str] = []

    def missing(self) -> list[str]:
        """The checkpoint files IndexTTS2's constructor would not find (names from the
        config when it gives them)."""
        if not self.dir.is_dir():
            return ["config.yaml", *DEFAULT_FILES.values()]
        if not self.config.is_file():
            return [self.config.name]
        try:
            names = config_names(self.config.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            return [f"{self.config.name} (unreadable: {exc})"]
        return [n for n in names.values() if not (self.dir / n).exists()]

    def _check(self) -> None:
        """Checkpoints and the reference voice, before anything imports: a failed load."""
        problems, commands = [], []
        missing = self.missing()
        if missing:
            what = (f"{self.dir} is incomplete: missing" if self.dir.is_dir()
                    else f"the checkpoint directory {self.dir} does not exist: missing")
            problems.append(f"{what} {', '.join(missing)}")
            repo = fetch.cache_spec(self.recipe).get("repo") or "IndexTeam/IndexTTS-2"
            commands.append(fetch.download_command("huggingface", repo,
                                                   local_dir=str(self.dir)))
        if self.speaker is None:
            problems.append("no reference voice to clone (IndexTTS-2 speaks in the voice of "
                            "a WAV prompt): --set speaker=PATH.wav")
        if problems:
            raise EngineUnavailable(
                "; ".join(problems),
                Fix("Download the IndexTTS-2 checkpoints once where the network is allowed "
                    "(the model card's checkpoints/ folder) and give a reference voice",
                    commands=tuple(commands)),
                checkpoint_dir=str(self.dir), missing=missing)

    def resolve_device(self, requested: str) -> str:
        if requested != "auto":
            return requested
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except Exception:
            return "cpu"

    def _import(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ["HF_HUB_CACHE"] = str(self.dir / "hf_cache")
        try:
            import huggingface_hub  # noqa: F401  (fixes its cache path before infer_v2)
        except Exception:
            pass
        try:
            from indextts.infer_v2 import IndexTTS2
        except Exception as exc:
            raise EngineUnavailable(
                f"indextts.infer_v2 does not import ({type(exc).__name__}: {exc})",
                Fix("Install IndexTTS-2 from its repository into this environment (git clone "
                    "https://github.com/index-tts/index-tts, then uv sync or pip install -e .)"),
                checkpoint_dir=str(self.dir)) from None
        return IndexTTS2

    def load(self, device: str, precision: str) -> None:
        if self.tts is not None and device == self.device and precision == self.precision:
            return
        problem: Optional[EngineUnavailable] = None
        try:
            self._check()
        except EngineUnavailable as exc:
            problem = exc
        try:
            IndexTTS2 = self._import()
        except EngineUnavailable as exc:
            if problem is None:
                raise
            raise EngineUnavailable(  # say everything that is missing at once
                f"{exc}; {problem}",
                Fix(f"{exc.fix.description}; then: {problem.fix.description}",
                    commands=exc.fix.commands + problem.fix.commands),
                **{**problem.details, **exc.details}) from None
        if problem is not None:
            raise problem
        self.tts = None
        with self.profiler.stage("load"):
            self.tts = IndexTTS2(cfg_path=str(self.config), model_dir=str(self.dir),
                                 use_fp16=precision == "fp16", device=device,
                                 use_cuda_kernel=self.use_cuda_kernel)
        self._wrap()
        self.device = device
        self.precision = precision

    def _wrap(self) -> None:
        """Mark the model's stages where its parts are where infer_v2 keeps them."""
        stage = self.profiler.stage
        self.wrapped = []
        tts = self.tts
        gpt = getattr(tts, "gpt", None)
        if gpt is not None and callable(getattr(gpt, "inference_speech", None)):
            gpt.inference_speech = _Staged(gpt.inference_speech, stage, "acoustic")
            self.wrapped.append("gpt.inference_speech")
        try:
            cfm = tts.s2mel.models["cfm"]
            cfm.inference = _Staged(cfm.inference, stage, "acoustic")
            self.wrapped.append("s2mel.cfm.inference")
        except (AttributeError, KeyError, TypeError):
            pass
        if getattr(tts, "bigvgan", None) is not None:
            tts.bigvgan = _Staged(tts.bigvgan, stage, "vocoder")
            self.wrapped.append("bigvgan")

    def synthesize(self, text: str) -> tuple[Any, int]:
        import numpy as np

        result = self.tts.infer(spk_audio_prompt=str(self.speaker), text=text, output_path=None)
        with self.profiler.stage("post"):
            if not (isinstance(result, tuple) and len(result) == 2):
                raise RuntimeError(f"IndexTTS2.infer returned {type(result).__name__}, not "
                                   "(sampling_rate, samples)")
            rate, data = result
            x = np.asarray(data)
            if x.ndim == 2:
                x = x[:, 0] if x.shape[1] <= x.shape[0] else x[0]
            if x.dtype == np.int16:
                x = x.astype(np.float32) / 32768.0
        return x.astype(np.float32), int(rate)

    def info(self) -> dict[str, Any]:
        return {"checkpoint_dir": str(self.dir), "speaker": str(self.speaker),
                "weights": "pretrained", "stages_marked": self.wrapped}

    def close(self) -> None:
        self.tts = None
