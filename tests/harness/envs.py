"""The catalogue of real environments the tests diagnose, one `EnvSpec` each.

Every environment is built from real packages of the versions that broke for users (see
../shared/FAILURES.md). They are built on first use and reused; `make test-envs` builds them
all up front.
"""

from __future__ import annotations

from tests.harness.venvs import EnvSpec

TORCH = ("install", "torch==2.13.0")

# Nothing but the interpreter.
BARE = EnvSpec("bare")

# torch 2.13.0, the CPU wheel from local disk.
TORCH_ONLY = EnvSpec("torch", steps=(TORCH,))

# resampy without its requirements: numpy and numba are missing (pip check fails).
UNMET = EnvSpec("unmet", steps=(("install", "--no-deps", "resampy==0.4.3"),))

# PyPI's placeholders: ttsfrd 0.1.0 and kantts 0.1.0 print hello(), no engine.
TTSFRD_PLACEHOLDER = EnvSpec("ttsfrd-placeholder",
                             steps=(("install", "ttsfrd==0.1.0", "kantts==0.1.0"),))

COSY = _COSY = ("install", "cosyvoice-ttsfrd==0.4.3")
# where cosyvoice-ttsfrd keeps the real ttsfrd wheels (cosyvoice-post-install installs them)
BUNDLED = _BUNDLED = "{site}/cosyvoice_ttsfrd/bundled_files/"
# The real ttsfrd 0.4.2 (cp310) without its shared-library wheel: libre2.so.11 is missing.
TTSFRD_NO_LIBS = EnvSpec("ttsfrd-nolibs", python="3.10", steps=(
    _COSY, ("install", "--no-deps", _BUNDLED + "ttsfrd-0.4.2-cp310-cp310-linux_x86_64.whl")))
# The real ttsfrd 0.4.2 with libre2/libmvec, as cosyvoice-post-install leaves it, minus the
# resource download (GitHub is not reachable from here, and users lose it the same way).
TTSFRD_REAL = EnvSpec("ttsfrd-real", python="3.10", steps=(
    _COSY, ("install", "--no-deps", _BUNDLED + "ttsfrd_dependency-0.1-py3-none-any.whl",
            _BUNDLED + "ttsfrd-0.4.2-cp310-cp310-linux_x86_64.whl")))

# torch 2.13 (CPU) with torchaudio 2.11 (a CUDA build): the extension needs libc10_cuda.so.
TORCHAUDIO_BROKEN = EnvSpec("torchaudio-broken", steps=(
    TORCH, ("install", "--no-deps", "torchaudio==2.11.0")))

# What a user's GPU image has before they add the doctor: torch, scipy, numpy, and older
# releases of the doctor's own requirements, which installing the doctor must not move.
INSTALL_TARGET = EnvSpec("install-target", with_pip=True, steps=(
    ("install", "torch==2.13.0", "numpy==2.4.6", "scipy==1.17.1", "click==8.1.3",
     "packaging==23.2", "psutil==5.9.8"),))

# SciPy after the removals (1.13: window names left scipy.signal; 1.14: simps, trapz,
# cumtrapz), with a real user of a removed name: librosa 0.10.0's beat tracker calls
# scipy.signal.hann (librosa#1830). librosa goes in without its requirements: only its code
# is needed, for the usage scan.
SCIPY_MODERN = EnvSpec("scipy-modern", steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1"),
    ("install", "--no-deps", "librosa==0.10.0")))

# SciPy before the removals: every name still in place.
SCIPY_OLD = EnvSpec("scipy-old", steps=(("install", "numpy==1.26.4", "scipy==1.12.0"),))

# The stack of a ModelScope / IndexTTS-2 deployment (issue 10): about 110 distributions and
# 18,000 .py files, most of them code a TTS deployment never imports (modelscope's CV and NLP
# models, nltk). Healthy: the check must pass here, and it is the benchmark's big environment.
DEPLOYMENT_STACK = ("torch==2.13.0", "transformers==4.52.1", "modelscope", "gradio", "librosa",
                    "numba", "soundfile", "pypinyin", "jieba", "g2p_en", "omegaconf",
                    "sentencepiece", "accelerate", "safetensors", "onnxruntime", "cn2an",
                    "einops")
BIG_STACK = EnvSpec("big-stack", steps=(("install", *DEPLOYMENT_STACK),))

# piper-tts installed without its requirements (as `pip install --no-deps` or a partial COPY
# leaves it): `import piper` fails, No module named 'onnxruntime', which piper-tts declares.
PIPER_NO_ORT = EnvSpec("piper-no-ort", steps=(("install", "numpy==2.4.6"),
                                              ("install", "--no-deps", "piper-tts==1.8.0")))
# The same with pip, for `fix --run-commands` to install into (tests change it and undo it).
PIPER_NO_ORT_PIP = EnvSpec("piper-no-ort-pip", with_pip=True, steps=PIPER_NO_ORT.steps)
