"""`tts-doctor fix --run-commands` on a real environment with pip: it changes only what the
chosen fix names (`pip freeze` before and after), and `fix --undo` brings the freeze back
exactly, or names what it could not restore and exits 1.

The environment: SciPy 1.17.1 with librosa 0.10.0 (its beat tracker calls the removed
`scipy.signal.hann`, librosa#1830: the real `scipy.removed-names` finding, whose fix is the
scipy_names shim, an upgrade of librosa, or a pin of SciPy), NumPy 2.4.6 and six 1.16.0 (the
old release the test plugin's findings are about). With pip, so that fix can run pip commands
in it. Shared by every test here (module fixture; the tests that change it put it back).

Two findings come from a test plugin (TTS_DOCTOR_PLUGINS), because no real probe has a
finding whose recommended fix is one small, fast package change:
- `testreal.six` fails while six is not 1.17.0; its fix's alternatives: (1) install
  six==1.17.0, then write a marker file (a second step, needed only if the first did not fix
  it); (2) install six==1.15.0. Only the first step of (1) may run.
- `testreal.numpy` warns while numpy >= 2; its only fix is `pip install 'numpy<2'`, a
  downgrade of a core library: refused without --allow-downgrade.
"""

from __future__ import annotations

import json
import shlex

import pytest
from tts_doctor import shim_install as si

from tests.harness.envs_shims import exclusive, snapshot
from tests.harness.venvs import EnvSpec

pytestmark = [pytest.mark.venv, pytest.mark.slow]

FIX_PIP = EnvSpec("fix-pip", with_pip=True, steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1", "six==1.16.0"),
    ("install", "--no-deps", "librosa==0.10.0")))

PLUGIN = '''
import importlib.metadata as md
import sys

from tts_doctor import dists
from tts_doctor.finding import Fix, cmd, fail, ok, steps, warn
from tts_doctor.registry import probe


def _mark(path):
    return cmd(sys.executable, "-c", f"open({path!r}, 'w').close()")


@probe("testreal.six", title="test: six is 1.17.0", isolated=True)
def six_version(ctx):
    v = md.version("six")
    if v != "1.17.0":
        return fail(f"six {v} is not 1.17.0",
                    Fix("Install six 1.17.0", commands=(
                        steps(dists.pip_install("six==1.17.0"), _mark(MARKER)),
                        dists.pip_install("six==1.15.0"))))
    return ok("six 1.17.0")


@probe("testreal.numpy", title="test: numpy is below 2", isolated=True)
def numpy_major(ctx):
    v = md.version("numpy")
    if int(v.split(".")[0]) >= 2:
        return warn(f"numpy {v} is 2 or newer",
                    Fix("Pin numpy below 2", commands=(dists.pip_install("numpy<2"),
                                                       _mark(MARKER + "-2"))))
    return ok(f"numpy {v}")
'''


@pytest.fixture(scope="module")
def real(make_env, tmp_path_factory):
    from tests.conftest import run_cli

    tmp = tmp_path_factory.mktemp("fix-real")
    plugins = tmp / "plugins"
    plugins.mkdir()
    marker = tmp / "second-step-ran"
    (plugins / "testreal_probe.py").write_text(f"MARKER = {str(marker)!r}\n" + PLUGIN)
    env = {"PYTHONPATH": str(plugins), "TTS_DOCTOR_PLUGINS": "testreal_probe",
           "TTS_DOCTOR_STATE_DIR": str(tmp / "state")}
    with exclusive(make_env(FIX_PIP)) as venv:
        py = str(venv.python)
        run_cli("shims", "uninstall", "--python", py)
        yield venv, py, env, marker, tmp / "state"
        run_cli("shims", "uninstall", "--python", py)


def _freeze(venv) -> dict[str, str]:
    out = venv.run("-m", "pip", "freeze", "--all", "--disable-pip-version-check").stdout
    return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)


