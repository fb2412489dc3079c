"""SciPy probes on real environments: SciPy 1.17 with librosa 0.10.0 (a real user of
scipy.signal.hann), SciPy 1.12 (before the removals, with and without that user), the
development environment (healthy), and user code handed in with --set scipy.paths."""

from __future__ import annotations

import json

import pytest
from tts_doctor import dists

from tests.harness import envs, envs_text
from tests.harness.apps import write_app
from tests.harness.recipes import write_recipe

pytestmark = pytest.mark.venv


def check(cli, venv, *args, env=None):
    return cli("check", "--json", "--python", str(venv.python), *args, env=env)


def test_scipy_1_17_names_librosa_and_the_exact_line(cli, make_env, tmp_path):
    venv = make_env(envs.SCIPY_MODERN)
    cache = tmp_path / "cache"
    # the application imports librosa's beat tracker: librosa's code is reached from it
    app = write_app(tmp_path / "app", "from librosa import beat\n")
    r = check(cli, venv, "--only", "scipy", "--project", str(app),
              env={"TTS_DOCTOR_CACHE": str(cache)})
    assert r.returncode == 1, r
    f = r.finding("scipy.removed-names")
    assert f["status"] == "fail"
    assert "librosa 0.10.0" in f["summary"]
    assert "scipy.signal.hann at librosa/beat.py:516" in f["summary"]
    users = f["details"]["users"]
    assert users == [{"distribution": "librosa", "version": "0.10.0",
                      "where": "librosa/beat.py:516", "name": "scipy.signal.hann"}]
    # librosa/util/utils.py mentions scipy.signal.hann in a docstring only: not a use
    assert not any("utils.py" in u["where"] for u in users)
    missing = set(f["details"]["missing"])
    assert {"scipy.signal.hann", "scipy.signal.kaiser", "scipy.integrate.simps",
            "scipy.integrate.trapz", "scipy.integrate.cumtrapz",
            "scipy.interpolate.interp2d"} <= missing  # interp2d: judged by calling it
    assert f["fix"]["shim"] == "scipy_names"
    assert f["fix"]["commands"] == [f"{venv.python} -m pip install 'librosa>=0.10.2'"]

    res = r.finding("scipy.resample")
    assert res["status"] == "warn"
    assert res["details"]["peak_hz"] == 440.0 and res["details"]["length"] == 24000
    assert res["details"]["users"] == [{"distribution": "librosa", "version": "0.10.0",
                                        "where": "librosa/core/audio.py:644"}]
    assert res["details"]["next_fast_len"] != res["details"]["prime_length"]
    assert res["details"]["slowdown"] > 0
    assert res["fix"]["shim"] == "resample"

    # the scan is cached outside the environment: a second run reads it back
    cached = list((cache / "scan").glob("*.json"))
    assert cached and any("beat.py" in p.read_text() for p in cached)
    again = check(cli, venv, "--only", "scipy.removed-names", "--project", str(app),
                  env={"TTS_DOCTOR_CACHE": str(cache)})
    assert again.finding("scipy.removed-names")["details"]["users"] == users
    assert sorted(cache.glob("scan/*.json")) == sorted(cached)


def test_without_any_entry_point_a_use_in_installed_code_is_only_a_warning(cli, make_env):
    # no recipe, no TTS stack the doctor knows, no editable install, no application folder:
    # nothing says librosa's beat tracker ever runs, so its use of scipy.signal.hann warns
    venv = make_env(envs.SCIPY_MODERN)
    r = check(cli, venv, "--only", "scipy.removed-names")
    assert r.returncode == 0, r
    f = r.finding("scipy.removed-names")
    assert f["status"] == "warn", f
    assert "scipy.signal.hann at librosa/beat.py:516" in f["summary"]
    assert f["details"]["reach"]["known"] is False
    assert "no entry point found" in f["details"]["reach"]["why"]


