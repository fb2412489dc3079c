"""`tts-doctor diff` and `tts-doctor summarize` on reports the real CLI wrote about real
environments (SciPy 1.12 vs SciPy 1.17 with librosa), plus hand-edited variants."""

from __future__ import annotations

import copy
import json

import pytest

from tests.harness import envs

pytestmark = pytest.mark.venv


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    from tests.conftest import build_env, run_cli

    out = tmp_path_factory.mktemp("reports")
    paths = {}
    for name, spec in (("good", envs.SCIPY_OLD), ("bad", envs.SCIPY_MODERN)):
        venv = build_env(spec)
        path = out / f"{name}.json"
        r = run_cli("check", "--python", str(venv.python), "--only", "python,packages",
                    "--report", str(path))
        assert r.returncode in (0, 1), r
        paths[name] = path
    return paths


def test_diff_names_the_package_that_explains_the_regression(cli, reports):
    r = cli("diff", str(reports["good"]), str(reports["bad"]), "--json")
    assert r.returncode == 1, r  # a finding got worse
    data = json.loads(r.stdout)
    assert data["regressions"] == 1
    assert data["findings"][0]["name"] == "packages.consistency"
    assert data["culprits"][0]["name"] == "librosa"
    changed = {c["name"]: (c["before"], c["after"]) for c in data["environment"]}
    assert changed["scipy"] == ("1.12.0", "1.17.1")
    assert changed["numpy"] == ("1.26.4", "2.4.6")


def test_diff_of_a_report_with_itself_is_clean(cli, reports):
    r = cli("diff", str(reports["good"]), str(reports["good"]))
    assert r.returncode == 0
    assert "No finding changed status." in r.stdout


def test_diff_ranks_driver_changes_for_cuda_regressions(tmp_path, reports):
    from tts_doctor.compare import diff, load_report

    good = load_report(reports["good"])
    bad = copy.deepcopy(good)
    good["environment"]["driver"] = "550.54"
    bad["environment"]["driver"] = "470.10"
    good["findings"].append({"id": "cuda.driver", "category": "cuda", "status": "ok",
                             "summary": "fine", "details": {}, "fix": None, "duration_s": 0})
    bad["findings"].append({"id": "cuda.driver", "category": "cuda", "status": "fail",
                            "summary": "The NVIDIA driver is too old", "details": {},
                            "fix": {"description": "x", "shim": None, "commands": []},
                            "duration_s": 0})
    result = diff(good, bad)
    assert result.culprits[0].name == "driver"
    assert result.culprits[0].before == "550.54"


def test_summarize_groups_hosts_by_identical_problems(cli, reports, tmp_path):
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for i, name in enumerate(["good", "bad", "bad", "good", "bad"]):
        data = json.loads(reports[name].read_text())
        data["host"] = f"gpu-node-{i}"
        (fleet / f"node{i}.json").write_text(json.dumps(data))
    (fleet / "garbage.json").write_text("{not json")
    r = cli("summarize", str(fleet), "--json")
    assert r.returncode == 1  # some hosts fail
    data = json.loads(r.stdout)
    assert [h["host"] for h in data["hosts"]] == [f"gpu-node-{i}" for i in range(5)]
    groups = {tuple(g["hosts"]): g["problems"] for g in data["groups"]}
    assert groups[("gpu-node-1", "gpu-node-2", "gpu-node-4")] == ["packages.consistency (fail)"]
    assert groups[("gpu-node-0", "gpu-node-3")] == []
    assert "garbage.json" in r.stderr
    text = cli("summarize", str(fleet)).stdout
    assert "3 host(s): packages.consistency (fail)" in text
    md = cli("summarize", str(fleet), "--markdown").stdout
    assert md.startswith("| host | python | packages |")


def test_bad_inputs_exit_2_with_one_line(cli, tmp_path):
    not_report = tmp_path / "x.json"
    not_report.write_text('{"hello": 1}')
    for args in (("diff", str(not_report), str(not_report)), ("summarize", str(not_report)),
                 ("diff", str(tmp_path / "missing.json"), str(not_report))):
        r = cli(*args)
        assert r.returncode == 2, r
        assert len(r.stderr.strip().splitlines()) <= 2 and "Traceback" not in r.stderr
