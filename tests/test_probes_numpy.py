"""numpy.abi (N1) and numpy.aliases (N2) on real environments, diagnosed from outside with
`--python`; the development .venv (numpy 2.4, numba 0.68, scipy 1.17, soxr 1.x, torch 2.13)
is the healthy one."""

from __future__ import annotations

import pytest
from tts_doctor.probes import numpy as numpy_probes

from tests.harness import envs, envs_numeric


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_healthy_dev_environment_has_no_abi_or_alias_failure(cli):
    r = cli("check", "--json", "--only", "numpy")
    assert r.returncode == 0, r
    abi = r.finding("numpy.abi")
    assert abi["status"] == "ok", abi
    assert abi["details"]["extensions"] > 20  # scipy, numba, torch... were all read
    aliases = r.finding("numpy.aliases")
    assert aliases["status"] == "ok", aliases
    assert "float_" in aliases["details"]["absent"]
    # numba 0.68 still names np.asfarray/np.round_, but only under `if numpy_version < (2,0)`
    # and in its tests: seen and left out, not reported as users
    assert {g["distribution"] for g in aliases["details"]["guarded_or_tests"]} <= {"numba"}


@pytest.mark.venv
def test_numpy1_build_under_numpy2_fails_naming_the_extension(cli, make_env):
    venv = make_env(envs_numeric.NUMPY2_LEGACY)
    # the environment really is broken the way users see it
    real = venv.run("-c", "import soxr", check=False)
    assert real.returncode != 0
    assert "compiled using NumPy 1.x cannot be run in" in real.stderr

    r = check(cli, venv, "--only", "numpy.abi")
    assert r.returncode == 1, r
    f = r.finding("numpy.abi")
    assert f["status"] == "fail"
    assert "soxr 0.3.7" in f["summary"] and "numpy 2.0.2" in f["summary"]
    broken = {b["distribution"]: b for b in f["details"]["broken"]}
    assert set(broken) == {"soxr"}  # numba 0.60 is a NumPy 2 build: not a suspect
    assert broken["soxr"]["module"] == "soxr.cysoxr"
    assert broken["soxr"]["imported_by"] == "import soxr"  # as the package uses it
    assert f["details"]["optional"] == []
    assert {"banner", "multiarray"} <= set(broken["soxr"]["signatures"])
    commands = f["fix"]["commands"]
    # soxr 0.4.0 is the first soxr built for NumPy 2 (NUMPY2_BUILDS)
    assert commands[0] == f"{venv.python} -m pip install 'soxr>=0.4.0'"
    assert commands[-1] == f"{venv.python} -m pip install 'numpy<2'"


@pytest.mark.venv
def test_numba_built_for_numpy1_is_reported_with_numbas_own_refusal(cli, make_env):
    venv = make_env(envs_numeric.NUMBA_TOO_OLD)
    r = check(cli, venv, "--only", "numpy.abi")
    f = r.finding("numpy.abi")
    assert f["status"] == "fail", f
    rows = [b for b in f["details"]["broken"] if b["distribution"] == "numba"]
    assert rows and all("Numba needs NumPy 1.26 or less" in b["error"] for b in rows)
    assert any("'numba>=0.60.0'" in c for c in f["fix"]["commands"])


@pytest.mark.venv
def test_removed_aliases_are_named_with_their_users(cli, make_env):
    venv = make_env(envs_numeric.NUMPY2_LEGACY)
    real = venv.run("-c", "import numpy; numpy.float", check=False)
    assert "has no attribute 'float'" in real.stderr

    r = check(cli, venv, "--only", "numpy.aliases")
    assert r.returncode == 1, r
    f = r.finding("numpy.aliases")
    assert f["status"] == "fail"
    assert "librosa 0.9.2" in f["summary"] and "np.float" in f["summary"]
    users = {u["distribution"]: u for u in f["details"]["users"]}
    assert "float" in users["librosa"]["names"]
    assert any("librosa/util/utils.py:2185" in use for use in users["librosa"]["uses"])
    # NumPy 2 has np.bool again: librosa's np.bool is not a finding there
    assert "bool" not in f["details"]["absent"]
    assert "bool" not in users["librosa"]["names"]
    assert {"distribution": "librosa", "version": "0.9.2", "fixed_in": "0.10"} in \
        f["details"]["known_pairs"]
    assert f["fix"]["commands"][0] == f"{venv.python} -m pip install 'librosa>=0.10'"
    assert "np.float -> float (builtin) or np.float64" in f["fix"]["description"]


