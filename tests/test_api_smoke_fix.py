"""The library surface beside `check`: `tts_doctor.api.smoke` (exported as
`tts_doctor.run_smoke`) and `tts_doctor.api.fix_plan`, each against the CLI's JSON for the same
input: the built-in reference recipe (a real synthesis), and a real broken environment
(tests/harness/envs_families.py TEXT_NO_DATA: g2p_en and misaki without their requirements,
NLTK without its data, no spaCy model) whose plan `fix --dry-run --json` prints.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import tts_doctor
from tts_doctor import api

from tests.conftest import REPO, build_env, run_cli
from tests.harness import envs_families

TEXT = "Hello there, this is a test."


def test_the_package_exports_smoke_and_the_fix_plan_lazily():
    code = ("import sys, tts_doctor; assert 'tts_doctor.api' not in sys.modules; "
            "f = tts_doctor.run_smoke; p = tts_doctor.fix_plan; "
            "import tts_doctor.api as a; assert f is a.smoke and p is a.fix_plan; "
            "import tts_doctor.smoke.session; assert tts_doctor.run_smoke is a.smoke; "
            "print('torch' in sys.modules, 'click' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]  # nothing heavy, no CLI framework
    assert {"run_smoke", "fix_plan", "SmokeRun", "FixPlan"} <= set(tts_doctor.__all__)


def _stable(section: dict) -> dict:
    """The parts of a smoke section that do not depend on timing or memory noise."""
    ladder = section["ladder"]
    return {"keys": sorted(section), "engine": section["engine"], "text": section["text"],
            "audio": section["audio"],
            "ladder": {"enabled": ladder["enabled"], "worked": ladder["worked"],
                       "rungs": [(r["rung"], r["plan"], r["outcome"]) for r in ladder["rungs"]]},
            "stages": [(s["name"], s["calls"]) for s in section["stages"]]}


def test_smoke_of_the_reference_recipe_gives_the_section_the_cli_prints():
    run = api.smoke(recipe=api.load_recipe("reference-hifigan-v1"), text=TEXT,
                    text_source="--text")
    assert isinstance(run, api.SmokeRun)
    data = run.to_dict()
    assert run.exit_code() == 0, [(f.id, f.status, f.summary) for f in run.findings]
    assert run.samples is not None and len(run.samples) == data["smoke"]["audio"]["samples"]
    assert run.sample_rate == data["smoke"]["audio"]["sample_rate"] == 22050

    r = run_cli("smoke", "--recipe", "reference-hifigan-v1", "--text", TEXT, "--json")
    assert r.returncode == 0, r
    assert _stable(data["smoke"]) == _stable(r.json["smoke"])
    assert [(f.id, f.status.value) for f in run.findings] == \
        [(f["id"], f["status"]) for f in r.json["findings"]]
    assert data["schema_version"] == r.json["schema_version"]


def test_smoke_input_errors_are_user_errors():
    from tts_doctor.errors import UserError

    with pytest.raises(UserError, match="choose a model"):
        api.smoke(text=TEXT)
    with pytest.raises(UserError, match="no text to speak"):
        api.smoke(engine="reference")


@pytest.mark.venv
def test_fix_plan_of_a_broken_environment_is_the_plan_fix_dry_run_json_prints(tmp_path):
    venv = build_env(envs_families.TEXT_NO_DATA)
    only = ("frontend,packages",)
    env = {"TTS_DOCTOR_STATE_DIR": str(tmp_path / "state")}
    r = run_cli("fix", "--dry-run", "--json", "--python", str(venv.python), "--only", only[0],
                env=env, cwd=tmp_path)
    assert r.returncode == 0, r
    plan = api.fix_plan(python=str(venv.python), only=only)
    assert isinstance(plan, api.FixPlan) and plan.python == str(venv.python)
    got = plan.to_dict()
    assert got == r.json
    by_id = {f["id"]: f["alternatives"] for f in got["findings"]}
    # what is broken there, as the plan says to repair it
    nltk = by_id["frontend.nltk-data"][0]["steps"][0]["argv"]
    assert nltk[:3] == [str(venv.python), "-m", "nltk.downloader"]
    assert "averaged_perceptron_tagger_eng" in nltk
    pip = by_id["packages.consistency"][0]["steps"][0]["argv"]
    assert pip[:4] == [str(venv.python), "-m", "pip", "install"] and "numpy>=1.13.1" in pip
    # the report it planned from is the check of that environment
    assert {f.id for f in plan.report.findings} >= {"frontend.nltk-data", "packages.consistency"}
    # planning changed nothing: no journal, the same plan again
    assert not (tmp_path / "state").exists()
    assert api.fix_plan(python=str(venv.python), only=only,
                        report=plan.report).to_dict() == got
