"""Installing the doctor must not move anything already installed, and it must run where it
is installed. The target is a real venv with torch, numpy, scipy and older releases of the
doctor's own requirements."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness import envs
from tests.harness.venvs import REPO

pytestmark = [pytest.mark.venv, pytest.mark.slow]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True)
    (whl,) = out.glob("tts_doctor-*.whl")
    return whl


def test_installing_the_core_leaves_every_distribution_as_it_was(make_env, wheel):
    # (subprocesses run from the venv's folder: from the repository root, `python -c` would
    # import the source tree's doctor/ instead of the installed one)
    venv = make_env(envs.INSTALL_TARGET)
    before = venv.freeze()
    assert any(line.startswith("torch==2.13.0") for line in before)
    try:
        venv.pip("install", str(wheel))
        after = venv.freeze()
        moved = sorted(set(before) - set(after))
        assert moved == [], f"installing tts-doctor changed: {moved}"
        added = {line.split("==")[0].split(" @ ")[0].lower() for line in set(after) - set(before)}
        assert "tts-doctor" in added
        assert added <= {"tts-doctor", "nvidia-ml-py"}, added

        # and it runs there, as a console script, with its own worker
        r = subprocess.run([str(venv.path / "bin" / "tts-doctor"), "check", "--json",
                            "--only", "python,packages,torch"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert {f["id"]: f["status"] for f in data["findings"]}["torch.build"] == "ok"
        assert data["python"]["prefix"] == str(venv.path)
        # recipes ship inside the package
        r = subprocess.run([str(venv.path / "bin" / "python"), "-c",
                            "from tts_doctor.recipe import builtin_names; print(builtin_names())"],
                           capture_output=True, text=True, cwd=venv.path)
        assert r.returncode == 0, r.stderr
    finally:
        venv.pip("uninstall", "-y", "tts-doctor", "nvidia-ml-py", check=False)
    assert venv.freeze() == before


# The worker under every supported Python: tests/test_interpreters.py