@pytest.mark.venv
def test_numpy1_environment_is_healthy(cli, make_env):
    venv = make_env(envs.SCIPY_OLD)  # numpy 1.26.4 + scipy 1.12.0
    r = check(cli, venv, "--only", "numpy")
    assert r.returncode == 0, r
    assert r.finding("numpy.abi")["status"] == "ok"
    aliases = r.finding("numpy.aliases")
    assert aliases["status"] == "ok"
    assert "float" in aliases["details"]["absent"] and "float_" not in \
        aliases["details"]["absent"]


@pytest.mark.venv
def test_no_numpy_is_a_skip(cli, make_env):
    r = check(cli, make_env(envs.BARE), "--only", "numpy")
    assert r.returncode == 0, r
    assert r.finding("numpy.abi")["status"] == "skip"
    assert r.finding("numpy.aliases")["status"] == "skip"


def test_binary_classification_reads_which_numpy_a_module_was_built_for(tmp_path):
    cases = {
        "old.so": b"\x7fELF..._ARRAY_API...numpy.core._multiarray_umath...",
        "new.so": b"\x7fELF..._ARRAY_API...numpy._core._multiarray_umath..."
                  b"numpy.core._multiarray_umath",
        "pybind.so": b"\x7fELF..._ARRAY_API...multiarray",
        "plain.so": b"\x7fELF...PyInit_plain",
    }
    got = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        got[name] = numpy_probes.classify_extension(str(tmp_path / name))
    assert got == {"old.so": "1", "new.so": "2", "pybind.so": "runtime", "plain.so": None}


def test_guards_hide_deliberate_fallbacks():
    source = (b"import numpy as np\n"
              b"try:\n    A = np.float_\nexcept AttributeError:\n    A = np.float64\n"
              b"B = np.NaN if hasattr(np, 'NaN') else np.nan\n"
              b"if np.__version__ < '2':\n    C = np.Inf\n"
              b"D = np.float\n")
    from tts_doctor.scan import guarded_lines

    guarded = guarded_lines(source)
    assert {3, 6, 8} <= guarded
    assert 9 not in guarded


def test_modules_after_a_crash_or_timeout_are_not_checked(tmp_path, monkeypatch):
    # the child imports in order; when it dies inside one import, the ones after it never
    # ran: they must not count as importing cleanly
    (tmp_path / "tts_doctor_t_ok.py").write_text("x = 1\n")
    (tmp_path / "tts_doctor_t_crash.py").write_text("import os\nos._exit(3)\n")
    (tmp_path / "tts_doctor_t_hang.py").write_text("import time\ntime.sleep(60)\n")
    (tmp_path / "tts_doctor_t_later.py").write_text("x = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    got = numpy_probes.import_in_subprocess(
        ["tts_doctor_t_ok", "tts_doctor_t_crash", "tts_doctor_t_later"])
    assert got["tts_doctor_t_ok"]["checked"] and got["tts_doctor_t_ok"]["crashed"] is None
    assert got["tts_doctor_t_crash"]["checked"]
    assert got["tts_doctor_t_crash"]["crashed"] == "the process exited with 3"
    assert got["tts_doctor_t_later"]["checked"] is False
    assert got["tts_doctor_t_later"]["crashed"] is None

    got = numpy_probes.import_in_subprocess(["tts_doctor_t_hang", "tts_doctor_t_later"],
                                            timeout=3)
    assert got["tts_doctor_t_hang"]["crashed"] == "timed out"
    assert got["tts_doctor_t_later"]["checked"] is False

    broken, clean, unchecked = numpy_probes.sort_imports(
        {"pkg": ("1.0", ["tts_doctor_t_ok", "tts_doctor_t_hang", "tts_doctor_t_later"])},
        {"pkg": {"tts_doctor_t_ok": {"signatures": [], "error": None, "crashed": None,
                                     "checked": True, "output": ""},
                 **got}}, "1")
    assert [b["module"] for b in broken] == ["tts_doctor_t_hang"]
    assert [c["module"] for c in clean] == ["tts_doctor_t_ok"]
    assert [u["module"] for u in unchecked] == ["tts_doctor_t_later"]


