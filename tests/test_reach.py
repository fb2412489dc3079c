"""Reachability and the one scan pass (doctor/usage.py, doctor/reach.py) on real code: the
parts of the index (finder mappings, import extraction, unparseable files), and the CLI on
real environments: modules no distribution owns, the application folder, editable installs.

The environments with modules of their own are thin venvs layered on a cached harness
environment through a `.pth` line (every distribution of the base is on their sys.path, as
in the base), so that the shared environment itself is never changed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from tts_doctor import scan, usage

from tests.harness import envs, venvs
from tests.harness.apps import install_editable, write_app


def _layered(base: venvs.Venv, folder: Path) -> Path:
    """A venv of the base's Python whose site-packages adds the base's by a .pth line."""
    subprocess.run([str(venvs.find_python(base.spec.python)), "-m", "venv", "--without-pip",
                    str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "base.pth").write_text(f"{base.site}\n")
    return python


# --- the parts ------------------------------------------------------------------------------

def test_finder_mapping_is_read_without_running_the_finder(tmp_path):
    finder = tmp_path / "__editable___demo_0_1_finder.py"
    finder.write_text("import sys\nMAPPING: dict[str, str] = {'demo': '/src/demo/demo'}\n"
                      "NAMESPACES: dict[str, list[str]] = {}\nraise SystemExit('never run')\n")
    assert usage.finder_mapping(str(finder)) == {"demo": "/src/demo/demo"}
    (tmp_path / "broken_finder.py").write_text("MAPPING = {")
    assert usage.finder_mapping(str(tmp_path / "broken_finder.py")) == {}


def test_imports_leave_out_type_checking_and_resolve_relative_ones():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from . import core\n"
        "from ..util import tools\n"
        "if TYPE_CHECKING:\n"
        "    from .models.cv import everything\n"
        "else:\n"
        "    import lazy_loader\n"
        "def later():\n"
        "    import scipy.signal\n"
        "    from .beat import tempo\n")
    got = scan.imports_of(tree, "pkg.sub.mod")
    assert "pkg.sub.core" in got and "pkg.util.tools" in got and "pkg.sub.beat.tempo" in got
    assert "scipy.signal" in got and "lazy_loader" in got
    assert not any("models.cv" in g for g in got)


def test_code_newer_than_this_grammar_is_unparsed_not_an_error():
    fs = scan.FileScan([(w, w.test()) for w in scan.watched().values()])
    # PEP 695 generics (Python 3.12) read by a 3.11 doctor
    source = b"import scipy.signal\n\ndef f[T](x: T) -> T:\n    return scipy.signal.hann(x)\n"
    out = fs.scan(source, want_imports=True)
    assert out["hits"] == [] and out["imports"] == []
    if sys.version_info < (3, 12):
        assert out["unparsed"].startswith("SyntaxError")


def test_the_doctors_own_checkout_and_temporary_folders_are_not_an_application(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.chdir(Path(usage.__file__).resolve().parents[1])
    assert usage.default_project(None) is None
    app = write_app(tmp_path / "svc", "import torch\n")
    monkeypatch.chdir(app)
    assert usage.default_project(None) == str(app)
    monkeypatch.chdir(tmp_path / "svc")
    assert usage.default_project(str(tmp_path)) == str(tmp_path)
    empty = tmp_path / "docs"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert usage.default_project(None) is None


# --- real environments ----------------------------------------------------------------------

HANN_APP = ("import numpy as np\n"
            "from scipy import signal\n\n\n"
            "def window(n):\n"
            "    return signal.hann(n)\n")


@pytest.mark.venv
def test_a_module_no_distribution_owns_and_the_application_folder(cli, make_env, tmp_path):
    # SciPy 1.17 (no scipy.signal.hann) under a venv whose site-packages holds orphan.py,
    # a module no RECORD lists, the way a Dockerfile's COPY leaves one
    python = _layered(make_env(envs.SCIPY_MODERN), tmp_path / "venv")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "orphan.py").write_text(HANN_APP)
    cache = {"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}
    plain = cli("check", "--json", "--python", str(python), "--only", "scipy.removed-names",
                env=cache, cwd=tmp_path)
    f = plain.finding("scipy.removed-names")
    # seen, but nothing says it runs: a warning that says so
    assert f["status"] == "warn", f
    assert f"{site / 'orphan.py'}:6" in f["summary"] and "(no distribution)" in f["summary"]
    assert "no entry point is known" in f["summary"]

    app = write_app(tmp_path / "app", "import orphan\n\nprint(orphan.window(8))\n",
                    name="serve.py")
    (app / "tools.py").write_text("from scipy.integrate import simps\n")
    r = cli("check", "--json", "--python", str(python), "--only", "scipy.removed-names",
            "--project", str(app), env=cache, cwd=tmp_path)
    assert r.returncode == 1, r
    f = r.finding("scipy.removed-names")
    assert f["status"] == "fail", f
    where = {u["where"]: u["distribution"] for u in f["details"]["users"]}
    assert where[f"{site / 'orphan.py'}:6"] == "(no distribution)"
    assert where[f"{app / 'tools.py'}:1"] == "(your code)"
    assert f["details"]["reach"]["known"] is True
    # librosa's own use is still there, but serve.py never imports librosa
    assert any(u["distribution"] == "librosa" for u in f["details"]["unreached_users"])
    assert "librosa" in f["details"]["unreached"] and "not reached" in f["details"]["unreached"]


BIG = pytest.mark.slow


@BIG
@pytest.mark.venv
def test_the_big_deployment_environment_passes(cli, make_env, tmp_path):
    venv = make_env(envs.BIG_STACK)
    r = cli("check", "--json", "--python", str(venv.python),
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path, timeout=900)
    bad = [(f["id"], f["status"], f["summary"][:300]) for f in r.json["findings"]
           if f["status"] in ("fail", "error")]
    assert r.returncode == 0 and not bad, bad
    # the CV and multimodal models of modelscope use names SciPy and NumPy removed; the TTS
    # pipeline does not reach them, and the report says so without failing
    scipy_names = r.finding("scipy.removed-names")
    assert "modelscope" in scipy_names["details"]["unreached"], scipy_names
    assert "not reached from the entry modules" in scipy_names["summary"]
    reach = scipy_names["details"]["reach"]
    assert reach["known"] is True
    assert "modelscope.pipelines.audio.text_to_speech_pipeline" in reach["entries"]
    gen = r.finding("compat.transformers")
    assert gen["status"] == "ok" and "modelscope" in gen["details"]["unreached"]
    # `pip install modelscope` leaves out the audio-tts extra, so its Sambert pipeline does
    # not import (No module named 'addict'): without a recipe that is a warning, the hub
    # library being there for its downloads as often (test_probes_entry_import.py: the
    # Sambert recipe fails)
    entry = r.finding("model.entry-import")
    assert entry["status"] == "warn" and "No module named 'addict'" in entry["summary"], entry


@BIG
@pytest.mark.venv
def test_an_editable_project_in_the_big_environment_is_scanned(cli, make_env, tmp_path):
    # `pip install -e .` of a research repo (PEP 660: RECORD lists only a .pth and a finder)
    # whose module calls scipy.signal.hann, gone from SciPy >= 1.13
    base = make_env(envs.BIG_STACK)
    python = _layered(base, tmp_path / "venv")
    src = tmp_path / "hannproj"
    (src / "hannproj").mkdir(parents=True)
    (src / "hannproj" / "__init__.py").write_text("")
    (src / "hannproj" / "frontend.py").write_text(HANN_APP)
    install_editable(python, src, "hannproj")
    r = cli("check", "--json", "--python", str(python), "--only", "scipy.removed-names",
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path, timeout=900)
    assert r.returncode == 1, r
    f = r.finding("scipy.removed-names")
    assert f["status"] == "fail", f
    line = f"{src / 'hannproj' / 'frontend.py'}:6"
    assert f"scipy.signal.hann at {line}" in f["summary"]
    assert {"distribution": "hannproj", "version": "0.1.0", "where": line,
            "name": "scipy.signal.hann"} in f["details"]["users"]
