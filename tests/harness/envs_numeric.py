"""Real environments for the NumPy, numba/resampy, ONNX Runtime, audio I/O and library
compatibility probes: real packages of the versions that broke for users (FAILURES.md N1, N2,
M1, M3, I1, I2, I3, O2, O3, O4). Packages that only need to be *present* (their code scanned,
their metadata read) go in with --no-deps, so that an environment holds exactly the pair that
breaks and nothing that would take minutes to download.
"""

from __future__ import annotations

from tests.harness.venvs import EnvSpec

# NumPy 2.0 with what was built for NumPy 1 (N1) and code that uses removed aliases (N2):
# - soxr 0.3.7 (cp311, Cython, built against NumPy 1.x): importing it prints "A module that
#   was compiled using NumPy 1.x cannot be run in NumPy 2.0.2" and raises "numpy.core.multiarray
#   failed to import";
# - librosa 0.9.2 calls np.float (util/utils.py, removed in NumPy 1.24) and compiles numba
#   functions with cache=True (the user that fails with "no locator available", M3);
# - numba 0.60 + llvmlite 0.43: the first numba that supports NumPy 2.0 (a working JIT).
# soxr and librosa go in without their requirements: soxr's would pull NumPy back, librosa's
# are not needed to scan its code.
NUMPY2_LEGACY = EnvSpec("numpy2-legacy", steps=(
    ("install", "numpy==2.0.2", "numba==0.60.0", "llvmlite==0.43.0"),
    ("install", "--no-deps", "soxr==0.3.7", "librosa==0.9.2"),
))

# NumPy 2.0 with Shapely 1.8.5 (cp311): its core imports and works (its extensions do not use
# NumPy), but its optional `shapely.vectorized` module is a Cython build against NumPy 1.x that
# fails with "numpy.dtype size changed" when imported; nothing in Shapely imports it (N1's
# false alarm: an optional module is not a broken environment).
NUMPY2_OPTIONAL_EXT = EnvSpec("numpy2-optional-ext", steps=(
    ("install", "numpy==2.0.2"),
    ("install", "--no-deps", "shapely==1.8.5.post1"),
))

# numba 0.58.1 (supports NumPy up to 1.26) next to NumPy 2.0.2 (M1): `import numba` raises
# "Numba needs NumPy 1.26 or less". Installed without requirements, as a partial upgrade of
# numpy leaves it (pip would refuse the pair); its extensions are NumPy 1 builds too (N1).
NUMBA_TOO_OLD = EnvSpec("numba-too-old", steps=(
    ("install", "numpy==2.0.2"),
    ("install", "--no-deps", "numba==0.58.1", "llvmlite==0.41.1"),
))

# soundfile 0.10.3.post1 is a py2.py3-none-any wheel that does not bundle libsndfile, and this
# machine has no system libsndfile (I1: "OSError: sndfile library not found"). pydub 0.25.1
# runs ffmpeg/ffprobe and sox 1.4.1 (pysox) runs the sox program; neither program exists here
# (I2, I3). No scipy, no torchaudio: no working audio backend at all (I3).
AUDIO_LEGACY = EnvSpec("audio-legacy", steps=(
    ("install", "soundfile==0.10.3.post1"),
    ("install", "--no-deps", "pydub==0.25.1", "sox==1.4.1"),
))

# onnxruntime-gpu is 280 MB (its CUDA provider library alone is 400 MB unpacked) and its
# requirements (coloredlogs, flatbuffers, protobuf, sympy) are not needed to import it or list
# its providers: every ONNX Runtime build goes in with --no-deps, next to numpy.
_ORT_NUMPY = ("install", "numpy==2.0.2")
# O2 as piper users get it: onnxruntime-gpu first, then a dependency pulls the CPU build over
# it; both metadata remain, the files on disk are the CPU build's.
ORT_BOTH = EnvSpec("ort-both", steps=(
    _ORT_NUMPY,
    ("install", "--no-deps", "onnxruntime-gpu==1.22.0"),
    ("install", "--no-deps", "onnxruntime==1.22.0"),
))
# onnxruntime-gpu alone on this CPU host: the CUDA provider is listed but its library needs
# libcublasLt.so.12, libcudnn.so.9... which are not here; sessions silently fall back to CPU.
ORT_GPU = EnvSpec("ort-gpu", steps=(
    _ORT_NUMPY,
    ("install", "--no-deps", "onnxruntime-gpu==1.22.0"),
))

# The broken pairs (O3, O4), metadata and code only (--no-deps: gradio's and transformers'
# requirements are hundreds of MB and not needed to read versions and class definitions):
# pydantic 2.11.0 with gradio 5.21.0 / gradio_client 1.7.2 (the fix is gradio_client 1.8.0,
# first pinned by gradio 5.22.0); transformers 4.50.0 with the old coqui TTS 0.22.0, whose
# GPT2InferenceModel classes (xtts, tortoise) lack GenerationMixin.
COMPAT_BROKEN = EnvSpec("compat-broken", steps=(
    ("install", "--no-deps", "gradio==5.21.0", "gradio-client==1.7.2", "pydantic==2.11.0",
     "transformers==4.50.0", "TTS==0.22.0"),
))
# The same stack one step either side of each break: gradio_client 1.8.0 (fixed) with
# pydantic 2.11.0, and transformers 4.49.0 (still inherits GenerationMixin) with TTS 0.22.0.
COMPAT_OK = EnvSpec("compat-ok", steps=(
    ("install", "--no-deps", "gradio-client==1.8.0", "pydantic==2.11.0",
     "transformers==4.49.0", "TTS==0.22.0"),
))