def test_only_the_recommended_step_runs_and_undo_restores_the_freeze(real, cli):
    venv, py, env, marker, _ = real
    before = _freeze(venv)
    assert before["six"] == "1.16.0"
    r = cli("fix", "--run-commands", "--python", py, "--only", "testreal.six", env=env,
            timeout=600)
    assert r.returncode == 0, r
    after = _freeze(venv)
    changed = {n: (before.get(n), after.get(n)) for n in set(before) | set(after)
               if before.get(n) != after.get(n)}
    assert changed == {"six": ("1.16.0", "1.17.0")}, changed
    assert "testreal.six: fixed (ok); the 1 remaining step(s) are not needed" in r.stdout
    assert not marker.exists()                 # the second step was not needed
    assert "six==1.15.0" not in "\n".join(     # the other alternative never ran
        line for line in r.stdout.splitlines() if line.startswith("$ "))
    ran = [line for line in r.stdout.splitlines() if line.startswith("$ ")]
    assert len(ran) == 1 and shlex.split(ran[0][2:])[:4] == [py, "-m", "pip", "install"]
    assert "testreal.six   fail -> ok" in r.stdout

    r = cli("fix", "--undo", "--python", py, env=env, timeout=600)
    assert r.returncode == 0, r
    assert "restored the recorded package versions: six 1.17.0 -> 1.16.0" in r.stdout
    assert _freeze(venv) == before


def test_undo_names_what_it_cannot_restore_and_exits_1(real, cli):
    venv, py, env, _, state = real
    before = _freeze(venv)
    r = cli("fix", "--run-commands", "--python", py, "--only", "testreal.six", env=env,
            timeout=600)
    assert r.returncode == 0 and _freeze(venv)["six"] == "1.17.0", r
    # the recorded version cannot be installed (no such release): undo must say so
    path = state / "fix-journal.json"
    journal = json.loads(path.read_text())
    action = journal["transactions"][-1]["actions"][0]
    action["before"]["six"] = "0.0.0.404"
    path.write_text(json.dumps(journal))
    r = cli("fix", "--undo", "--python", py, env=env, timeout=600)
    assert r.returncode == 1, r
    assert "could not restore six 1.17.0 (was 0.0.0.404)" in r.stderr
    assert "undid fix" not in r.stdout
    assert not json.loads(path.read_text())["transactions"][-1]["undone"]
    # with the real version recorded again, the same undo succeeds
    action["before"]["six"] = "1.16.0"
    path.write_text(json.dumps(journal))
    r = cli("fix", "--undo", "--python", py, env=env, timeout=600)
    assert r.returncode == 0, r
    assert _freeze(venv) == before


def test_a_core_library_downgrade_is_refused_and_shown(real, cli):
    venv, py, env, marker, _ = real
    before = _freeze(venv)
    r = cli("fix", "--run-commands", "--python", py, "--only", "testreal.numpy", env=env,
            timeout=600)
    assert r.returncode == 1, r
    assert ("testreal.numpy: the recommended fix is not run: it would downgrade numpy 2.4.6 "
            "-> numpy<2; add --allow-downgrade to allow it. It would run:") in r.stdout
    assert f"  $ {shlex.quote(py)} -m pip install 'numpy<2'" in r.stdout
    assert not any(line.startswith("$ ") for line in r.stdout.splitlines())
    assert not (marker.parent / (marker.name + "-2")).exists()  # nor the other alternative
    assert _freeze(venv) == before
    r = cli("fix", "--dry-run", "--python", py, "--only", "testreal.numpy", env=env)
    assert "(not run: it would downgrade numpy 2.4.6 -> numpy<2" in r.stdout


def test_real_scipy_finding_fixed_by_the_shim_runs_no_command(real, cli):
    """The case from the field: the shim repairs scipy.removed-names, so neither the librosa
    upgrade nor the SciPy pin runs; undo removes the .pth and the freeze never moved."""
    venv, py, env, _, _ = real
    before, site = _freeze(venv), snapshot(venv.site)
    r = cli("fix", "--run-commands", "--python", py, "--only", "scipy.removed-names",
            env=env, timeout=600)
    assert r.returncode == 0, r
    assert "scipy.removed-names: fixed already (by the shims" in r.stdout
    assert not any(line.startswith("$ ") for line in r.stdout.splitlines())
    assert si.parse((venv.site / si.PTH_NAME).read_text())["shims"] == ["scipy_names"]
    assert _freeze(venv) == before
    r = cli("fix", "--undo", "--python", py, env=env, timeout=600)
    assert r.returncode == 0, r
    assert snapshot(venv.site) == site and _freeze(venv) == before