def test_a_crash_is_named_and_the_modules_after_it_are_not_reported_clean(cli, tmp_path):
    # a distribution with two extension modules built for NumPy 1 (by their bytes) whose
    # package dies on import: the first module is the crash, the second was never imported
    import subprocess
    import sys

    src = tmp_path / "src"
    pkg = src / "abicrash"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import os\nos._exit(7)\n")
    for name in ("first", "second"):
        (pkg / f"{name}.so").write_bytes(b"\x7fELF..._ARRAY_API...numpy.core._multiarray_umath")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "abicrash"\nversion = "0.1.0"\n'
        '[tool.setuptools.package-data]\nabicrash = ["*.so"]\n')
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "--target",
                    str(target), str(src)], check=True, capture_output=True)
    r = cli("check", "--json", "--only", "numpy.abi", env={"PYTHONPATH": str(target),
                                                           "TTS_DOCTOR_CACHE": str(tmp_path)})
    f = r.finding("numpy.abi")
    assert f["status"] == "fail", f
    assert [(b["module"], b["crashed"]) for b in f["details"]["broken"]] == [
        ("abicrash.first", "the process exited with 7")]
    assert [u["module"] for u in f["details"]["not_checked"]] == ["abicrash.second"]
    assert not any(c["distribution"] == "abicrash" for c in f["details"]["imports_cleanly"])
    assert "were never imported" in f["summary"] and "abicrash.second" in f["summary"]


def test_no_ok_on_behalf_of_modules_never_imported(monkeypatch):
    # The process can die between two imports (killed from outside, out of memory): nothing
    # failed, yet the second module was never tried. A real environment cannot time that, so
    # the import results are given and the verdict is the probe's own.
    from tts_doctor import dists
    from tts_doctor.finding import Status
    from tts_doctor.registry import Context

    real = dists.all_distributions()
    target = next(d for k, d in sorted(real.items()) if k != "numpy")
    monkeypatch.setattr(dists, "all_distributions", lambda: {"x": target})
    monkeypatch.setattr(numpy_probes, "extension_builds", lambda dist: [
        {"file": "/x/a.so", "module": "x.a", "build": "1"},
        {"file": "/x/b.so", "module": "x.b", "build": "1"}])
    done = {"x.a": {"error": None, "signatures": [], "output": "", "checked": True,
                    "crashed": None},
            "x.b": {"error": None, "signatures": [], "output": "", "checked": False,
                    "crashed": None}}
    monkeypatch.setattr(numpy_probes, "import_in_subprocess", lambda modules: done)
    res = numpy_probes.abi(Context(), numpy_probes.collect_abi(Context()))
    assert res.status is Status.WARN, res
    assert "could not be checked" in res.summary and "x.b" in res.summary
    assert [u["module"] for u in res.details["not_checked"]] == ["x.b"]
    assert [c["module"] for c in res.details["imports_cleanly"]] == ["x.a"]
    assert res.fix.commands == (f"{dists.python()} -c 'import x.b'",)


@pytest.mark.venv
def test_an_optional_numpy1_module_its_package_never_imports_is_not_a_failure(cli, make_env):
    venv = make_env(envs_numeric.NUMPY2_OPTIONAL_EXT)
    # as the user sees it: Shapely works under NumPy 2; only its optional module does not
    works = venv.run("-c", "import shapely.geometry as g; print(g.Point(0, 0).buffer(1).area)")
    assert float(works.stdout) > 3.0
    real = venv.run("-c", "import shapely.vectorized", check=False)
    assert real.returncode != 0 and "numpy.dtype size changed" in real.stderr

    r = check(cli, venv, "--only", "numpy.abi")
    assert r.returncode == 0, r
    f = r.finding("numpy.abi")
    assert f["status"] == "ok", f
    assert f["details"]["broken"] == []
    [row] = f["details"]["optional"]
    assert (row["distribution"], row["module"]) == ("Shapely", "shapely.vectorized._vectorized")
    assert "dtype-size" in row["signatures"] and "`import shapely` does not load it" in row["why"]
    assert "shapely.vectorized._vectorized (Shapely 1.8.5.post1)" in f["summary"]


