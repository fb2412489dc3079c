"""Shared fixtures: the real CLI as a subprocess, and real environments from the harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.harness import venvs

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "tests" / "plugins"


class CLIResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.proc = proc
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def finding(self, probe_id: str) -> dict[str, Any]:
        for f in self.json["findings"]:
            if f["id"] == probe_id:
                return f
        raise AssertionError(f"no finding {probe_id} in {[f['id'] for f in self.json['findings']]}")

    def __repr__(self) -> str:
        return (f"<CLIResult rc={self.returncode}\nstdout={self.stdout[-3000:]}\n"
                f"stderr={self.stderr[-3000:]}>")


def run_cli(*args: str, env: Optional[dict[str, str]] = None, cwd: Optional[Path] = None,
            timeout: float = 300, python: Optional[str] = None) -> CLIResult:
    """Run `python -m tts_doctor ARGS` as a real subprocess."""
    full_env = dict(os.environ)
    full_env.pop("GITHUB_ACTIONS", None)
    full_env.pop("GITHUB_STEP_SUMMARY", None)
    full_env["NO_COLOR"] = "1"
    full_env.update(env or {})
    proc = subprocess.run([python or sys.executable, "-m", "tts_doctor", *args],
                          capture_output=True, text=True, env=full_env, cwd=cwd or REPO,
                          timeout=timeout)
    return CLIResult(proc)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """Environment that loads tests/plugins/faulty_probes.py as a probe plugin."""
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "TTS_DOCTOR_PLUGINS": "faulty_probes"}


def build_env(spec: venvs.EnvSpec) -> venvs.Venv:
    try:
        return venvs.build(spec)
    except venvs.EnvUnavailable as exc:
        if "no Python" in str(exc):
            pytest.skip(str(exc))
        raise


@pytest.fixture(scope="session")
def make_env() -> Iterator[Any]:
    yield build_env
