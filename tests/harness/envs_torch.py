"""Real environments for the torch-family probes (torch.weights-only, torchaudio.*), beside the
shared TORCH_ONLY and TORCHAUDIO_BROKEN of envs.py. Packages whose code is only read (scanned,
their metadata and ELF files inspected) go in with --no-deps: an environment holds exactly
what breaks and nothing that takes minutes to download.
"""

from __future__ import annotations

from tests.harness.envs import TORCH
from tests.harness.venvs import EnvSpec

# A6: torch 2.13 (CPU; torch.load defaults to weights_only=True since 2.6) with the abandoned
# coqui `TTS` 0.22.0 (its last release, cp311 wheel, under 1 MB), which calls torch.load
# without weights_only (TTS/utils/io.py) on XTTS checkpoints that pickle config classes
# (coqui TTS#4121). Its requirements are not needed: the probe reads its files.
TTS_OLD = EnvSpec("tts-old", steps=(TORCH, ("install", "--no-deps", "TTS==0.22.0")))

# A4, A5 without torch (a few MB, seconds to build): torchaudio 2.11 (the PyPI wheel, a
# CUDA 13.0 build), torchcodec 0.9.1 (one core library per FFmpeg major, 4 to 8; this machine
# has no FFmpeg) and coqui-tts 0.27.0, whose TTS/tts/datasets/dataset.py calls torchaudio.info,
# removed in torchaudio 2.9 (coqui-ai-TTS#525), and whose models call torchaudio.load/save.
TORCHAUDIO_USERS = EnvSpec("torchaudio-users", steps=(
    ("install", "--no-deps", "torchaudio==2.11.0", "torchcodec==0.9.1", "coqui-tts==0.27.0"),))
