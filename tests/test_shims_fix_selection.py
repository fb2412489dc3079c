"""`tts-doctor fix` applies only the default shims: an opt-in shim (`resample`, which replaces
a working scipy.signal.resample) is printed as a recommendation, never applied (issue 10).

The finding comes from a probe plugin written by the test (as in tests/test_fix.py): it
reports the slow-but-correct scipy.signal.resample with `shim="resample"`, the way the real
scipy.resample probe does, and scipy.signal.hann missing with `shim="scipy_names"`.
"""

from __future__ import annotations

import pytest
from tts_doctor import shim_install as si

from tests.harness.envs_shims import SHIMS_FIX, exclusive, snapshot

pytestmark = pytest.mark.venv

PLUGIN = '''
from tts_doctor.finding import Fix, ok, warn
from tts_doctor.registry import probe


@probe("testpick.resample", title="test: scipy.signal.resample speed", isolated=True)
def resample(ctx):
    import scipy.signal

    if getattr(scipy.signal.resample, "__tts_doctor_shim__", None):
        return ok("scipy.signal.resample is the shim")
    return warn("scipy.signal.resample works but is slow on prime lengths",
                Fix("Route it through the band-limited resampler", shim="resample"))


@probe("testpick.hann", title="test: scipy.signal.hann", isolated=True)
def hann(ctx):
    import scipy.signal

    if hasattr(scipy.signal, "hann"):
        return ok("scipy.signal.hann present")
    return warn("scipy.signal.hann is missing", Fix("Restore it", shim="scipy_names"))
'''


@pytest.fixture
def setup(make_env, cli, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "testpick_probe.py").write_text(PLUGIN)
    env = {"PYTHONPATH": str(plugins), "TTS_DOCTOR_PLUGINS": "testpick_probe",
           "TTS_DOCTOR_STATE_DIR": str(tmp_path / "state")}
    with exclusive(make_env(SHIMS_FIX)) as venv:
        py = str(venv.python)
        cli("shims", "uninstall", "--python", py)

        def fix(*args: str, only: str = "testpick"):
            return cli("fix", *args, "--python", py, "--only", only, env=env)

        yield venv, fix
        cli("shims", "uninstall", "--python", py)


def test_fix_recommends_the_opt_in_resample_shim_and_applies_nothing(setup):
    venv, fix = setup
    before = snapshot(venv.site)
    r = fix(only="testpick.resample")
    assert r.returncode == 0, r
    assert "Recommended, not applied" in r.stdout
    assert "$ tts-doctor shims install resample  # testpick.resample" in r.stdout
    assert "changes: scipy.signal.resample(x, num) is computed by a band-limited" in r.stdout
    assert "applied:" not in r.stdout and "Shims the doctor applies" not in r.stdout
    assert snapshot(venv.site) == before


def test_fix_applies_the_default_shim_beside_the_recommendation(setup):
    venv, fix = setup
    r = fix()
    assert r.returncode == 0, r
    assert f"applied: shims scipy_names in {venv.site / si.PTH_NAME}" in r.stdout
    assert "$ tts-doctor shims install resample  # testpick.resample" in r.stdout
    assert si.parse((venv.site / si.PTH_NAME).read_text())["shims"] == ["scipy_names"]
    # the resample finding is still a warn: nothing replaced scipy.signal.resample
    again = fix("--dry-run")
    assert "Recommended, not applied" in again.stdout and "scipy_names  #" not in again.stdout