def test_scipy_1_12_has_the_names_and_nobody_is_hurt(cli, make_env):
    venv = make_env(envs.SCIPY_OLD)
    r = check(cli, venv, "--only", "scipy")
    assert r.returncode == 0, r
    f = r.finding("scipy.removed-names")
    assert f["status"] == "ok"
    missing = set(f["details"]["missing"])
    assert "scipy.signal.hann" not in missing and "scipy.integrate.simps" not in missing
    assert "scipy.signal.hanning" in missing  # gone since SciPy 1.9
    assert "scipy.integrate.trapz" in f["details"]["removed_later"]
    assert "scipy.interpolate.interp2d" in f["details"]["deprecated"]
    assert r.finding("scipy.resample")["status"] == "ok"


def test_scipy_1_12_warns_that_the_upgrade_breaks_librosa(cli, make_env):
    venv = make_env(envs_text.SCIPY_OLD_LIBROSA)
    r = check(cli, venv, "--only", "scipy.removed-names")
    assert r.returncode == 0, r
    f = r.finding("scipy.removed-names")
    assert f["status"] == "warn"
    assert "SciPy 1.13 removed them" in f["summary"] and "librosa 0.10.0" in f["summary"]
    assert f["fix"]["commands"] == [f"{venv.python} -m pip install 'librosa>=0.10.2'"]


def test_the_real_shims_count_as_repaired(cli, make_env, tmp_path):
    # `tts-doctor shims install` writes its .pth into this environment of our own; the names
    # it restores carry __tts_doctor_shim__ and the probe reports them as shimmed.
    venv = make_env(envs_text.SCIPY_MODERN_SHIMMED)
    py = str(venv.python)
    installed = cli("shims", "install", "scipy_names", "resample", "--python", py)
    try:
        assert installed.returncode == 0, installed
        r = check(cli, venv, "--only", "scipy")
        names = r.finding("scipy.removed-names")
        assert names["status"] == "ok", names
        assert "shimmed" in names["summary"] and "scipy.signal.hann" in names["summary"]
        assert "scipy.signal.hann" in names["details"]["shimmed"]
        assert names["details"]["users"] == []
        res = r.finding("scipy.resample")
        assert res["details"]["shim"] == "resample"
        assert res["details"]["peak_hz"] == 440.0
        # without soxr the shim's polyphase backend refuses 48017 -> 24008, a length SciPy's
        # own FFT method takes: a warning with the soxr install, until the shim handles it
        if res["status"] == "warn":
            assert "raises for a length of 48017" in res["summary"]
            assert res["fix"]["commands"] == [f"{venv.python} -m pip install soxr"]
        else:
            assert res["status"] == "ok" and "shimmed" in res["summary"], res
    finally:
        removed = cli("shims", "uninstall", "scipy_names", "resample", "--python", py)
        assert removed.returncode == 0, removed
    app = write_app(tmp_path / "app", "import librosa.beat\n")
    r = check(cli, venv, "--only", "scipy.removed-names", "--project", str(app))
    assert r.finding("scipy.removed-names")["status"] == "fail"


def test_user_code_uses_guarded_or_not(cli, make_env, tmp_path):
    venv = make_env(envs.SCIPY_MODERN)
    src = tmp_path / "src"
    src.mkdir()
    (src / "guarded.py").write_text(
        "try:\n"
        "    from scipy.signal import kaiser\n"
        "except ImportError:\n"
        "    from scipy.signal.windows import kaiser\n"
        "import scipy.integrate as si\n"
        "def area(y):\n"
        "    try:\n"
        "        return si.trapezoid(y)\n"
        "    except AttributeError:\n"
        "        return si.trapz(y)\n")
    (src / "broken.py").write_text(
        '"""Uses scipy.signal.gaussian in a docstring only."""\n'
        "from scipy import integrate\n"
        "def area(y):\n"
        "    return integrate.simps(y)\n")
    r = check(cli, venv, "--only", "scipy.removed-names", "--set", f"scipy.paths={src}")
    f = r.finding("scipy.removed-names")
    assert f["status"] == "fail"
    ours = [u for u in f["details"]["users"] if u["distribution"] == "(your code)"]
    assert ours == [{"distribution": "(your code)", "version": "",
                     "where": f"{src / 'broken.py'}:4", "name": "scipy.integrate.simps"}]
    guarded = {(u["where"], u["name"]) for u in f["details"]["guarded_users"]}
    assert guarded == {(f"{src / 'guarded.py'}:2", "scipy.signal.kaiser"),
                       (f"{src / 'guarded.py'}:10", "scipy.integrate.trapz")}


