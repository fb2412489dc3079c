"""Application folders for tests: the code a deployment runs, handed to `check --project`.

The usage probes judge the code the deployment reaches (doctor/usage.py); an environment
with no TTS stack the doctor knows and no recipe has no entry point, and its uses are at most
a warning. A test that wants the verdict for a library's use writes the application that
imports it, as a user's app.py would.
"""

from __future__ import annotations

from pathlib import Path


def write_app(folder: Path, source: str, name: str = "app.py") -> Path:
    """A folder holding one module `name` with `source`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(source)
    return folder
