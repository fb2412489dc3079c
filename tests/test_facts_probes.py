"""Each probe module converted to collect/judge gives, judged from its recorded facts, the
findings of the live run (issue 11, item 4): `check --save-facts F`, then `check --facts F`,
through the real CLI, on a real environment where the module's probes have something to say.
Every finding of the module must come from its judge (no `replayed` marks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.harness import envs, envs_numeric
from tests.harness.apps import write_app
from tests.harness.recipes import write_recipe

pytestmark = pytest.mark.venv


def _comparable(finding: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in finding.items() if k != "duration_s"}


Case = Callable[[Callable[..., Any], Path], "tuple[list[str], dict[str, Any]]"]


def _scipy(make_env: Callable[..., Any], tmp: Path) -> tuple[list[str], dict[str, str]]:
    # SciPy 1.17 with librosa 0.10.0 reached from an application: a fail and a warn
    venv = make_env(envs.SCIPY_MODERN)
    app = write_app(tmp / "app", "from librosa import beat\n")
    return (["--python", str(venv.python), "--project", str(app)],
            {"scipy.removed-names": "fail", "scipy.resample": "warn"})


def _onnxruntime(make_env: Callable[..., Any], tmp: Path) -> tuple[list[str], dict[str, str]]:
    # the development venv's CPU build of ONNX Runtime under a recipe that needs CUDA: a fail
    recipe = write_recipe(tmp / "cuda.toml", 'cuda = "required"', name="cuda", engine="piper")
    return (["--recipe", recipe],
            {"onnxruntime.install": "ok", "onnxruntime.providers": "fail"})


def _audio(make_env: Callable[..., Any], tmp: Path) -> tuple[list[str], dict[str, Any]]:
    # soundfile 0.10.3 (no bundled libsndfile), pydub and pysox without ffmpeg or sox
    venv = make_env(envs_numeric.AUDIO_LEGACY)
    return (["--python", str(venv.python)],
            {"audio.sndfile": {"ok", "fail"},  # whether this machine has libsndfile
             "audio.backends": "warn", "audio.ffmpeg": "warn", "audio.sox": "warn"})


def _ttsfrd(make_env: Callable[..., Any], tmp: Path) -> tuple[list[str], dict[str, Any]]:
    # PyPI's ttsfrd and kantts placeholders on Python 3.11: fails, a warn and skips
    venv = make_env(envs.TTSFRD_PLACEHOLDER)
    return (["--python", str(venv.python)],
            {"ttsfrd.origin": "fail", "ttsfrd.platform": "warn", "ttsfrd.libs": "skip",
             "ttsfrd.version": "skip", "ttsfrd.engine": "fail", "ttsfrd.resource": "skip",
             "ttsfrd.kantts": "fail"})


def _ttsfrd_real(make_env: Callable[..., Any], tmp: Path) -> tuple[list[str], dict[str, Any]]:
    # the real ttsfrd 0.4.2 with its libraries, no resource folder: initialize() fails
    venv = make_env(envs.TTSFRD_REAL)
    return (["--python", str(venv.python)],
            {"ttsfrd.origin": "ok", "ttsfrd.platform": "ok", "ttsfrd.libs": "ok",
             "ttsfrd.version": "ok", "ttsfrd.engine": "ok", "ttsfrd.resource": "fail",
             "ttsfrd.kantts": "skip"})


# module -> (the check's arguments, the live statuses expected of its probes)
CASES: dict[str, Case] = {
    "scipy": _scipy,
    "onnxruntime": _onnxruntime,
    "audio": _audio,
    "ttsfrd": _ttsfrd,
    "ttsfrd-real": _ttsfrd_real,
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_recorded_facts_judge_to_the_live_findings(cli, make_env, tmp_path, module):
    args, expected = CASES[module](make_env, tmp_path)
    module = module.split("-")[0]
    facts = tmp_path / "facts.json"
    live = cli("check", "--json", "--only", f"{module}.*", *args, "--save-facts", str(facts),
               cwd=tmp_path)
    assert live.returncode in (0, 1), live
    findings = live.json["findings"]
    assert {f["id"] for f in findings} == set(expected), live
    for f in findings:
        want = expected[f["id"]]
        assert f["status"] in ({want} if isinstance(want, str) else want), f
    saved = json.loads(facts.read_text())
    for f in findings:  # every probe of the module is split: facts, not a finding
        assert "facts" in saved["probes"][f["id"]], f["id"]
    judged = cli("check", "--json", "--facts", str(facts), "--only", f"{module}.*",
                 cwd=tmp_path)
    assert judged.returncode == live.returncode, judged
    assert [_comparable(f) for f in judged.json["findings"]] == \
        [_comparable(f) for f in findings]
    assert not any("replayed" in f["details"] for f in judged.json["findings"])