def _install_abi_package(tmp_path, api_source: str, extra: dict[str, str]) -> str:
    """A package `abiopt` with an extension `abiopt/ext/_impl.so` whose bytes say NumPy 1
    (it is no real ELF file, so importing it raises), imported by `abiopt/ext/__init__.py`;
    `abiopt/api.py` is `api_source`. Installed with pip into a folder; returns that folder."""
    import subprocess
    import sys

    src = tmp_path / "src"
    pkg = src / "abiopt"
    (pkg / "ext").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from abiopt import api\n")
    (pkg / "api.py").write_text(api_source)
    (pkg / "ext" / "__init__.py").write_text("from ._impl import f\n")
    (pkg / "ext" / "_impl.so").write_bytes(b"\x7fELF..._ARRAY_API...numpy.core._multiarray_umath")
    for rel, text in extra.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "abiopt"\nversion = "0.1.0"\n'
        '[tool.setuptools.packages.find]\ninclude = ["abiopt*"]\n'
        '[tool.setuptools.package-data]\n"*" = ["*.so"]\n')
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "--target",
                    str(target), str(src)], check=True, capture_output=True)
    return str(target)


@pytest.mark.parametrize("api,extra,verdict", [
    # imported lazily by the package's own code, unguarded: broken as used
    ("def g():\n    from abiopt.ext import f\n    return f()\n", {}, "fail"),
    # only behind a guard, or only by its tests: optional
    ("try:\n    from abiopt.ext import f\nexcept ImportError:\n    f = None\n", {}, "ok"),
    ("import numpy\nif numpy.__version__ < '2':\n    from abiopt import ext\n", {}, "ok"),
    ("x = 1\n", {"tests/test_ext.py": "from abiopt.ext import f\n"}, "ok"),
    # only under `if TYPE_CHECKING:`, which never runs: optional
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from abiopt.ext import f\n",
     {}, "ok"),
])
def test_a_module_that_fails_alone_is_judged_by_who_imports_it(cli, tmp_path, api, extra,
                                                               verdict):
    site = _install_abi_package(tmp_path, api, extra)
    r = cli("check", "--json", "--only", "numpy.abi",
            env={"PYTHONPATH": site, "TTS_DOCTOR_CACHE": str(tmp_path)})
    f = r.finding("numpy.abi")
    assert f["status"] == verdict, f
    rows = f["details"]["broken"] if verdict == "fail" else f["details"]["optional"]
    assert [row["module"] for row in rows] == ["abiopt.ext._impl"], f
    if verdict == "fail":
        assert rows[0]["imported_by"] == "abiopt/api.py:2"
        assert f["details"]["optional"] == []


def test_an_import_under_type_checking_does_not_make_a_module_required(tmp_path):
    """own_importers reads a distribution's own imports of a module that failed alone: one
    under `if TYPE_CHECKING:` never runs, so it does not make that module required (it used
    its own import walk, which counted them; it now shares doctor.scan's)."""
    import importlib.metadata as md

    site = tmp_path / "site"
    pkg = site / "mypkg"
    (pkg / "ext").mkdir(parents=True)
    files = {
        "mypkg/__init__.py": "",
        "mypkg/ext/__init__.py": "",
        "mypkg/ext/fast.py": "VALUE = 1\n",
        "mypkg/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from .ext import fast\n",
        "mypkg/uses.py": "import os\n\ndef later():\n    from mypkg.ext.fast import VALUE\n",
    }
    for rel, text in files.items():
        (site / rel).write_text(text)
    info = site / "mypkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files))
    dist = next(iter(md.distributions(path=[str(site)])))
    got = numpy_probes.own_importers(dist, "mypkg.ext.fast")
    assert [(g["file"], g["line"]) for g in got] == [("mypkg/uses.py", 4)], got
