"""modelscope.pipelines.pipeline for the text-to-speech task, Sambert-HiFiGAN style.

The real pipeline (modelscope 1.40), given a local model folder, reads configuration.json,
loads the voices of voices/voices.json, unzips resource.zip for the ttsfrd frontend, and
returns `{OutputKeys.OUTPUT_WAV: bytes}`: a 16-bit PCM WAV at 16 kHz. This fake reads
configuration.json and returns a tone of a plausible length for the text. It exists because
the real synthesis needs KAN-TTS, which no package registry has; tests/test_smoke_real_libs.py
checks its names and call shapes against the installed real library.
"""

from __future__ import annotations

import io
import json
import os
import wave
from typing import Any

import numpy as np
from _fake_log import record

from modelscope.outputs import OutputKeys
from modelscope.utils.constant import Tasks

RATE = 16000


class TtsVoiceNotExistsException(Exception):
    pass


class _SambertHifiganPipeline:
    def __init__(self, model_dir: str, device: str):
        self.model_dir = model_dir
        self.device = device
        self.voices = ["zhitian_emo", "zhiyan_emo", "zhizhe_emo", "zhibei_emo"]

    def __call__(self, input: str, voice: str | None = None, **kwargs: Any) -> dict[str, bytes]:
        voice = voice or self.voices[0]
        record("call", input=input, voice=voice, kwargs=kwargs)
        if voice not in self.voices:
            raise TtsVoiceNotExistsException(f"modelscope error: Voice {voice} not exists")
        n = int(RATE * 0.15 * max(1, len(input)))
        t = np.arange(n) / RATE
        x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        pcm = (x * 32767).astype("<i2").tobytes()
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm)
        return {OutputKeys.OUTPUT_WAV: buf.getvalue()}


def pipeline(task: str | None = None, model: Any = None, device: str = "gpu",
             **kwargs: Any) -> _SambertHifiganPipeline:
    record("pipeline", task=task, model=model, device=device, kwargs=kwargs)
    if task != Tasks.text_to_speech:
        raise ValueError(f"task {task!r} is not registered in this fake")
    if not isinstance(model, str) or not os.path.isdir(model):
        raise ValueError(f"fake pipeline: model must be a local directory, got {model!r}")
    with open(os.path.join(model, "configuration.json"), encoding="utf-8") as f:
        json.load(f)
    return _SambertHifiganPipeline(model, device)
