"""`tts-doctor shims install|uninstall|status` on real environments (SciPy 1.17 and 1.12).

The environments do not have the doctor installed: install copies the shims' code into
them (a `_tts_doctor_shims-<hash>` folder beside the .pth), loaded from there without adding
anything to their sys.path.
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


def copy_of(site: Path) -> Path:
    """The folder of the installed copy of the shims' code (exactly one)."""
    (folder,) = [p for p in site.iterdir() if p.name.startswith(si.PAYLOAD_PREFIX)]
    return folder


def ours(site: Path) -> list[str]:
    """The entries of site-packages that tts-doctor wrote: the .pth and the copy."""
    return sorted(p.name for p in site.iterdir() if "tts_doctor_shims" in p.name)


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
    assert "installed shims scipy_names" in r.stdout  # the default: resample is opt-in
    copy = copy_of(site).name
    assert sorted(set(snapshot(site)) - set(before)) == [
        copy, *(f"{copy}/{n}" for n in sorted(si.payload())), si.PTH_NAME]
    meta = si.parse((site / si.PTH_NAME).read_text())
    assert meta["files"] == {f"{copy}/{n}": si._sha(d) for n, d in si.payload().items()}

    r = run_py(modern, "-B", "-W", "always::DeprecationWarning", str(user), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "user module ok (1024,) (64,) 4.0 (500,) None" in r.stdout
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
    assert r.stdout.split()[2] == str(copy_of(modern.site) / "__init__.py")


def test_status_and_probe_on_modern_scipy(modern, cli):
    r = cli("shims", "status", "--python", str(modern.python), "--json")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    assert data["installed"] is False and data["per_shim"]["scipy_names"]["problem"] is True
    assert cli("check", "--json", "--only", "shims", "--python",
               str(modern.python)).finding("shims.installed")["status"] == "ok"

    assert cli("shims", "install", "scipy_names", "--python", str(modern.python)).returncode == 0
    data = json.loads(cli("shims", "status", "--python", str(modern.python), "--json").stdout)
    assert data["installed"] and data["shims"] == ["scipy_names"]
    assert data["self_contained"] and data["damaged"] == [] and not data["outdated"]
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
    assert cli("shims", "install", "scipy_names", "resample", "--python", py).returncode == 0
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
    assert ours(scratch.site) == [copy_of(scratch.site).name, si.PTH_NAME]
    text = (scratch.site / si.PTH_NAME).read_text()
    assert si.parse(text)["shims"] == ["resample", "scipy_names"]
    assert text == si.render(["resample", "scipy_names"], scratch.site / si.PTH_NAME)


# os.replace slowed down so that the test can kill the install right before or right after
# its Nth rename (the copy's folder is renamed into place first, then the .pth).
KILLABLE = """
import os, sys, time
marker, when, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
real = os.replace
calls = []
def replace(a, b):
    calls.append(b)
    if when == "before" and len(calls) == nth:
        open(marker, "w").close(); time.sleep(60)
    real(a, b)
    if when == "after" and len(calls) == nth:
        open(marker, "w").close(); time.sleep(60)
os.replace = replace
from tts_doctor.cli import main
main(sys.argv[4:])
"""


def _killed(scratch, tmp_path, when: str, nth: int, *args: str) -> None:
    marker = tmp_path / f"marker-{when}-{nth}"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(marker), when, str(nth),
                             "shims", *args, "--python", str(scratch.python)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


HANN = ["-c", "import scipy.signal as s; print(hasattr(s, 'hann'), "
              "getattr(s.resample, '__tts_doctor_shim__', None))"]


def _without_leftovers(snap: dict[str, str]) -> dict[str, str]:
    """A snapshot minus what a killed writer may leave (inert; the next run removes it)."""
    return {k: v for k, v in snap.items() if not k.startswith(".")
            and not (k.startswith(si.PAYLOAD_PREFIX) and "__pycache__" in k)}


def test_kill_9_during_install_leaves_the_old_state_or_the_new(scratch, cli, tmp_path):
    site, pth = scratch.site, scratch.site / si.PTH_NAME
    empty = snapshot(site)
    # killed before the copy's folder is renamed into place: nothing installed
    _killed(scratch, tmp_path, "before", 1, "install")
    assert not pth.exists() and _without_leftovers(snapshot(site)) == empty
    assert len(list(site.glob(f".{si.PAYLOAD_PREFIX}*.tmp"))) == 1  # ignored by site/import
    assert run_py(scratch, *HANN).stdout.split() == ["False", "None"]
    # killed after the copy is in place but before the .pth: an inert copy, nothing active
    _killed(scratch, tmp_path, "before", 2, "install")
    assert not pth.exists() and run_py(scratch, *HANN).stdout.split() == ["False", "None"]
    # the next run cleans up and installs
    r = cli("shims", "install", "scipy_names", "--python", str(scratch.python))
    assert "removed a leftover of an interrupted install" in r.stdout, r
    assert [p.name for p in site.glob(".*tts_doctor*")] == []
    installed = snapshot(site)
    # killed before the .pth's rename while adding a shim: the old state, byte for byte
    _killed(scratch, tmp_path, "before", 1, "install", "resample")
    assert _without_leftovers(snapshot(site)) == _without_leftovers(installed)
    assert run_py(scratch, *HANN).stdout.split() == ["True", "None"]
    # killed right after the rename: the new file, whole
    _killed(scratch, tmp_path, "after", 1, "install", "resample")
    assert si.parse(pth.read_text())["shims"] == ["resample", "scipy_names"]
    assert run_py(scratch, *HANN).stdout.split() == ["True", "resample"]
    # killed during uninstall, after the .pth went: off, the copy inert; removed next time
    _killed(scratch, tmp_path, "after", 1, "uninstall", "resample")
    assert si.parse(pth.read_text())["shims"] == ["scipy_names"]
    assert cli("shims", "uninstall", "--python", str(scratch.python)).returncode == 0
    assert snapshot(site) == empty


def test_damaged_or_missing_shim_code_degrades_silently_and_fails_the_probe(scratch, cli):
    site = scratch.site
    empty = snapshot(site)
    assert cli("shims", "install", "--python", str(scratch.python)).returncode == 0
    copy = copy_of(site)
    strict = ["-W", "error", "-c", "import scipy.signal as s; print(hasattr(s, 'hann'))"]
    r = run_py(scratch, *strict)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "True", "")

    # damaged: code that is not what was installed never runs (it would exit 7)
    (copy / "scipy_names.py").write_text("raise SystemExit(7)\n")
    r = run_py(scratch, *strict)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "False", ""), r
    f = cli("check", "--json", "--only", "shims", "--python",
            str(scratch.python)).finding("shims.installed")
    assert f["status"] == "fail" and "missing or damaged" in f["summary"], f
    assert "scipy_names.py is not the file that was installed" in f["summary"]
    assert f["fix"]["commands"][0].startswith("tts-doctor shims install --python")
    assert f["fix"]["commands"][1].startswith("tts-doctor shims uninstall --python")
    status = cli("shims", "status", "--python", str(scratch.python))
    assert status.returncode == 1 and "DAMAGED" in status.stdout, status
    assert "error in a fresh process: cannot load the installed shims" in status.stdout

    # missing: the same, silently
    (copy / "_hooks.py").unlink()
    r = run_py(scratch, *strict)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "False", ""), r
    f = cli("check", "--json", "--only", "shims", "--python",
            str(scratch.python)).finding("shims.installed")
    assert f["status"] == "fail" and "_hooks.py is missing" in f["summary"], f

    # the fix the probe names repairs it
    assert cli("shims", "install", "--python", str(scratch.python)).returncode == 0
    assert run_py(scratch, *strict).stdout.strip() == "True"
    assert cli("check", "--json", "--only", "shims", "--python",
               str(scratch.python)).finding("shims.installed")["status"] == "ok"
    assert cli("shims", "uninstall", "--python", str(scratch.python)).returncode == 0
    assert snapshot(site) == empty


