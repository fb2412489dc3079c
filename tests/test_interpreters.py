"""Every environment a TTS stack runs in: CPython 3.7-3.13 targets diagnosed from outside, the
doctor installed on 3.8 and 3.13, a pipx-style doctor with the user's venv activated, generic
PyPI names beside it, and a worker that cannot start reported as the doctor's own failure.

The interpreters come from pyenv (tests/harness/venvs.find_python); a version this machine
does not have is skipped with its reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.harness.venvs import REPO, EnvSpec

pytestmark = [pytest.mark.venv]

TARGETS = ["3.7", "3.8", "3.9", "3.10", "3.12", "3.13"]


@pytest.mark.parametrize("version", TARGETS)
def test_every_probe_runs_under_a_bare_target_of_each_python(cli, make_env, version):
    """All probes, not a subset: the worker and every probe module import there, and the
    verdicts judged at home see that interpreter, not the doctor's."""
    venv = make_env(EnvSpec(f"bare-{version}", python=version))
    r = cli("check", "--json", "--python", str(venv.python))
    assert r.returncode == 0, r
    data = r.json
    assert data["python"]["version"].startswith(version)
    assert data["python"]["executable"] == str(venv.python)
    assert data["python"]["selected_by"] == "--python"
    assert [f["id"] for f in data["findings"] if f["status"] == "error"] == []
    plat = r.finding("python.platform")["details"]
    assert plat["python"].startswith(version) and plat["executable"] == str(venv.python)
    assert r.finding("packages.python-requires")["status"] == "ok"


SAMBERT_38 = EnvSpec("sambert-38", python="3.8", steps=(
    ("install", "numpy==1.23.5", "scipy==1.10.1", "ttsfrd==0.1.0", "kantts==0.1.0"),))


@pytest.mark.slow
def test_a_sambert_era_python_3_8_target_gets_the_placeholder_verdicts(cli, make_env):
    venv = make_env(SAMBERT_38)
    r = cli("check", "--json", "--python", str(venv.python), "--recipe", "sambert-hifigan-16k")
    data = r.json
    assert r.returncode == 1, r
    assert data["python"]["version"].startswith("3.8")
    assert [f["id"] for f in data["findings"] if f["status"] == "error"] == [], r
    origin = r.finding("ttsfrd.origin")
    assert origin["status"] == "fail" and "placeholder" in origin["summary"]
    assert origin["fix"]["commands"][0].startswith(f"{venv.python} -m pip uninstall -y ttsfrd")
    # the interpreter is right for the stack: the wheel to use is the cp38 one
    plat = r.finding("ttsfrd.platform")
    assert plat["details"]["python"].startswith("3.8"), plat
    assert r.finding("numpy.abi")["status"] in ("ok", "skip")
    assert r.finding("scipy.removed-names")["status"] == "ok"


