"""The failure families of PyTorch TTS deployments, as users report them.

One row per family (ids as in the project's failure catalogue): the message users see, its
cause, the fix, where it was reported, and patterns that recognise the message. Probes name
the families they detect (`@probe(families=...)`), which links a pasted error message to the
probes that diagnose it (`tts-doctor explain`) and generates docs/troubleshooting.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    id: str
    name: str
    signature: str
    cause: str
    fix: str
    reported: str
    patterns: tuple[str, ...]

    def matches(self, text: str) -> bool:
        return any(re.search(p, text, re.IGNORECASE) for p in self.patterns)


FAMILIES: tuple[Family, ...] = (
    Family("T1", "ttsfrd missing",
           "No matching distribution found for ttsfrd / No module named 'ttsfrd'",
           "the real ttsfrd wheels are hosted by ModelScope, not PyPI",
           "install from ModelScope's release find-links (or cosyvoice-ttsfrd on Python 3.10);"
           " CosyVoice-style stacks can fall back to WeTextProcessing",
           "KAN-TTS#29, FunAudioLLM-APP#4",
           (r"No matching distribution found for ttsfrd", r"No module named '?ttsfrd'?")),
    Family("T2", "ttsfrd/kantts placeholder",
           "PyPI ttsfrd 0.1.0 / kantts 0.1.0: 'A minimal example Python package', only hello()",
           "a plain `pip install ttsfrd` now finds a placeholder",
           "uninstall it and install the real build", "pypi.org/project/ttsfrd",
           (r"A minimal example Python package", r"Hello from (ttsfrd|kantts)")),
    Family("T3", "ttsfrd platform",
           "module 'ttsfrd' has no attribute 'TtsFrontendEngine'",
           "the engine is Linux-only (or the placeholder is installed)",
           "Linux/WSL, or the fallback frontend", "CosyVoice#1126",
           (r"has no attribute '?TtsFrontendEngine'?",)),
    Family("T4", "ttsfrd version", "language type invalid: zhcn", "ttsfrd 0.0.2 is too old",
           "upgrade ttsfrd", "modelscope#80", (r"language type invalid",)),
    Family("T5", "ttsfrd resource",
           "TtsFrontendInitializeFailedException: resource invalid / prepare tts engine failed",
           "resource.zip missing, corrupt or not extracted",
           "re-download and unzip the resource", "modelscope#628, KAN-TTS#105",
           (r"resource invalid", r"prepare tts engine failed",
            r"TtsFrontendInitializeFailedException")),
    Family("T6", "ttsfrd wheel tags",
           "ttsfrd-0.4.2-cp310-cp310-linux_x86_64.whl is not a supported wheel on this platform",
           "ttsfrd wheels exist only for cp38 (0.3.6) and cp310 (0.4.2), linux x86_64",
           "use a matching Python", "CosyVoice#23, #685",
           (r"ttsfrd.*is not a supported wheel on this platform",)),
    Family("T7", "ttsfrd shared libraries",
           "libre2.so.11: cannot open shared object file / Illegal instruction",
           "the dependency wheel (libre2, libmvec) is missing",
           "install the ttsfrd_dependency wheel", "CosyVoice#503, #145",
           (r"libre2\.so", r"libmvec\.so")),
    Family("T8", "kantts", "No module named 'kantts'; Requires-Python <3.9",
           "the Sambert pipeline imports KAN-TTS, which supports Python < 3.9 only",
           "a Python 3.8 environment", "modelscope#294, KAN-TTS#67",
           (r"No module named '?kantts'?",)),
    Family("S1", "SciPy windows", "module 'scipy.signal' has no attribute 'hann'",
           "SciPy 1.13 removed window names from scipy.signal (hanning earlier)",
           "scipy.signal.windows.*, the scipy_names shim, or a pin", "librosa#1830, #1862",
           (r"scipy\.signal'? has no attribute '?(hann|hanning|hamming|blackman|bartlett|"
            r"gaussian|general_gaussian|tukey|triang|boxcar|cosine|exponential|nuttall|"
            r"parzen|bohman|blackmanharris|flattop|barthann|chebwin|dpss|taylor|lanczos)",)),
    Family("S2", "SciPy kaiser", "cannot import name 'kaiser' from 'scipy.signal'",
           "the same removal (parallel_wavegan, old resampy)", "the scipy_names shim or a pin",
           "ParallelWaveGAN#430, resampy#121",
           (r"cannot import name '?(kaiser|hann|hamming|gaussian|blackman)'? from "
            r"'?scipy\.signal",)),
    Family("S3", "SciPy integrate", "scipy.integrate has no attribute 'trapz' / 'simps'",
           "removed in SciPy 1.14", "trapezoid / simpson, or the scipy_names shim",
           "pyroomacoustics#362, scipy#21070",
           (r"scipy\.integrate'? has no attribute '?(trapz|simps|cumtrapz)",
            r"cannot import name '?(trapz|simps|cumtrapz)'? from '?scipy\.integrate")),
    Family("S5", "SciPy resample speed", "no error; 14x slower for some lengths",
           "the FFT of lengths with large prime factors",
           "polyphase or soxr (the resample shim)", "scipy#9273", ()),
    Family("N1", "NumPy 2 ABI",
           "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.x / "
           "_ARRAY_API not found",
           "an extension built against NumPy 1", "numpy<2, or upgrade the extension",
           "piper#524, StyleTTS2#275, GPT-SoVITS#2356",
           (r"compiled using NumPy 1\.x cannot be run in\s+NumPy 2", r"_ARRAY_API not found",
            r"numpy\.core\.multiarray failed to import")),
    Family("N2", "NumPy aliases", "module 'numpy' has no attribute 'complex' / 'float'",
           "aliases removed in NumPy 1.24 (float_ and friends in 2.0)",
           "upgrade the user (librosa>=0.10) or pin numpy", "coqui TTS#2442, librosa#1853",
           (r"module '?numpy'? has no attribute '?(complex|float|int|bool|object|str|"
            r"float_|complex_|NaN|Inf)'?",)),
    Family("A1", "torch/torchaudio ABI", "libtorchaudio.so: undefined symbol ...",
           "torch and torchaudio versions or builds differ",
           "reinstall both from one index", "audio#3335, #2532",
           (r"libtorchaudio\S*\.so: undefined symbol", r"torchaudio.*undefined symbol")),
    Family("A2", "torchaudio libraries", "libc10_cuda.so: cannot open shared object file",
           "a CUDA torchaudio with a CPU torch", "a matching pair (or the mel shim)",
           "audio#2932", (r"libc10_cuda\.so", r"libtorch_cuda\.so")),
    Family("A3", "CUDA pair",
           "PyTorch and TorchAudio were compiled with different CUDA versions",
           "a partial upgrade", "upgrade together", "CosyVoice#1153",
           (r"compiled with different CUDA versions",)),
    Family("A4", "torchcodec",
           "TorchCodec is required for load_with_torchcodec / libavutil.so.60 missing",
           "torchaudio>=2.9 delegates load/save to TorchCodec and shared FFmpeg",
           "torchcodec + FFmpeg, or soundfile", "F5-TTS#1235",
           (r"TorchCodec is required", r"libavutil\.so", r"load_with_torchcodec")),
    Family("A5", "torchaudio removed APIs",
           "module 'torchaudio' has no attribute 'set_audio_backend' (or 'info')",
           "removals in torchaudio 2.2 and 2.9", "guard or migrate the call",
           "wenet#2429, coqui-ai-TTS#525",
           (r"torchaudio'? has no attribute '?(set_audio_backend|get_audio_backend|info|"
            r"backend|sox_effects)",)),
    Family("A6", "torch.load weights_only",
           "Weights only load failed ... Unsupported global",
           "torch>=2.6 defaults to weights_only=True", "the maintained coqui-tts fork",
           "coqui TTS#4121", (r"Weights only load failed", r"Unsupported global")),
    Family("C1", "CPU-only torch", "Torch not compiled with CUDA enabled",
           "a CPU wheel on a GPU host", "a CUDA wheel, or device=cpu", "index-tts#31",
           (r"Torch not compiled with CUDA enabled",)),
    Family("C2", "driver too old", "The NVIDIA driver on your system is too old",
           "the CUDA runtime is newer than the driver supports",
           "update the driver or use an older wheel", "GPT-SoVITS#83",
           (r"NVIDIA driver on your system is too old", r"driver version is insufficient")),
    Family("C3", "GPU architecture",
           "sm_120 is not compatible / no kernel image is available for execution",
           "the wheel's arch list lacks the GPU", "a build for the arch (cu128+)",
           "GPT-SoVITS#2514, #2625",
           (r"no kernel image is available", r"sm_\d+ is not compatible")),
    Family("C4", "out of memory", "CUDA out of memory",
           "memory grows with text and mel length",
           "split text, chunk the vocoder, lower precision (tts-doctor smoke --vram-budget)",
           "index-tts#301, tacotron2#114",
           (r"CUDA out of memory", r"OutOfMemoryError", r"MPS backend out of memory")),
    Family("C5", "fp16 silence / NaN", "silent WAV, no error; NaN",
           "no usable half precision on the card or model", "fp32",
           "GPT-SoVITS#202, CosyVoice#1286", ()),  # no message: only the audio tells
    Family("C6", "cuDNN", "CUDNN_STATUS_NOT_SUPPORTED / cuDNN 8/9 library missing",
           "build mismatch", "an aligned build", "ChatTTS#84",
           (r"CUDNN_STATUS", r"libcudnn\w*\.so")),
    Family("M1", "numba/NumPy", "Numba needs NumPy 1.24 or less",
           "numpy newer than numba supports", "upgrade numba or pin numpy",
           "PaddleSpeech#3474", (r"Numba needs NumPy",)),
    Family("M3", "numba cache", "cannot cache function ...: no locator available",
           "neither site-packages nor HOME is writable (non-root containers)",
           "NUMBA_CACHE_DIR to a writable folder", "librosa#1156, numba#7248",
           (r"no locator available", r"cannot cache function")),
    Family("M4", "JIT latency", "first resample 2 s, later 1.6 ms",
           "JIT compile, cache not kept", "warm up; keep the cache in the image",
           "librosa#1758, resampy#106", ()),
    Family("M5", "Python gates",
           "requires a different Python: 3.11.7 not in '>=3.6,<3.10' / only versions >=3.6,<3.10",
           "old pins against a newer interpreter", "a supported Python", "coqui TTS#1017",
           (r"Requires-Python", r"requires a different Python", r"only versions [<>=]")),
    Family("I1", "libsndfile", "OSError: sndfile library not found",
           "the native library is missing", "install libsndfile", "PaddleSpeech#2943",
           (r"sndfile library not found", r"libsndfile")),
    Family("I2", "ffmpeg", "Couldn't find ffprobe or avprobe", "no ffmpeg on PATH",
           "install ffmpeg", "GPT-SoVITS#558",
           (r"Couldn't find ffprobe", r"Couldn't find ffmpeg", r"ffmpeg.*not found")),
    Family("I3", "sox / backends", "No audio I/O backend is available",
           "no sox and no soundfile", "install one", "audio#3543",
           (r"No audio I/O backend is available", r"sox.*not found")),
    Family("O1", "pynini / WeTextProcessing",
           "Failed building wheel for pynini / No module named 'tn'",
           "no wheels on some platforms", "conda-forge pynini, or WSL",
           "CosyVoice#90, index-tts#201",
           (r"Failed building wheel for pynini", r"No module named '?tn'?",
            r"No module named '?pynini'?")),
    Family("O2", "onnxruntime-gpu",
           "libcublasLt.so.11 missing; CUDA provider silently absent",
           "ORT built for another CUDA major; both onnxruntime and onnxruntime-gpu installed",
           "one ORT build for the host's CUDA", "CosyVoice#91, wyoming-piper#32",
           (r"libcublasLt\.so", r"CUDAExecutionProvider", r"onnxruntime.*providers")),
    Family("O3", "gradio/pydantic", "argument of type 'bool' is not iterable",
           "pydantic>=2.11 with an older gradio", "pin or upgrade", "F5-TTS#930",
           (r"argument of type 'bool' is not iterable",)),
    Family("O4", "transformers", "'GPT2InferenceModel' object has no attribute 'generate'",
           "transformers>=4.50 dropped GenerationMixin inheritance", "pin, or coqui-tts",
           "coqui TTS#4290", (r"GPT2InferenceModel'? object has no attribute '?generate",)),
    Family("O6", "BigVGAN kernel", "Failed to load custom CUDA kernel for BigVGAN",
           "the JIT extension needs nvcc and ninja", "toolkit + ninja, or disable the kernel",
           "index-tts#138", (r"custom CUDA kernel for BigVGAN", r"Ninja is required")),
)

BY_ID = {f.id: f for f in FAMILIES}


def match(text: str) -> list[Family]:
    """Families whose signature appears in `text` (an error message or a log)."""
    return [f for f in FAMILIES if f.matches(text)]