def test_shims_that_fail_to_patch_do_not_break_import_under_w_error(scratch, cli, tmp_path):
    # scipy_names' patch raises inside the import hook (a stand-in module whose patch()
    # fails, planted by sitecustomize): scipy.signal must still import, unpatched, with no
    # warning, and the failure is recorded where the probe reads it
    site = scratch.site
    assert cli("shims", "install", "--python", str(scratch.python)).returncode == 0
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "sitecustomize.py").write_text(
        "import sys, types\n"
        "m = types.ModuleType('_tts_doctor_shims.scipy_names')\n"
        "def patch(module):\n"
        "    raise RuntimeError('patch failed (planted by the test)')\n"
        "m.patch = patch\n"
        "sys.modules[m.__name__] = m\n")
    code = ("import scipy.signal as s, sys; f = [m for m in sys.meta_path if hasattr(m, "
            "'__tts_doctor_shims_finder__')][0]; print(hasattr(s, 'hann'), f.errors)")
    r = run_py(scratch, "-W", "error", "-c", code, env={"PYTHONPATH": str(evil)})
    assert r.returncode == 0 and r.stderr == "", r
    assert r.stdout.startswith("False ["), r.stdout
    assert "'scipy.signal: RuntimeError: patch failed (planted by the test)'" in r.stdout
    assert cli("shims", "uninstall", "--python", str(scratch.python)).returncode == 0
    assert ours(site) == []


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
    (["shims", "status", "--python", str(REPO / "README.md")], "is not executable"),
    (["shims", "status", "--python", "/bin/false"], "not a working Python interpreter"),
    (["shims", "install", "--python", "/bin/echo"], "is not a Python interpreter"),
    (["shims", "install", "--python", "{garbage}"], "is not a Python interpreter"),
    (["shims", "install", "--python", "{binary}"], "is not a Python interpreter"),
    (["shims", "install", "--python", "{shape}"], "is not a Python interpreter"),
    (["shims", "install", "--python", "{old}"], "is Python 3.6; the shims need 3.7 or newer"),
    (["shims", "uninstall", "--python", "{garbage}"], "is not a Python interpreter"),
    (["shims", "status", "--python", "{old}"], "is Python 3.6"),
    (["shims", "install", "--python", "{noexec}"], "is not executable"),
    (["shims", "frobnicate"], "No such command"),
])
def test_usage_errors_exit_2_without_traceback(cli, args, needle, tmp_path):
    scripts = {
        "garbage": "#!/bin/sh\necho 'hello, I am not python {'\n",
        "binary": "#!/bin/sh\nprintf '\\377\\376\\000garbage'\n",
        "shape": "#!/bin/sh\necho '{\"version\": \"3.11\", \"purelib\": 5}'\n",
        "old": "#!/bin/sh\necho '{\"purelib\": \"/tmp\", \"version\": [3, 6]}'\n",
        "noexec": "#!/bin/sh\necho hi\n",
    }
    for name, text in scripts.items():
        path = tmp_path / name
        path.write_text(text)
        path.chmod(0o644 if name == "noexec" else 0o755)
    args = [a.format(**{n: str(tmp_path / n) for n in scripts}) if a.startswith("{") else a
            for a in args]
    r = cli(*args)
    assert r.returncode == 2, r
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_dry_run_shows_the_file_and_writes_nothing(scratch, cli):
    before = snapshot(scratch.site)
    r = cli("shims", "install", "--dry-run", "--python", str(scratch.python))
    assert r.returncode == 0 and "would write" in r.stdout and "import sys; exec(" in r.stdout
    assert snapshot(scratch.site) == before