def test_a_python_that_is_not_python_is_a_usage_error(cli, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho garbage\n")
    fake.chmod(0o755)
    r = cli("check", "--python", str(fake))
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr and "not a Python interpreter" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_worker_that_cannot_start_is_the_doctors_failure_exit_3(cli, tmp_path):
    """A probe plugin that ends the worker's process while it loads: the worker never says
    ready. That is reported once, as the doctor's failure (exit 3) naming the interpreter,
    its version and the reason, not as an error finding about the diagnosed code."""
    (tmp_path / "exits_on_import.py").write_text(
        "import os, sys\nif 'tts_doctor.worker' in sys.modules:\n    os._exit(7)\n")
    env = {"PYTHONPATH": str(tmp_path), "TTS_DOCTOR_PLUGINS": "exits_on_import"}
    r = cli("check", "--json", "--only", "numpy", env=env)
    assert r.returncode == 3, r
    line = r.stderr.strip()
    assert "worker could not start" in line and sys.executable in line
    assert ".".join(map(str, sys.version_info[:2])) in line and "code 7" in line
    assert "probed code" not in line and r.stdout == ""


def _doctor_venv(make_env, name: str, python: str = "3.11"):
    return make_env(EnvSpec(name, python=python, with_pip=True))


def _install_doctor(venv, *extra: str) -> None:
    """The doctor from this checkout, as a user installs it (a wheel, its real requirements)."""
    venv.pip("install", str(REPO), *extra)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.8", "3.13"])
def test_the_doctor_installs_and_runs_on(make_env, version, tmp_path):
    venv = _doctor_venv(make_env, f"doctor-on-{version}", version)
    try:
        _install_doctor(venv)
        exe = venv.path / "bin" / "tts-doctor"
        r = subprocess.run([str(exe), "check", "--json"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=300)
        assert r.returncode in (0, 1), r.stderr
        data = json.loads(r.stdout)
        assert data["python"]["version"].startswith(version)
        assert [f["id"] for f in data["findings"] if f["status"] == "error"] == []
        assert subprocess.run([str(exe), "--help"], capture_output=True).returncode == 0
    finally:
        venv.pip("uninstall", "-y", "tts-doctor", check=False)


@pytest.mark.slow
def test_a_pipx_style_doctor_diagnoses_the_activated_venv_not_its_own(make_env, tmp_path):
    doctor = _doctor_venv(make_env, "doctor-pipx")
    user = make_env(EnvSpec("user-venv-numpy", steps=(("install", "numpy==2.2.6"),)))
    try:
        _install_doctor(doctor)
        env = dict(os.environ, VIRTUAL_ENV=str(user.path),
                   PATH=f"{user.path / 'bin'}{os.pathsep}{os.environ['PATH']}")
        exe = doctor.path / "bin" / "tts-doctor"
        r = subprocess.run([str(exe), "check", "--json", "--only", "python,numpy"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert r.returncode in (0, 1), r.stderr
        data = json.loads(r.stdout)
        assert data["python"]["prefix"] == str(user.path)
        assert data["python"]["selected_by"] == "the activated venv ($VIRTUAL_ENV)"
        assert data["environment"]["distributions"]["numpy"] == "2.2.6"
        text = subprocess.run([str(exe), "check", "--only", "python"], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300).stdout
        first = text.splitlines()[0]
        assert f"diagnosing {user.python}" in first and "$VIRTUAL_ENV" in first
        # fix plans for the same environment
        r = subprocess.run([str(exe), "fix", "--dry-run", "--json", "--only", "python"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["python"] == str(user.python)
        # the doctor's own venv, activated, is diagnosed as itself
        own = dict(os.environ, VIRTUAL_ENV=str(doctor.path))
        r = subprocess.run([str(exe), "check", "--json", "--only", "python"],
                           capture_output=True, text=True, env=own, cwd=tmp_path, timeout=300)
        own_py = json.loads(r.stdout)["python"]
        assert own_py["selected_by"] == "the interpreter tts-doctor runs on"
        assert own_py["prefix"] != str(user.path)
    finally:
        doctor.pip("uninstall", "-y", "tts-doctor", check=False)


@pytest.mark.slow
def test_pypi_packages_named_doctor_and_shims_beside_it_change_nothing(make_env, tmp_path):
    venv = _doctor_venv(make_env, "doctor-generic-names")
    try:
        _install_doctor(venv)
        # (--no-deps: what matters is the import names they occupy; `doctor` pins an old
        # PyYAML that does not build on this Python)
        venv.pip("install", "--no-deps", "doctor", "shims")
        assert (venv.site / "doctor").is_dir() and (venv.site / "shims").is_dir()
        names = {line.split("==")[0].split(" @ ")[0].lower() for line in venv.freeze()}
        assert {"doctor", "shims", "tts-doctor"} <= names
        exe = venv.path / "bin" / "tts-doctor"
        r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        r = subprocess.run([str(exe), "check", "--json", "--only", "python,packages"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert r.returncode in (0, 1), r.stderr
        assert json.loads(r.stdout)["findings"]
    finally:
        venv.pip("uninstall", "-y", "tts-doctor", "doctor", "shims", check=False)


def test_the_library_surface_is_small_and_lazy():
    code = ("import sys, tts_doctor; assert 'tts_doctor.api' not in sys.modules; "
            "print(sorted(tts_doctor.__all__)); r = tts_doctor.check(only=('python',)); "
            "print(r.findings[0].id, r.interpreter['selected_by']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == str(sorted(["FixPlan", "Report", "Selection", "SmokeRun", "check",
                                   "fix_plan", "judge_facts", "load_recipe", "run_smoke",
                                   "select_interpreter"]))
    assert lines[1] == "python.platform the interpreter tts-doctor runs on"
    assert lines[2] == "False"


@pytest.mark.parametrize("spec, version", [
    (">=3.8,<3.9", "3.8.18"), (">=3.8,<3.9", "3.10.0"), ("<3.9", "3.8.0"), ("~=3.8", "3.13.1"),
    ("~=3.8.1", "3.9.0"), ("==3.10.*", "3.10.4"), ("!=3.9.*", "3.9.1"), (">3.7", "3.7.0"),
    ("==3.8", "3.8.0"), (">=3.9, !=3.11.*", "3.12.0"),
])
def test_the_stdlib_range_check_of_the_worker_agrees_with_packaging(spec, version):
    """Inside a target without packaging, dists falls back to release numbers; for the Python
    ranges recipes and Requires-Python state, both give the same answer."""
    from packaging.specifiers import SpecifierSet
    from tts_doctor.dists import _release_spec_contains

    assert _release_spec_contains(spec, version) == SpecifierSet(spec).contains(version)