def test_the_healthy_development_environment_has_no_false_failure(cli):
    r = cli("check", "--json", "--only", "scipy,ttsfrd,frontend,model")
    assert r.returncode == 0, r
    for f in r.json["findings"]:
        assert f["status"] in ("ok", "skip", "warn"), json.dumps(f)[:2000]
    assert r.finding("scipy.removed-names")["status"] == "ok"
    assert r.finding("ttsfrd.origin")["status"] == "skip"  # not installed, nothing needs it


def _recipe(tmp_path, need: str) -> str:
    return write_recipe(tmp_path / f"scipy-{need}.toml", f'scipy = "{need}"',
                        name="needs-scipy", engine="callable", sample_rate=16000)


def test_missing_scipy_fails_both_probes_when_the_recipe_needs_it(cli, make_env, tmp_path):
    venv = make_env(envs.BARE)
    plain = check(cli, venv, "--only", "scipy")
    assert {f["status"] for f in plain.json["findings"]} == {"skip"}
    # "shim" asks for the scipy_names/resample shims, which forward to SciPy: still needed
    for need in ("required", "shim"):
        r = check(cli, venv, "--only", "scipy", "--recipe", _recipe(tmp_path, need))
        assert r.returncode == 1, r
        for probe_id in ("scipy.removed-names", "scipy.resample"):
            f = r.finding(probe_id)
            assert f["status"] == "fail", (need, f)
            assert f["summary"] == "scipy is not installed, and the recipe needs it"
            assert f["fix"]["commands"] == [f"{venv.python} -m pip install scipy"]
    optional = check(cli, venv, "--only", "scipy", "--recipe", _recipe(tmp_path, "optional"))
    assert {f["status"] for f in optional.json["findings"]} == {"skip"}


def test_a_scipy_that_does_not_import_is_a_verdict_not_a_probe_error(cli, tmp_path):
    # the dev venv's real SciPy 1.17.1 with a stray `numpy` folder first on the path (run from
    # a checkout of NumPy, or a leftover copy): `import scipy` fails as it would for the user
    stray = tmp_path / "numpy"
    stray.mkdir()
    (stray / "__init__.py").write_text('raise ImportError("a stray numpy folder")\n')
    r = cli("check", "--json", "--only", "scipy", env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 1, r
    names = r.finding("scipy.removed-names")
    assert names["status"] == "fail", names
    assert names["summary"] == ("scipy 1.17.1 is installed but `import scipy` fails: "
                                "ImportError: a stray numpy folder")
    res = r.finding("scipy.resample")
    assert res["status"] == "fail", res
    assert "`import scipy.signal` fails: ImportError: a stray numpy folder" in res["summary"]
    for f in (names, res):
        assert f["fix"]["commands"] == [
            f"{dists.python()} -m pip install --force-reinstall scipy==1.17.1"]


def test_a_removed_name_no_release_fixes_gets_shim_pin_or_patch_never_upgrade_scipy(
        cli, make_env, tmp_path):
    # SciPy never brings scipy.signal.hann back, and the application's own code has no
    # fixed release: the fix is the shim, a pin below the removal, or a patch
    venv = make_env(envs.SCIPY_MODERN)
    app = write_app(tmp_path / "app", "from scipy.signal import hann\nw = hann(8)\n")
    r = check(cli, venv, "--only", "scipy.removed-names", "--project", str(app),
              env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")})
    f = r.finding("scipy.removed-names")
    assert f["status"] == "fail", f
    desc = f["fix"]["description"]
    assert "no fixed release known: shim, pin or patch" in desc, desc
    assert "upgrade scipy" not in desc.lower()
    assert not any("scipy>=" in c or "--upgrade" in c for c in f["fix"]["commands"]), f["fix"]
    assert f["fix"]["shim"] == "scipy_names"
    assert any("'scipy<" in c for c in f["fix"]["commands"]), f["fix"]  # the pin
