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


def install_editable(python: Path, src: Path, name: str, version: str = "0.1.0",
                     toml: str = "") -> None:
    """`pip install -e SRC` into the venv of `python`, as a research repo's README says: a
    setuptools pyproject.toml naming `name` and `version` (plus `toml`, more of the file) is
    written into `src` first. No dependencies are installed. EnvUnavailable if pip fails."""
    import subprocess
    import sys

    from tests.harness import venvs

    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n{toml}')
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "-q", "--no-deps", "--disable-pip-version-check", "-e", str(src)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise venvs.EnvUnavailable(f"pip install -e failed: {proc.stderr[-2000:]}")
