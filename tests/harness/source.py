"""The doctor's source tree as an importable `tts_doctor` package, without installing it.

The repository keeps doctor/, shims/ and recipes/ side by side and pyproject maps them into
one import package; a Python that only has the repository on its path sees none of it. Tests
that run the doctor from source under another interpreter put `source_path()` on PYTHONPATH.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def source_path() -> str:
    """A folder holding `tts_doctor/`: links to doctor/'s files, shims/ and recipes/."""
    root = Path(tempfile.mkdtemp(prefix="tts-doctor-source-"))
    atexit.register(shutil.rmtree, root, True)  # links only: nothing else lives there
    package = root / "tts_doctor"
    package.mkdir()
    for child in (REPO / "doctor").iterdir():
        if child.name != "__pycache__":
            os.symlink(child, package / child.name)
    os.symlink(REPO / "shims", package / "shims")
    os.symlink(REPO / "recipes", package / "recipes")
    return str(root)
