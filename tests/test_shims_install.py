"""`tts-doctor shims install|uninstall|status` on real environments (SciPy 1.17 and 1.12).

The environments do not have the doctor installed: the .pth loads the shims from this
checkout without adding anything to their sys.path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tts_doctor import shim_install as si

from tests.harness.envs_shims import (
    SHIMS_SCIPY_MODERN,
    SHIMS_SCIPY_OLD,
    SHIMS_SCRATCH,
    exclusive,
    snapshot,
)

pytestmark = pytest.mark.venv
REPO = Path(__file__).resolve().parents[1]

USER_MODULE = """
import numpy as np
import scipy.integrate
import scipy.signal
from scipy.signal import kaiser

WINDOW = scipy.signal.hann(1024)
KAISER = kaiser(64, 8.6)
AREA = scipy.integrate.trapz([1.0, 2.0, 3.0])
Y = scipy.signal.resample(np.sin(np.linspace(0, 100, 1001)), 500)
print("user module ok", WINDOW.shape, KAISER.shape, AREA, Y.shape,
      getattr(scipy.signal.resample, "__tts_doctor_shim__", None))
"""


def run_py(venv, *args: str, env: dict | None = None, cwd: Path | None = None):
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TTS_DOCTOR_SHIMS")}
    full.update(env or {})
    return subprocess.run([str(venv.python), *args], capture_output=True, text=True,
                          env=full, cwd=cwd or venv.path, timeout=300)


@pytest.fixture
def modern(make_env, cli):
    with exclusive(make_env(SHIMS_SCIPY_MODERN)) as venv:
        cli("shims", "uninstall", "--python", str(venv.python))  # a clean start
        yield venv
        cli("shims", "uninstall", "--python", str(venv.python))


@pytest.fixture
def scratch(make_env, cli):
    with exclusive(make_env(SHIMS_SCRATCH)) as venv:
        cli("shims", "uninstall", "--python", str(venv.python))
        yield venv
        os.chmod(venv.site, 0o755)
        cli("shims", "uninstall", "--python", str(venv.python))


def test_user_code_fails_before_works_after_install_and_fails_after_uninstall(
        modern, cli, tmp_path):
    user = tmp_path / "user_module.py"
    user.write_text(USER_MODULE)
    site = modern.site
    before = snapshot(site)

    r = run_py(modern, "-B", str(user), cwd=tmp_path)
    assert r.returncode == 1 and "cannot import name 'kaiser'" in r.stderr

    r = cli("shims", "install", "--python", str(modern.python))
    assert r.returncode == 0, r
    assert "installed shims resample, scipy_names" in r.stdout
    assert sorted(set(snapshot(site)) - set(before)) == [si.PTH_NAME]

    r = run_py(modern, "-B", "-W", "always::DeprecationWarning", str(user), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "user module ok (1024,) (64,) 4.0 (500,) resample" in r.stdout
    assert "scipy.signal.hann was removed from SciPy" in r.stderr
    assert "scipy.signal.windows.kaiser" in r.stderr
    assert "scipy.integrate.trapezoid" in r.stderr

    r = cli("shims", "uninstall", "--python", str(modern.python))
    assert r.returncode == 0 and "removed" in r.stdout, r
    r = run_py(modern, "-B", str(user), cwd=tmp_path)
    assert r.returncode == 1 and "cannot import name 'kaiser'" in r.stderr
    assert snapshot(site) == before


def test_start_up_imports_nothing_and_scipy_import_adds_no_path(modern, cli):
    probe = ("import json, sys; mods = sorted(sys.modules); path = list(sys.path); "
             "finders = [type(f).__name__ for f in sys.meta_path]; "
             "import scipy.signal; "
             "print(json.dumps([mods, path, finders, sys.path == path, "
             "'_tts_doctor_shims' in sys.modules, 'shims' in sys.modules, "
             "hasattr(scipy.signal, 'hann')]))")
    without = json.loads(run_py(modern, "-c", probe).stdout)
    assert cli("shims", "install", "--python", str(modern.python)).returncode == 0
    with_pth = json.loads(run_py(modern, "-c", probe).stdout)
    assert with_pth[0] == without[0]  # no module imported at start-up
    assert with_pth[1] == without[1]
    assert with_pth[2][0] == "LazyShimFinder" and "LazyShimFinder" not in without[2]
    assert with_pth[3:] == [True, True, False, True]
    assert without[6] is False


def test_environment_variable_disables_for_one_process(modern, cli, tmp_path):
    (tmp_path / "u.py").write_text(USER_MODULE)
    assert cli("shims", "install", "--python", str(modern.python)).returncode == 0
    r = run_py(modern, "-B", "u.py", env={"TTS_DOCTOR_SHIMS": "0"}, cwd=tmp_path)
    assert r.returncode == 1 and "kaiser" in r.stderr
    assert run_py(modern, "-B", "u.py", cwd=tmp_path).returncode == 0


def test_a_shims_package_of_the_users_own_is_not_shadowed(modern, cli, tmp_path):
    own = tmp_path / "shims"
    own.mkdir()
    (own / "__init__.py").write_text("MINE = True\n")
    assert cli("shims", "install", "--python", str(modern.python)).returncode == 0
    code = ("import scipy.signal, shims, sys; "
            "print(getattr(shims, 'MINE', False), hasattr(scipy.signal, 'hann'), "
            "sys.modules['_tts_doctor_shims'].__file__)")
    r = run_py(modern, "-B", "-c", code, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:2] == ["True", "True"]
    assert r.stdout.split()[2] == str(REPO / "shims" / "__init__.py")


def test_status_and_probe_on_modern_scipy(modern, cli):
    r = cli("shims", "status", "--python", str(modern.python), "--json")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    assert data["installed"] is False and data["per_shim"]["scipy_names"]["problem"] is True
    assert cli("check", "--json", "--only", "shims", "--python",
               str(modern.python)).finding("shims.installed")["status"] == "ok"

    assert cli("shims", "install", "scipy_names", "--python", str(modern.python)).returncode == 0
    data = json.loads(cli("shims", "status", "--python", str(modern.python), "--json").stdout)
    assert data["installed"] and data["shims"] == ["scipy_names"] and data["root_exists"]
    assert data["fresh_process"]["hooks"]["shims"] == ["scipy_names"]
    per = data["per_shim"]
    assert per["scipy_names"] == {"installed": True, "problem": True, "removable": False,
                                  "why": per["scipy_names"]["why"]}
    assert "hann" in per["scipy_names"]["why"] and per["resample"]["installed"] is False
    text = cli("shims", "status", "--python", str(modern.python)).stdout
    assert "installed: scipy_names" in text and "problem present" in text

    f = cli("check", "--json", "--only", "shims", "--python",
            str(modern.python)).finding("shims.installed")
    assert f["status"] == "ok" and "active" in f["summary"]
    assert "hann" in f["details"]["patched"]["scipy.signal"]
    assert f["details"]["patched"]["scipy.integrate"] == ["cumtrapz", "simps", "trapz"]

    # adding a shim keeps the other one; removing one keeps the rest
    assert cli("shims", "install", "resample", "--python", str(modern.python)).returncode == 0
    assert si.parse((modern.site / si.PTH_NAME).read_text())["shims"] == ["resample",
                                                                          "scipy_names"]
    r = cli("shims", "uninstall", "resample", "--python", str(modern.python))
    assert "left shims scipy_names" in r.stdout
    assert si.parse((modern.site / si.PTH_NAME).read_text())["shims"] == ["scipy_names"]


@pytest.fixture
def old_scipy(make_env, cli):
    with exclusive(make_env(SHIMS_SCIPY_OLD)) as venv:
        cli("shims", "uninstall", "--python", str(venv.python))
        yield venv
        cli("shims", "uninstall", "--python", str(venv.python))


def test_shim_for_a_problem_the_environment_no_longer_has_is_removable(old_scipy, cli):
    py = str(old_scipy.python)  # SciPy 1.12: every removed name is still in scipy.signal
    assert cli("shims", "install", "--python", py).returncode == 0
    data = json.loads(cli("shims", "status", "--python", py, "--json").stdout)
    assert data["per_shim"]["scipy_names"]["removable"] is True
    assert data["per_shim"]["resample"]["removable"] is False
    f = cli("check", "--json", "--only", "shims", "--python", py).finding("shims.installed")
    assert f["status"] == "warn" and "removable" in f["summary"]
    assert f["fix"]["commands"] == [f"tts-doctor shims uninstall scipy_names --python {py}"]
    r = run_py(old_scipy, "-c", "import scipy.signal as s; print(s.hann(8).shape, "
               "getattr(s.hann, '__tts_doctor_shim__', None))")
    assert r.stdout.split() == ["(8,)", "None"]  # SciPy's own, kept


def test_read_only_site_packages_is_a_clear_error_and_writes_nothing(scratch, cli):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to take write permission away from root")
    site = scratch.site
    before = snapshot(site)
    os.chmod(site, 0o555)
    try:
        cmd = [] if os.geteuid() != 0 else [
            "setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
        proc = subprocess.run([*cmd, sys.executable, "-m", "tts_doctor", "shims", "install",
                               "--python", str(scratch.python)], capture_output=True,
                              text=True, cwd=REPO, timeout=120)
    finally:
        os.chmod(site, 0o755)
    assert proc.returncode == 1, proc
    assert f"{site} is not writable (read-only site-packages); nothing was written" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(site) == before


def test_concurrent_installs_leave_one_whole_file(scratch):
    py = str(scratch.python)
    procs = [subprocess.Popen([sys.executable, "-m", "tts_doctor", "shims", "install", *names,
                               "--python", py], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for names in (["scipy_names"], ["resample"], ["scipy_names"], ["resample"], [])]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    pths = sorted(p.name for p in scratch.site.iterdir() if "tts_doctor" in p.name)
    assert pths == [si.PTH_NAME]
    text = (scratch.site / si.PTH_NAME).read_text()
    assert si.parse(text)["shims"] == ["resample", "scipy_names"]
    assert text == si.render(["resample", "scipy_names"], scratch.site / si.PTH_NAME)


# os.replace slowed down so that the test can kill the install between writing the
# temporary file and renaming it (or right after renaming it).
KILLABLE = """
import os, sys, time
marker, when = sys.argv[1], sys.argv[2]
real = os.replace
def replace(a, b):
    if when == "before":
        open(marker, "w").close(); time.sleep(60)
    real(a, b)
    if when == "after":
        open(marker, "w").close(); time.sleep(60)
