"""numba and resampy probes on real environments: numba's NumPy range (M1), a real JIT, the
cache locators (M3, with a really read-only site-packages made by a private mount namespace),
the seed's invalid resampy filter name, and resampy's first-call JIT latency (M4). The dev
.venv (numba 0.68.1, resampy 0.4.3, numpy 2.4) is the healthy environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.harness import envs, envs_numeric
from tests.harness.apps import write_app
from tests.harness.blindfold import assert_judged_alike


def check(cli, venv, *args, **kw):
    return cli("check", "--json", "--python", str(venv.python), *args, **kw)


def test_healthy_dev_environment_compiles_caches_and_resamples(cli):
    # nothing installed in the dev venv calls resampy: ask for the real call explicitly
    # a generous JIT budget: the verdict on latency is another test's (it would flake on a
    # loaded machine where the first call takes more than the default 1 s)
    r = cli("check", "--json", "--only", "numba", "--set", "numba.resampy=run",
            "--set", "numba.jit-budget=600")
    assert r.returncode == 0, r
    statuses = {f["id"]: f["status"] for f in r.json["findings"]}
    assert statuses == {"numba.numpy": "ok", "numba.jit": "ok", "numba.cache": "ok",
                        "numba.resampy-filters": "ok", "numba.warmup": "ok"}, r
    filters = r.finding("numba.resampy-filters")["details"]
    assert filters["valid_filters"] == ["kaiser_best", "kaiser_fast", "sinc_window"]
    assert abs(filters["peak_hz"] - 440) < 8 and filters["length"] == 6000
    warm = r.finding("numba.warmup")["details"]
    # resampy 0.4.3 compiles with jit(nopython=True) and no cache=True: nothing on disk
    assert warm["cacheable"] is False and warm["first_call_s"] > warm["later_call_s"]


def test_resampy_without_callers_is_judged_statically(cli):
    r = cli("check", "--json", "--only", "numba.resampy-filters,numba.warmup")
    filters = r.finding("numba.resampy-filters")
    assert filters["status"] == "ok" and "not run" in filters["details"]["tone_check"]
    warm = r.finding("numba.warmup")
    assert warm["status"] == "ok" and warm["details"]["measured"] is False
    assert warm["details"]["cacheable"] is False  # resampy 0.4.3: jit without cache=True


def test_first_call_jit_over_the_budget_is_a_warning_with_the_warm_up(cli):
    r = cli("check", "--json", "--only", "numba.warmup", "--set", "numba.jit-budget=0.001",
            "--set", "numba.resampy=run")
    f = r.finding("numba.warmup")
    assert f["status"] == "warn", f
    assert "JIT compile" in f["summary"] and "without cache=True" in f["summary"]
    assert f["fix"]["shim"] == "resample"  # the opt-in: fix recommends it, never applies it
    assert "resampy.resample(numpy.zeros(4800, 'float32'), 48000, 24000)" in \
        f["fix"]["commands"][0]


@pytest.mark.venv
def test_numba_older_than_numpy_fails_with_numbas_own_message(cli, make_env):
    venv = make_env(envs_numeric.NUMBA_TOO_OLD)
    real = venv.run("-c", "import numba", check=False)
    assert "Numba needs NumPy 1.26 or less" in real.stderr

    r = check(cli, venv, "--only", "numba")
    assert r.returncode == 1, r
    f = r.finding("numba.numpy")
    assert f["status"] == "fail"
    assert "Numba needs NumPy 1.26 or less" in f["summary"] and "numpy 2.0.2" in f["summary"]
    assert f["details"]["declares"] == "numpy<1.27,>=1.22"
    # numba 0.60.0 is the first numba for NumPy 2.0: a release that exists and fixes it
    assert f["fix"]["commands"] == [f"{venv.python} -m pip install 'numba>=0.60.0'",
                                    f"{venv.python} -m pip install 'numpy<1.27'"]
    assert "upgrade numba to 0.60.0 or newer" in f["fix"]["description"]
    assert r.finding("numba.jit")["status"] == "fail"
    # resampy is not installed there: its probes skip
    assert r.finding("numba.resampy-filters")["status"] == "skip"


@pytest.mark.venv
def test_no_numba_is_a_skip(cli, make_env):
    r = check(cli, make_env(envs.BARE), "--only", "numba")
    assert r.returncode == 0, r
    assert {f["status"] for f in r.json["findings"]} == {"skip"}


def test_numba_cache_dir_below_a_regular_file_is_ignored_by_numba(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache_dir = blocker / "numba-cache"
    env = {"NUMBA_CACHE_DIR": str(cache_dir)}
    # what numba itself does with it: the user-provided locator fails, it caches in-tree
    probe = subprocess.run(
        [sys.executable, "-c", "import numba\n"
         "import resampy.core as m\n"
         "ns = {'__name__': 'p'}\n"
         "exec(compile('def f(x):\\n    return x\\n', m.__file__, 'exec'), ns)\n"
         "print(numba.njit(cache=True)(ns['f'])._cache.cache_path)\n"],
        capture_output=True, text=True, env={**os.environ, **env}, check=True)
    assert probe.stdout.strip().endswith("resampy/__pycache__")

    r = cli("check", "--json", "--only", "numba.cache", env=env)
    f = r.finding("numba.cache")
    assert f["status"] == "warn", f
    assert f"NUMBA_CACHE_DIR={cache_dir} is not usable" in f["summary"]
    assert "is not a directory" in f["summary"] and "(in-tree)" in f["summary"]
    assert f["fix"]["commands"] == ["export NUMBA_CACHE_DIR=/tmp/numba-cache"]


def _readonly_mounts_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    script = 'd=$(mktemp -d) && mount --bind "$d" "$d" && mount -o remount,bind,ro "$d"'
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True)
    return proc.returncode == 0


def run_with_readonly(folder: Path, *cmd: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `cmd` in a private mount namespace where `folder` is a read-only bind mount: a
    really unwritable site-packages (root ignores permission bits, not a read-only mount)."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, str(folder), *cmd],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


@pytest.mark.venv
@pytest.mark.skipif(not _readonly_mounts_work(), reason="no user+mount namespaces here")
def test_readonly_site_packages_and_home_leave_numba_no_locator(make_env, tmp_path):
    venv = make_env(envs_numeric.NUMPY2_LEGACY)  # numba 0.60 + librosa 0.9.2 (cache=True)
    site = venv.site
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(NO_COLOR="1", XDG_CACHE_HOME=str(blocker / "cache"))
    librosa_utils = str(site / "librosa" / "util" / "utils.py")

    # numba itself, on librosa's file: the failure users see when importing librosa
    numba_says = run_with_readonly(
        site, str(venv.python), "-c",
        "import numba, sys\nns = {'__name__': 'p'}\n"
        "exec(compile('def f(x):\\n    return x\\n', sys.argv[1], 'exec'), ns)\n"
        "numba.njit(cache=True)(ns['f'])\n", librosa_utils, env=env)
    assert "no locator available for file" in numba_says.stderr, numba_says

    doctor = [sys.executable, "-m", "tts_doctor", "check", "--json", "--python",
              str(venv.python), "--only", "numba.cache"]
    r = run_with_readonly(site, *doctor, env=env)
    f = next(x for x in json.loads(r.stdout)["findings"] if x["id"] == "numba.cache")
    assert r.returncode == 1 and f["status"] == "fail", r
    assert "librosa 0.9.2" in f["summary"]
    assert "no locator available" in f["summary"] and "Read-only file system" in f["summary"]
    assert f["fix"]["commands"] == ["export NUMBA_CACHE_DIR=/tmp/numba-cache"]
    assert [u["distribution"] for u in f["details"]["users"]] == ["librosa"]

    # and the fix works: the same read-only image with NUMBA_CACHE_DIR set
    fixed = run_with_readonly(site, *doctor,
                              env={**env, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")})
    f = next(x for x in json.loads(fixed.stdout)["findings"] if x["id"] == "numba.cache")
    assert f["status"] == "ok", f
    assert f["details"]["targets"][0]["locator"] == "NUMBA_CACHE_DIR"


SEED = '''
import resampy


def to_16k(audio, sr):
    """The seed recipe: an invalid filter name, and the error swallowed."""
    try:
        return resampy.resample(audio, sr, 16000, filter="sinc_best")
    except NotImplementedError:
        return audio
'''


def test_seed_invalid_filter_name_is_found_in_installed_code(cli, tmp_path):
    src = tmp_path / "src"
    (src / "seedtts").mkdir(parents=True)
    (src / "seedtts" / "__init__.py").write_text("")
    (src / "seedtts" / "frontend.py").write_text(textwrap.dedent(SEED))
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "seedtts"\nversion = "0.1.0"\n')
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "--target",
                    str(target), str(src)], check=True, capture_output=True)
    env = {"PYTHONPATH": str(target)}
    # the seed really hands back 48 kHz audio as if it were 16 kHz
    seed = subprocess.run([sys.executable, "-c", "import numpy, seedtts.frontend as f; "
                           "print(len(f.to_16k(numpy.zeros(48000, 'float32'), 48000)))"],
                          capture_output=True, text=True, env={**os.environ, **env}, check=True)
    assert seed.stdout.strip() == "48000"

    # the application imports the seed's frontend: its call is reached, and judged
    app = write_app(tmp_path / "app", "from seedtts.frontend import to_16k\n")
    r = cli("check", "--json", "--only", "numba.resampy-filters", "--project", str(app), env=env)
    assert r.returncode == 1, r
    f = r.finding("numba.resampy-filters")
    assert f["status"] == "fail"
    assert "seedtts" in f["summary"] and "filter='sinc_best'" in f["summary"]
    bad = f["details"]["invalid"]
    assert len(bad) == 1 and bad[0]["filter"] == "sinc_best"
    assert bad[0]["file"].endswith("seedtts/frontend.py") and bad[0]["line"] == 8
    assert bad[0]["raises"].startswith("NotImplementedError")
    # a code change, not an installable shim: fix must not offer to install one
    assert f["fix"]["shim"] is None
    assert "from tts_doctor.shims.resample import resample" in f["fix"]["description"]
    assert "kaiser_best" in f["fix"]["description"]


@pytest.mark.venv
def test_probes_leave_the_diagnosed_environment_unchanged(cli, make_env):
    venv = make_env(envs_numeric.NUMPY2_LEGACY)
    before = sorted(str(p.relative_to(venv.path)) for p in venv.path.rglob("*"))
    r = check(cli, venv, "--only", "numpy,numba,audio,onnxruntime,compat")
    assert {f["status"] for f in r.json["findings"]} <= {"ok", "warn", "fail", "skip"}, r
    after = sorted(str(p.relative_to(venv.path)) for p in venv.path.rglob("*"))
    assert before == after


def test_a_bad_jit_budget_falls_back_to_the_default_and_says_so(cli):
    from tts_doctor.probes import numba as numba_probes

    assert numba_probes.jit_budget(None) == (1.0, None)
    assert numba_probes.jit_budget("0.25") == (0.25, None)
    for bad in ("abc", "-1", "nan", "0"):
        budget, note = numba_probes.jit_budget(bad)
        assert budget == 1.0 and f"--set numba.jit-budget={bad} is not" in note

    r = cli("check", "--json", "--only", "numba.jit,numba.warmup", "--set",
            "numba.jit-budget=abc", "--set", "numba.resampy=run")
    f = r.finding("numba.warmup")
    assert f["status"] in ("ok", "warn"), f  # a verdict, not a probe error
    assert f["details"]["budget_s"] == 1.0
    assert "--set numba.jit-budget=abc is not a positive number" in f["summary"]
    assert "numba.jit-budget=abc" in f["details"]["budget_note"]
    # resample() runs resampy's serial kernel: that dispatcher is the one named
    jit = r.finding("numba.jit")
    assert jit["status"] == "ok", jit
    assert jit["details"]["kernel"] == "resampy.interpn._resample_loop_s"


def test_asking_numba_creates_no_cache_folder(cli, tmp_path):
    # numba's locators create their folder (ensure_cache_path): with NUMBA_CACHE_DIR naming a
    # folder that does not exist yet, the probe must not leave it behind
    cache_dir = tmp_path / "numba-cache"
    env = {"NUMBA_CACHE_DIR": str(cache_dir), "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "TTS_DOCTOR_CACHE": str(tmp_path / "doctor-cache")}
    r = cli("check", "--json", "--only", "numba.cache", env=env)
    f = r.finding("numba.cache")
    assert f["status"] == "ok", f
    row = f["details"]["targets"][0]
    assert row["locator"] == "NUMBA_CACHE_DIR" and row["path"].startswith(str(cache_dir))
    assert row["numba_not_asked"].startswith("it would create ")
    assert not cache_dir.exists()
    assert not (tmp_path / "xdg" / "numba").exists()


def test_a_folder_numba_makes_while_asked_is_removed_again(tmp_path):
    # when numba is asked anyway and settles on a folder that did not exist (here the
    # in-tree __pycache__ of a fresh source folder), it is removed after the answer
    import numba
    from numba.core import config
    from tts_doctor.probes import numba as numba_probes

    if config.CACHE_DIR:
        pytest.skip("NUMBA_CACHE_DIR is set for the tests: numba would settle there")
    src = tmp_path / "src"
    src.mkdir()
    py_file = src / "mod.py"
    py_file.write_text("x = 1\n")
    chain = numba_probes.locators(str(py_file), None)
    assert numba_probes.why_not_ask_numba(chain) == f"it would create {src / '__pycache__'}"
    path, error = numba_probes._real_locator(numba, str(py_file), chain)
    assert error is None and path == str(src / "__pycache__")
    assert sorted(p.name for p in src.iterdir()) == ["mod.py"]


@pytest.mark.parametrize("where", [
    "dev", pytest.param("numba-too-old", marks=pytest.mark.venv)])
def test_recorded_facts_judge_to_the_live_findings(cli, make_env, tmp_path, where):
    """numba's and resampy's facts (--save-facts) judged again with --facts: the same findings
    as the live run, on the healthy dev venv (resampy run for real) and on a numba that
    refuses the installed NumPy."""
    facts = tmp_path / "facts.json"
    target = [] if where == "dev" else ["--python",
                                        str(make_env(envs_numeric.NUMBA_TOO_OLD).python)]
    live = cli("check", "--json", *target, "--only", "numba.*", "--set", "numba.resampy=run",
               "--set", "numba.jit-budget=600", "--save-facts", str(facts))
    assert live.returncode == (0 if where == "dev" else 1), live
    ids = ["numba.numpy", "numba.jit", "numba.cache", "numba.resampy-filters", "numba.warmup"]
    assert [f["id"] for f in live.json["findings"]] == ids
    saved = json.loads(facts.read_text())
    assert all("facts" in saved["probes"][i] for i in ids), saved["probes"].keys()
    judged = cli("check", "--json", "--only", "numba.*", "--facts", str(facts),
                 env={"NUMBA_CACHE_DIR": str(tmp_path / "elsewhere")})
    assert judged.returncode == live.returncode, judged
    assert_judged_alike(live.json["findings"], judged.json["findings"], facts, tmp_path)
