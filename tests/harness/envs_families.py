"""Real environments for the probes of the 2025-2026 failure families (FAILURES.md F9-F13).

Packages whose files only need to be present (their RECORD read, their shared objects loaded)
go in with --no-deps: an environment holds exactly what breaks.
"""

from __future__ import annotations

from tests.harness.envs import _BUNDLED, _COSY, TORCH
from tests.harness.venvs import EnvSpec

# modelscope's `datasets` extra, minus scipy and Pillow (not imported before the datasets
# import fails; the healthy environment adds Pillow, which modelscope.pipelines imports),
# with setuptools 69.5.1 as modelscope 1.19 pins it (pkg_resources).
_MS_EXTRA = ("addict", "attrs", "einops", "oss2", "python-dateutil", "simplejson",
             "sortedcontainers", "setuptools==69.5.1")

# F13: phonemizer and phonemizer-fork both installed (misaki#39: kokoro wants the fork, a
# dependency pulls the original back over it); both own the import name `phonemizer`. Beside
# them, two jaraco.* distributions that share the namespace package `jaraco` (no __init__):
# the design of namespace packages, not a clash.
PHONEMIZER_BOTH = EnvSpec("phonemizer-both", steps=(
    ("install", "--no-deps", "phonemizer-fork==3.3.2"),
    ("install", "--no-deps", "phonemizer==3.3.0"),
    ("install", "--no-deps", "jaraco.classes==3.4.0", "jaraco.functools==4.4.0"),
))

# F11: torchvision 0.29.0 (built against torch 2.14, its Requires-Dist pins torch==2.14.0)
# beside torch 2.13.0: torchvision/_C.so references torch symbols 2.13 lacks. Installed
# without requirements, as a partial upgrade leaves it.
TORCHVISION_MISMATCH = EnvSpec("torchvision-mismatch", steps=(
    TORCH, ("install", "--no-deps", "torchvision==0.29.0")))
# The matching pair: torchvision 0.28.0 is the build for torch 2.13.
TORCHVISION_MATCH = EnvSpec("torchvision-match", steps=(
    TORCH, ("install", "--no-deps", "torchvision==0.28.0")))

# T5 as installs outside CosyVoice leave it: the real ttsfrd 0.4.2 with its libraries, but not
# cosyvoice-ttsfrd (whose package folder holds the resource after cosyvoice-post-install):
# no resource folder anywhere the known stacks look.
TTSFRD_NO_RESOURCE = EnvSpec("ttsfrd-noresource", python="3.10", steps=(
    _COSY, ("install", "--no-deps", _BUNDLED + "ttsfrd_dependency-0.1-py3-none-any.whl",
            _BUNDLED + "ttsfrd-0.4.2-cp310-cp310-linux_x86_64.whl"),
    ("uninstall", "-y", "cosyvoice-ttsfrd")))

# torch 2.13.0 whose libtorch_cpu.so the test truncates, as an interrupted download or a full
# disk leaves it: `import torch` dies of SIGBUS when the loader touches the missing pages.
# Its own copy: the test breaks it on purpose.
TORCH_TRUNCATED = EnvSpec("torch-truncated", steps=(TORCH,))

# F6, F8: g2p_en 2.1.0 with NLTK 3.9.1 (the tagger is `averaged_perceptron_tagger_eng` there)
# and no NLTK data; misaki 0.9.4 without its spaCy model (misaki's code only: --no-deps).
TEXT_NO_DATA = EnvSpec("text-nodata", steps=(
    ("install", "nltk==3.9.1"),
    ("install", "--no-deps", "g2p-en==2.1.0", "misaki==0.9.4"),
))

# F7: phonemizer-fork 3.3.2 with its requirements and no espeak-ng on this machine; and
# espeakng-loader 0.2.4, which bundles a libespeak-ng and its data (kokoro's way out).
PHONEMIZER_NO_ESPEAK = EnvSpec("phonemizer-noespeak", steps=(
    ("install", "phonemizer-fork==3.3.2"),
))
PHONEMIZER_LOADER = EnvSpec("phonemizer-loader", steps=(
    ("install", "phonemizer-fork==3.3.2", "espeakng-loader==0.2.4"),
))

# F3 and F4's healthy side, one torch environment for both: transformers 4.57.1 with its
# requirements beside torch 2.13 (the gate is open: torch >= 2.6), and modelscope 1.19.0 with
# datasets 3.0.1, the last release that still has OfflineModeIsEnabled. torch < 2.6 cannot be
# installed here (only the local 2.13 CPU wheel; PyPI's older builds are 800 MB CUDA wheels),
# so the closed gate is judged from transformers' own message.
TRANSFORMERS_TORCH = EnvSpec("hf-stack-torch", steps=(
    TORCH, ("install", "transformers==4.57.1", "modelscope==1.19.0", "datasets==3.0.1",
            "Pillow", *_MS_EXTRA)))

# F4: modelscope 1.19.0 with datasets 3.0.2, which removed OfflineModeIsEnabled from
# datasets.utils.file_utils (modelscope#1050): `from modelscope.pipelines import pipeline`
# fails. setuptools < 82 keeps pkg_resources, which modelscope imports (F15).
MODELSCOPE_DATASETS = EnvSpec("modelscope-datasets", steps=(
    ("install", "modelscope==1.19.0", "datasets==3.0.2", *_MS_EXTRA),))