os.replace = replace
from tts_doctor.cli import main
main(sys.argv[3:])
"""


def _killed_install(scratch, tmp_path, when: str, *names: str) -> None:
    marker = tmp_path / f"marker-{when}"
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(marker), when, "shims",
                             "install", *names, "--python", str(scratch.python)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_kill_9_during_install_leaves_the_old_state_or_the_new(scratch, cli, tmp_path):
    site, pth = scratch.site, scratch.site / si.PTH_NAME
    hann = ["-c", "import scipy.signal as s; print(hasattr(s, 'hann'), "
                  "getattr(s.resample, '__tts_doctor_shim__', None))"]
    # killed before the rename: nothing installed, as before
    _killed_install(scratch, tmp_path, "before")
    assert not pth.exists()
    assert len(list(site.glob(f".{si.PTH_NAME}.*.tmp"))) == 1  # ignored by site
    assert run_py(scratch, *hann).stdout.split() == ["False", "None"]
    # the next install cleans up and installs
    r = cli("shims", "install", "scipy_names", "--python", str(scratch.python))
    assert "removed a temporary file left by an interrupted install" in r.stdout
    assert list(site.glob(f".{si.PTH_NAME}.*.tmp")) == []
    old_text = pth.read_text()
    # killed before the rename while adding a shim: the old file, byte for byte
    _killed_install(scratch, tmp_path, "before", "resample")
    assert pth.read_text() == old_text
    assert run_py(scratch, *hann).stdout.split() == ["True", "None"]
    # killed right after the rename: the new file, whole
    _killed_install(scratch, tmp_path, "after", "resample")
    assert si.parse(pth.read_text())["shims"] == ["resample", "scipy_names"]
    assert run_py(scratch, *hann).stdout.split() == ["True", "resample"]
    assert cli("shims", "uninstall", "--python", str(scratch.python)).returncode == 0
    assert not pth.exists() and list(site.glob(f".{si.PTH_NAME}.*.tmp")) == []


def test_shims_whose_code_is_gone_warn_on_import_and_fail_the_probe(scratch, cli, tmp_path):
    copy = tmp_path / "gone" / "shims"
    shutil.copytree(REPO / "shims", copy)
    pth = scratch.site / si.PTH_NAME
    pth.write_text(si.render(["scipy_names"], pth, root=copy))
    ok = run_py(scratch, "-c", "import scipy.signal as s; print(hasattr(s, 'hann'))")
    assert ok.stdout.strip() == "True", ok.stderr
    shutil.rmtree(copy.parent)
    r = run_py(scratch, "-c", "import scipy.signal as s; print(hasattr(s, 'hann'))")
    assert r.returncode == 0 and r.stdout.strip() == "False"
    assert "RuntimeWarning: tts-doctor shims: cannot load" in r.stderr
    assert f"tts-doctor shims uninstall --python {scratch.python}" in r.stderr
    f = cli("check", "--json", "--only", "shims", "--python",
            str(scratch.python)).finding("shims.installed")
    assert f["status"] == "fail" and "code is gone" in f["summary"]
    assert f["fix"]["commands"][0].startswith("tts-doctor shims uninstall --python")
    assert cli("shims", "status", "--python", str(scratch.python)).returncode == 1


def test_a_foreign_file_of_that_name_is_never_touched(scratch, cli):
    pth = scratch.site / si.PTH_NAME
    pth.write_text("/some/path/of/somebody/else\n")
    for args in (("install",), ("uninstall",)):
        r = cli("shims", *args, "--python", str(scratch.python))
        assert r.returncode == 1 and "not written by tts-doctor" in r.stderr, r
    assert pth.read_text() == "/some/path/of/somebody/else\n"
    assert cli("check", "--json", "--only", "shims", "--python",
               str(scratch.python)).finding("shims.installed")["status"] == "warn"
    pth.unlink()


@pytest.mark.parametrize("args, needle", [
    (["shims", "install", "scipy_nmaes"], "unknown shim(s): scipy_nmaes"),
    (["shims", "install", "mel"], "from tts_doctor.shims.mel import MelSpectrogram"),
    (["shims", "uninstall", "nope"], "unknown shim(s): nope"),
    (["shims", "install", "--python", "/no/such/python"], "does not exist"),
    (["shims", "status", "--python", str(REPO / "README.md")], "cannot run"),
    (["shims", "status", "--python", "/bin/false"], "not a working Python interpreter"),
    (["shims", "frobnicate"], "No such command"),
])
def test_usage_errors_exit_2_without_traceback(cli, args, needle):
    r = cli(*args)
    assert r.returncode == 2, r
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_dry_run_shows_the_file_and_writes_nothing(scratch, cli):
    before = snapshot(scratch.site)
    r = cli("shims", "install", "--dry-run", "--python", str(scratch.python))
    assert r.returncode == 0 and "would write" in r.stdout and "import sys; exec(" in r.stdout
    assert snapshot(scratch.site) == before
