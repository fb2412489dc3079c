"""Legacy editable installs (`setup.py develop`, as pip did before PEP 660 and as old
research repos' READMEs still say): site-packages holds NAME.egg-link and an
easy-install.pth line naming the project folder, and no RECORD lists its code. The usage scan
must still see that code, count it as reached, and name its file and line (issue 10, item 2).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness import envs, venvs
from tests.test_reach import HANN_APP, _layered


@pytest.mark.venv
def test_a_setup_py_develop_project_is_scanned_and_reached(cli, make_env, tmp_path):
    python = _layered(make_env(envs.SCIPY_MODERN), tmp_path / "venv")
    # the last setuptools whose `develop` writes .egg-link + easy-install.pth on Python 3.11
    venvs.pip(python, "install", "setuptools==63.4.3")
    src = tmp_path / "legacyproj"
    (src / "legacyproj").mkdir(parents=True)
    (src / "legacyproj" / "__init__.py").write_text("")
    (src / "legacyproj" / "frontend.py").write_text(HANN_APP)
    (src / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='legacyproj', version='0.3.1', packages=['legacyproj'])\n")
    proc = subprocess.run([str(python), "setup.py", "-q", "develop", "--no-deps"], cwd=src,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise venvs.EnvUnavailable(f"setup.py develop failed: {proc.stderr[-2000:]}")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    link = site / "legacyproj.egg-link"
    assert link.is_file() and str(src) in link.read_text()  # really the legacy layout
    assert not list(site.glob("legacyproj*.dist-info"))
    r = cli("check", "--json", "--python", str(python), "--only", "scipy.removed-names",
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path)
    assert r.returncode == 1, r
    f = r.finding("scipy.removed-names")
    assert f["status"] == "fail", f
    line = f"{src / 'legacyproj' / 'frontend.py'}:6"
    assert f"scipy.signal.hann at {line}" in f["summary"], f["summary"]
    users = {u["where"]: u for u in f["details"]["users"]}
    assert users[line]["distribution"] == "legacyproj"
    assert f["details"]["reach"]["known"] is True
