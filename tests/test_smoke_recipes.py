"""Every built-in recipe through `tts-doctor smoke --recipe NAME`, as shipped, on this
machine: it synthesizes (exit 0) or ends in a failed `smoke.load` that says what is missing
and how to get it (exit 1), never a usage error (exit 2) for a well-formed recipe. Run from an
empty folder with an empty ModelScope cache, as a fresh CI job would be."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.conftest import REPO, build_env, run_cli
from tests.harness.venvs import EnvSpec

RECIPES = sorted(p.stem for p in (REPO / "recipes").glob("*.toml"))
SCHEMA = json.loads((REPO / "doctor" / "report-schema.json").read_text())
# What each recipe needs that this machine has (the doctor's own .venv: torch CPU, piper-tts
# and its voice; no ModelScope, IndexTTS-2 or CosyVoice, no model downloads).
SYNTHESIZES = {"reference-hifigan-v1", "piper"}
MISSING = {  # recipe -> words the failed smoke.load must contain
    "sambert-hifigan-16k": ("modelscope does not import",
                            "is not in the local ModelScope cache"),
    "indextts2": ("indextts.infer_v2 does not import", "checkpoints does not exist",
                  "--set speaker=PATH.wav"),
    "cosyvoice": ("cannot import cosyvoice_adapter",
                  "pretrained_models/CosyVoice2-0.5B does not exist"),
}


def test_every_recipe_is_covered():
    assert set(RECIPES) == SYNTHESIZES | set(MISSING)


@pytest.mark.parametrize("name", RECIPES)
def test_builtin_recipe_through_smoke(name, tmp_path):
    import jsonschema

    r = run_cli("smoke", "--recipe", name, "--json", cwd=tmp_path,
                env={"MODELSCOPE_CACHE": str(tmp_path / "modelscope")}, timeout=900)
    assert r.returncode in (0, 1), r  # never 2: the recipe is well formed
    jsonschema.validate(r.json, SCHEMA)
    findings = {f["id"]: f for f in r.json["findings"]}
    if name in SYNTHESIZES:
        assert r.returncode == 0, r
        assert findings["smoke.synthesis"]["status"] == "ok"
        assert findings["output.sample-rate"]["status"] == "ok"
        return
    assert r.returncode == 1, r
    load = findings["smoke.load"]
    assert load["status"] == "fail"
    for words in MISSING[name]:
        assert words in load["summary"], (words, load["summary"])
    fix = load["fix"]
    assert fix["description"]
    for cmd in fix["commands"]:
        shlex.split(cmd)  # each is one well-formed shell line
    assert [f["status"] for f in r.json["findings"]] == ["fail"]


@pytest.mark.slow
@pytest.mark.venv
def test_reference_recipe_without_torch_is_a_load_failure(tmp_path):
    """The doctor installed without its smoke extra: the reference engine has no torch. Text
    mode died with KeyError 'text' (issue 12); it is a failed smoke.load with the install."""
    env = build_env(EnvSpec("smoke-no-torch", steps=(("install", "-e", str(REPO)),)))
    for fmt in ((), ("--json",)):
        r = run_cli("smoke", "--recipe", "reference-hifigan-v1", *fmt, python=str(env.python),
                    cwd=tmp_path)
        assert r.returncode == 1, r
        assert "Traceback" not in r.stderr and "KeyError" not in r.stdout + r.stderr, r
        if fmt:
            load = r.finding("smoke.load")
            assert load["status"] == "fail" and "torch does not import" in load["summary"]
            assert "pip install torch" in load["fix"]["commands"][0]
        else:
            assert "smoke.load" in r.stdout and "torch does not import" in r.stdout
