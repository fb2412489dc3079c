"""The first probes on real environments built by the harness, diagnosed from outside with
`--python` (the doctor is not installed in them, so they hold only what the test put there)."""

from __future__ import annotations

import pytest

from tests.harness import envs
from tests.harness.recipes import write_recipe

pytestmark = pytest.mark.venv


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_bare_environment_has_no_torch_and_no_false_failure(cli, make_env):
    venv = make_env(envs.BARE)
    r = check(cli, venv, "--only", "python,packages,torch")
    assert r.returncode == 0, r
    assert r.finding("torch.build")["status"] == "skip"
    assert "not installed" in r.finding("torch.build")["summary"]
    assert r.finding("packages.consistency")["status"] == "ok"
    assert r.json["python"]["executable"].startswith(str(venv.path))
    assert r.json["environment"]["distributions"] == {}


def test_a_recipe_that_needs_torch_turns_missing_torch_into_a_failure(cli, make_env, tmp_path):
    venv = make_env(envs.BARE)
    recipe = write_recipe(tmp_path / "needs-torch.toml", 'torch = "required"', name="needs-torch")
    r = check(cli, venv, "--only", "torch", "--recipe", recipe)
    assert r.returncode == 1, r
    f = r.finding("torch.build")
    assert f["status"] == "fail"
    assert any("pip install torch" in c for c in f["fix"]["commands"])
    assert r.json["recipe"] == "needs-torch"


@pytest.mark.slow
def test_torch_present_is_reported_as_the_cpu_build(cli, make_env):
    venv = make_env(envs.TORCH_ONLY)
    r = check(cli, venv, "--only", "python,packages,torch")
    assert r.returncode == 0, r
    f = r.finding("torch.build")
    assert f["status"] == "ok"
    assert f["details"]["version"] == "2.13.0+cpu"
    assert f["details"]["build"] == "CPU" and f["details"]["cuda"] is None
    assert r.json["environment"]["distributions"]["torch"] == "2.13.0+cpu"


def test_unmet_requirement_fails_pip_check_naming_what_is_missing(cli, make_env):
    venv = make_env(envs.UNMET)
    r = check(cli, venv, "--only", "packages")
    assert r.returncode == 1, r
    f = r.finding("packages.consistency")
    assert f["status"] == "fail"
    missing = {m["requires"].split(">")[0].split("=")[0] for m in f["details"]["missing"]}
    assert {"numpy", "numba"} <= missing
    assert "resampy 0.4.3 requires" in f["summary"]
    # the fix installs into the diagnosed interpreter, not the doctor's
    assert f["fix"]["commands"][0].startswith(f"{venv.python} -m pip install")
    # and pip itself agrees with the verdict
    pip_check = venv.pip("check", check=False)
    assert pip_check.returncode != 0 and "numba" in pip_check.stdout


def test_the_worker_writes_no_bytecode_into_the_diagnosed_environment(cli, make_env):
    venv = make_env(envs.UNMET)
    before = sorted(p.relative_to(venv.path) for p in venv.path.rglob("*"))
    check(cli, venv, "--only", "packages,python")
    after = sorted(p.relative_to(venv.path) for p in venv.path.rglob("*"))
    assert before == after
