"""Installed shims depend on nothing of the doctor's (issue 11 item 6, issue 12 orphans).

Real environments: a SciPy 1.17 target (`hann` and friends removed) with the doctor
installed in a separate venv (pipx-style) that is then deleted; the doctor installed inside
the target and then `pip uninstall`ed; and the oldest supported target, CPython 3.7. In each,
`from scipy.signal import hann` must keep working and `python -W error -c "import
scipy.signal"` must not fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tts_doctor import shim_install as si

from tests.harness.envs_shims import (
    SHIMS_DOCTOR_INSIDE,
    SHIMS_PY37,
    SHIMS_SCRATCH,
    exclusive,
    snapshot,
)
from tests.harness.venvs import find_python, pip

pytestmark = [pytest.mark.venv, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]

CHECK = ("import sys, scipy.signal; from scipy.signal import hann; "
         "pkg = sys.modules['_tts_doctor_shims']; "
         "print(hann(4).shape, pkg.__file__, "
         "[m for m in sys.modules if m.split('.')[0] in ('tts_doctor', 'shims', 'doctor')])")


def run(python, *args: str, cwd: Path, env: dict | None = None):
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TTS_DOCTOR_SHIMS")}
    full.update(env or {})
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd,
                          env=full, timeout=300)


def assert_self_contained(python, site: Path, cwd: Path) -> None:
    r = run(python, "-c", CHECK, cwd=cwd)
    assert r.returncode == 0, r.stderr
    shape, where, doctor_modules = r.stdout.split(" ", 2)
    assert shape == "(4,)"
    assert Path(where).parent.parent == site and Path(where).parent.name.startswith(
        si.PAYLOAD_PREFIX)
    assert doctor_modules.strip() == "[]"  # nothing of the doctor is imported
    strict = run(python, "-W", "error", "-c", "import scipy.signal", cwd=cwd)
    assert (strict.returncode, strict.stderr) == (0, ""), strict


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True)
    (whl,) = out.glob("tts_doctor-*.whl")
    return whl


def test_shims_keep_working_after_the_doctors_own_venv_is_deleted(make_env, wheel, tmp_path,
                                                                   cli):
    with exclusive(make_env(SHIMS_SCRATCH)) as target:
        cli("shims", "uninstall", "--python", str(target.python))
        site = target.site
        before = snapshot(site)
        doctor = tmp_path / "pipx" / "venvs" / "tts-doctor"
        subprocess.run([str(find_python("3.11")), "-m", "venv", "--without-pip", str(doctor)],
                       check=True)
        pip(doctor / "bin" / "python", "install", str(wheel))
        r = run(doctor / "bin" / "tts-doctor", "shims", "install", "--python",
                str(target.python), cwd=tmp_path)
        assert r.returncode == 0, r
        shutil.rmtree(doctor)  # pipx uninstall tts-doctor; or the build stage of a Dockerfile
        assert_self_contained(target.python, site, tmp_path)
        f = cli("check", "--json", "--only", "shims", "--python",
                str(target.python)).finding("shims.installed")
        assert f["status"] == "ok" and "active" in f["summary"], f
        assert cli("shims", "uninstall", "--python", str(target.python)).returncode == 0
        assert snapshot(site) == before


def test_shims_keep_working_after_pip_uninstall_tts_doctor(make_env, wheel, tmp_path, cli):
    with exclusive(make_env(SHIMS_DOCTOR_INSIDE)) as target:
        cli("shims", "uninstall", "--python", str(target.python))
        target.pip("uninstall", "-y", "tts-doctor", check=False)
        site = target.site
        before = snapshot(site)
        target.pip("install", "--no-deps", str(wheel))
        r = run(target.path / "bin" / "tts-doctor", "shims", "install", cwd=tmp_path)
        assert r.returncode == 0, r
        target.pip("uninstall", "-y", "tts-doctor")
        assert run(target.python, "-c", "import tts_doctor", cwd=tmp_path).returncode == 1
        assert_self_contained(target.python, site, tmp_path)
        assert cli("shims", "uninstall", "--python", str(target.python)).returncode == 0
        assert snapshot(site) == before


def test_the_shims_code_runs_on_python_3_7(make_env, tmp_path, cli):
    # SciPy 1.7.3 still has every removed name (scipy_names adds nothing), so the opt-in
    # resample shim is what proves the copied code imports and patches under 3.7
    with exclusive(make_env(SHIMS_PY37)) as target:
        py = str(target.python)
        cli("shims", "uninstall", "--python", py)
        before = snapshot(target.site)
        r = cli("shims", "install", "scipy_names", "resample", "--python", py)
        assert r.returncode == 0, r
        code = ("import sys, numpy as np, scipy.signal as s; "
                "f = [m for m in sys.meta_path if hasattr(m, '__tts_doctor_shims_finder__')]; "
                "y = s.resample(np.sin(np.arange(1000) / 7.0), 441); "
                "print(sys.version_info[:2] == (3, 7), s.resample.__tts_doctor_shim__, "
                "y.shape, f[0].errors, getattr(s.hann, '__tts_doctor_shim__', None))")
        r = run(py, "-W", "error", "-c", code, cwd=tmp_path)
        assert r.returncode == 0 and r.stderr == "", r
        assert r.stdout.split(" ", 3) == ["True", "resample", "(441,)", "[] None\n"]
        assert cli("shims", "uninstall", "--python", py).returncode == 0
        assert snapshot(target.site) == before
