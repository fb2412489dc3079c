"""indextts.infer_v2.IndexTTS2: constructor and `infer`, with the parts the adapter wraps.

The real module sets HF_HUB_CACHE to the relative './checkpoints/hf_cache' on import, builds
`self.gpt` (UnifiedVoice, `inference_speech`), `self.s2mel.models['cfm']` (`inference`) and
`self.bigvgan`, and `infer(..., output_path=None)` returns (sampling_rate, int16 (N, 1)).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from _fake_log import record

os.environ["HF_HUB_CACHE"] = "./checkpoints/hf_cache"


class _GPT:
    def inference_speech(self, n_tokens: int) -> np.ndarray:
        return np.zeros(n_tokens * 4, dtype=np.float32)


class _CFM:
    def inference(self, codes: np.ndarray) -> np.ndarray:
        return np.ones((80, len(codes)), dtype=np.float32)


class _S2Mel:
    def __init__(self) -> None:
        self.models = {"cfm": _CFM()}


class _BigVGAN:
    def __call__(self, mel: np.ndarray) -> np.ndarray:
        n = mel.shape[1] * 256
        t = np.arange(n) / 22050
        return 0.25 * np.sin(2 * np.pi * 180 * t)


class IndexTTS2:
    def __init__(self, cfg_path: str = "checkpoints/config.yaml", model_dir: str = "checkpoints",
                 use_fp16: bool = False, device: Any = None, use_cuda_kernel: Any = None,
                 use_deepspeed: bool = False) -> None:
        record("init", cfg_path=cfg_path, model_dir=model_dir, use_fp16=use_fp16,
               device=device, use_cuda_kernel=use_cuda_kernel,
               hf_hub_offline=os.environ.get("HF_HUB_OFFLINE"))
        for name in ("gpt.pth", "s2mel.pth", "bpe.model"):
            if not os.path.exists(os.path.join(model_dir, name)):
                raise FileNotFoundError(os.path.join(model_dir, name))
        self.gpt = _GPT()
        self.s2mel = _S2Mel()
        self.bigvgan = _BigVGAN()

    def infer(self, spk_audio_prompt: str, text: str, output_path: Any,
              emo_audio_prompt: Any = None, verbose: bool = False, **kwargs: Any) -> Any:
        record("infer", spk_audio_prompt=spk_audio_prompt, text=text, output_path=output_path)
        if not os.path.exists(spk_audio_prompt):
            raise FileNotFoundError(spk_audio_prompt)
        codes = self.gpt.inference_speech(max(1, len(text)))
        mel = self.s2mel.models["cfm"].inference(codes)
        wav = self.bigvgan(mel)
        data = np.clip(32767 * wav, -32767, 32767).astype(np.int16).reshape(-1, 1)
        if output_path:
            raise NotImplementedError("the fake returns arrays only (output_path=None)")
        return (22050, data)