def test_a_real_python_too_old_is_a_usage_error(cli):
    from tests.harness.venvs import EnvUnavailable, find_python

    try:
        old = find_python("3.6")
    except EnvUnavailable as exc:
        pytest.skip(str(exc))
    r = cli("shims", "install", "--python", str(old))
    assert r.returncode == 2 and "is Python 3.6; the shims need 3.7 or newer" in r.stderr, r
    assert "Traceback" not in r.stderr


def test_a_periodic_sine_resamples_exactly_as_scipy_with_the_default_shims(modern, cli):
    # issue 12: installed, the old default changed this result by 3.2e-2
    code = ("import numpy as np, scipy.signal as s; n = np.arange(100); "
            "x = np.sin(2 * np.pi * 3 * n / 100); y = s.resample(x, 250); "
            "ref = np.sin(2 * np.pi * 3 * np.arange(250) / 250); "
            "print(float(abs(y - ref).max()), getattr(s.resample, '__tts_doctor_shim__', None), "
            "hasattr(s, 'hann'))")
    plain = run_py(modern, "-c", code).stdout.split()
    assert cli("shims", "install", "--python", str(modern.python)).returncode == 0
    shimmed = run_py(modern, "-c", code).stdout.split()
    assert float(plain[0]) < 1e-12 and plain[1:] == ["None", "False"]
    assert shimmed == [plain[0], "None", "True"]  # the same number, byte for byte
    # the opt-in does change it (so the comparison above can fail)
    assert cli("shims", "install", "resample", "--python", str(modern.python)).returncode == 0
    opted = run_py(modern, "-c", code).stdout.split()
    assert opted[1:] == ["resample", "True"] and float(opted[0]) > 1e-3


def test_install_and_uninstall_of_any_sets_leave_site_packages_byte_for_byte(modern, cli):
    site, py = modern.site, str(modern.python)
    before = snapshot(site)
    warm = ["-c", "import scipy.signal, scipy.integrate, scipy.linalg, scipy.stats"]
    sequences = [
        (["install"], ["uninstall"]),
        (["install", "resample"], ["uninstall"]),
        (["install", "resample"], ["install"], ["uninstall", "resample"], ["uninstall"]),
        (["install", "scipy_names", "resample"], ["uninstall", "scipy_names"],
         ["uninstall", "resample"]),
    ]
    for steps in sequences:
        for step in steps:
            r = cli("shims", *step, "--python", py)
            assert r.returncode == 0, (steps, r)
            # Python writes bytecode into the copy on import: uninstall removes it too
            assert run_py(modern, *warm).returncode == 0
        assert snapshot(site) == before, steps
