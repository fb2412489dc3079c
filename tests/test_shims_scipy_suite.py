"""SciPy's own resample and window tests pass with the DEFAULT shims installed (issue 12).

A hooked shim may add what SciPy lacks; it may not change what SciPy has. The test runs
`pytest --pyargs scipy.signal.tests.test_signaltools -k resample` and
`scipy.signal.tests.test_windows` in a real SciPy 1.17 environment with `tts-doctor shims
install` (the default set) in place, in a process where the shims are verifiably active.
A control run with the opt-in `resample` shim shows that the suite does detect a shim that
replaces a working function (so the default run's pass means something).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.harness.envs_shims import SHIMS_SCIPY_TESTS, exclusive, snapshot

pytestmark = [pytest.mark.venv, pytest.mark.slow]

# pytest in the target interpreter, after checking that the shims are active there
RUNNER = """
import sys, scipy.signal
assert getattr(scipy.signal.hann, "__tts_doctor_shim__", None) == "scipy_names", "no shims"
print("shims active; resample is", getattr(scipy.signal.resample, "__tts_doctor_shim__",
                                             "scipy's own"), flush=True)
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
                      "--pyargs", *sys.argv[1:]]))
"""


def pytest_in(venv, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TTS_DOCTOR_SHIMS")}
    return subprocess.run([str(venv.python), "-c", RUNNER, *args], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=1500)


@pytest.fixture(scope="module")
def suite_env(make_env):
    return make_env(SHIMS_SCIPY_TESTS)


def test_scipy_resample_and_window_tests_pass_with_the_default_shims(suite_env, cli,
                                                                     tmp_path):
    with exclusive(suite_env) as venv:
        py = str(venv.python)
        cli("shims", "uninstall", "--python", py)
        before = snapshot(venv.site)
        assert cli("shims", "install", "--python", py).returncode == 0
        try:
            r = pytest_in(venv, tmp_path, "scipy.signal.tests.test_signaltools", "-k",
                          "resample")
            assert "shims active; resample is scipy's own" in r.stdout, r.stdout[-3000:]
            assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
            assert " passed" in r.stdout and " failed" not in r.stdout
            r = pytest_in(venv, tmp_path, "scipy.signal.tests.test_windows")
            assert "shims active" in r.stdout, r.stdout[-3000:]
            assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
            assert " passed" in r.stdout and " failed" not in r.stdout

            # control: the opt-in resample shim changes results, and SciPy's tests see it
            assert cli("shims", "install", "resample", "--python", py).returncode == 0
            r = pytest_in(venv, tmp_path, "scipy.signal.tests.test_signaltools", "-k",
                          "resample")
            assert "resample is resample" in r.stdout, r.stdout[-3000:]
            assert r.returncode != 0
        finally:
            assert cli("shims", "uninstall", "--python", py).returncode == 0
        assert snapshot(venv.site) == before
