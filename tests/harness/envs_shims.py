"""Real environments for the shims tests (their own, so that tests that write into
site-packages never disturb other tests using the shared catalogue in envs.py).

Built on first use and cached like every harness environment (tests/harness/venvs.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from tests.harness.venvs import EnvSpec, Venv

# SciPy after the removals (1.13: window names left scipy.signal; 1.14: simps, trapz,
# cumtrapz), numpy 2; no soxr, so the resample shim falls back to SciPy's polyphase filter.
# The install/uninstall tests write their .pth here.
SHIMS_SCIPY_MODERN = EnvSpec("shims-scipy-modern", steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1"),))

# A second copy for the tests that break things on purpose (read-only site-packages,
# kill -9 in the middle of an install, concurrent installs).
SHIMS_SCRATCH = EnvSpec("shims-scratch", steps=(("install", "numpy==2.4.6", "scipy==1.17.1"),))

# SciPy before the removals: every name in place (a shim there is removable).
SHIMS_SCIPY_OLD = EnvSpec("shims-scipy-old", steps=(("install", "numpy==1.26.4",
                                                     "scipy==1.12.0"),))

# librosa 0.11.0 with its requirements: the reference mel filterbank and mel spectrogram
# (librosa.filters.mel, librosa.feature.melspectrogram) for the parity tests. No torch:
# the test computes librosa's numbers here and compares them with shims.mel in the
# development environment.
SHIMS_LIBROSA = EnvSpec("shims-librosa", steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1", "librosa==0.11.0"),))

# For tests/test_fix.py (tts-doctor fix writes the .pth here, and --undo removes it).
SHIMS_FIX = EnvSpec("shims-fix", steps=(("install", "numpy==2.4.6", "scipy==1.17.1"),))


@contextlib.contextmanager
def exclusive(venv: Venv) -> Iterator[Venv]:
    """Hold an exclusive lock on an environment for one test: tests that write into its
    site-packages must not overlap, even on parallel pytest workers (-n)."""
    lock = venv.path.parent / f"{venv.path.name}.test-lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield venv
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` -> sha256 of its content ('dir' for folders): the listing
    and hashes that `shims uninstall` must leave exactly as they were before install."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = "dir"
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out

# SciPy's own test suite (tests/test_shims_scipy_suite.py): SciPy 1.17 with pytest and
# hypothesis (SciPy's conftest needs it); the default shims are installed for the run.
SHIMS_SCIPY_TESTS = EnvSpec("shims-scipy-tests", steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1", "pytest==9.2.0", "hypothesis==6.170.17"),))

# The doctor installed *inside* the target (its requirements here, the doctor's wheel
# installed and uninstalled by the test): shims must keep working after
# `pip uninstall tts-doctor` (tests/test_shims_selfcontained.py).
SHIMS_DOCTOR_INSIDE = EnvSpec("shims-doctor-inside", steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1", "click==8.5.1", "packaging==26.4",
     "psutil==7.2.2", "nvidia-ml-py==13.615.71"),))

# The oldest target the shims support: CPython 3.7 with the last SciPy for it (1.7.3 still
# has every removed name, so scipy_names adds nothing there; resample replaces).
SHIMS_PY37 = EnvSpec("shims-py37", python="3.7", steps=(
    ("install", "numpy==1.21.6", "scipy==1.7.3"),))
