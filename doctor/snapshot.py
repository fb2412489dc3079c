"""The environment snapshot carried by every JSON report, for `diff` and `summarize`.

What makes two machines differ in ways that matter: the versions of the distributions a TTS
stack depends on, the NVIDIA driver, the CUDA runtime torch was built for, and the GPU models.
Versions are read in the diagnosed interpreter (the worker's ready message); the rest comes
from the findings' details, so the snapshot costs nothing extra.
"""

from __future__ import annotations

from typing import Any

from tts_doctor.finding import Finding

RELEVANT = (
    "torch", "torchaudio", "torchcodec", "torchvision", "numpy", "scipy", "numba", "llvmlite",
    "resampy", "soxr", "librosa", "soundfile", "onnxruntime", "onnxruntime-gpu", "piper-tts",
    "ttsfrd", "ttsfrd-dependency", "kantts", "modelscope", "transformers", "pynini",
    "wetextprocessing", "gradio", "pydantic", "tts", "coqui-tts", "nvidia-ml-py", "pynvml",
    "nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "nvidia-cublas-cu12", "nvidia-cublas",
    "tts-doctor",
)


def distribution_versions() -> dict[str, str]:
    """Versions of the relevant distributions installed in this interpreter."""
    from tts_doctor import dists

    out = {}
    for name in RELEVANT:
        v = dists.version(name)
        if v is not None:
            out[name] = v
    return out


def build(findings: list[Finding], interpreter: dict[str, Any]) -> dict[str, Any]:
    by_id = {f.id: f.details for f in findings}
    torch = by_id.get("torch.build", {})
    driver = by_id.get("cuda.driver", {})
    devices = by_id.get("vram.devices", {}).get("devices") or []
    return {
        "distributions": dict(interpreter.get("distributions") or {}),
        "torch_cuda": torch.get("cuda"),
        "driver": driver.get("driver_version"),
        "driver_cuda": driver.get("driver_cuda"),
        "gpus": [d.get("name") for d in devices if isinstance(d, dict)],
    }
