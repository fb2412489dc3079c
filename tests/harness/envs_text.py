"""Real environments for the SciPy, ttsfrd/KAN-TTS and text-frontend probes (beside envs.py).

Each is built from real packages by tests/harness/venvs.py and cached like the others.
"""

from __future__ import annotations

from tests.harness.envs import _BUNDLED, _COSY
from tests.harness.venvs import EnvSpec

# SciPy 1.12 still has scipy.signal.hann; librosa 0.10.0 calls it (beat.py): fine today,
# broken by the upgrade to 1.13. librosa goes in without its requirements (only its code is
# needed, for the usage scan).
SCIPY_OLD_LIBROSA = EnvSpec("scipy-old-librosa", steps=(
    ("install", "numpy==1.26.4", "scipy==1.12.0"),
    ("install", "--no-deps", "librosa==0.10.0")))

# WeTextProcessing installed without pynini, as when `Failed building wheel for pynini` left
# it half-installed (FAILURES.md O1): `import tn` fails on `No module named 'pynini'`.
WETEXT_NO_PYNINI = EnvSpec("wetext-nopynini", steps=(
    ("install", "--no-deps", "WeTextProcessing==1.2.0", "importlib_resources"),))

# The working fallback frontend: pynini's manylinux wheel (165 MB) and WeTextProcessing with
# its prebuilt zh grammar.
WETEXT = EnvSpec("wetext", steps=(("install", "pynini==2.1.7", "WeTextProcessing==1.2.0"),))

# The real ttsfrd 0.4.2 with its libraries (as TTSFRD_REAL) plus the doctor's own requirements,
# so the doctor can run *inside* the diagnosed interpreter (PYTHONPATH=the repository).
TTSFRD_REAL_DOCTOR = EnvSpec("ttsfrd-real-doctor", python="3.10", steps=(
    _COSY, ("install", "--no-deps", _BUNDLED + "ttsfrd_dependency-0.1-py3-none-any.whl",
            _BUNDLED + "ttsfrd-0.4.2-cp310-cp310-linux_x86_64.whl"),
    ("install", "click>=8.0", "packaging>=21", "psutil>=5.8", "nvidia-ml-py>=11.450",
     "tomli>=1.1")))

# SciPy 1.17 with librosa 0.10.0 (as SCIPY_MODERN), its own copy: the shim test writes the
# scipy_names .pth into it (and removes it again).
SCIPY_MODERN_SHIMMED = EnvSpec("scipy-modern-shimmed", steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1"),
    ("install", "--no-deps", "librosa==0.10.0")))
