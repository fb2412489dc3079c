"""`check --save-facts FILE` and `check --facts FILE` (issue 11, item 4): collect once, judge
anywhere. A real environment's facts are judged again after the environment is gone, with the
same findings as the live run; a split probe's judge runs again with the reading doctor's
knowledge; secrets never reach the file; a bad file is one line and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PLUGINS
from tests.harness.venvs import EnvSpec

# numpy 2 + SciPy 1.17 with librosa 0.10.0's code (it calls the removed scipy.signal.hann):
# a real environment with a failing verdict, of its own, because the test moves it away
ROUNDTRIP = EnvSpec("facts-replay", steps=(
    ("install", "numpy==2.4.6", "scipy==1.17.1"),
    ("install", "--no-deps", "librosa==0.10.0")))


def _plugins(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "TTS_DOCTOR_PLUGINS": "facts_probes", **extra}


def _comparable(finding: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in finding.items() if k != "duration_s"}
    out["details"] = {k: v for k, v in (finding.get("details") or {}).items()
                      if k != "replayed"}
    return out


def test_facts_of_a_real_environment_judge_to_the_live_findings_after_it_is_gone(
        cli, make_env, tmp_path):
    venv = make_env(ROUNDTRIP)
    facts = tmp_path / "facts.json"
    live = cli("check", "--json", "--python", str(venv.python), "--save-facts", str(facts),
               cwd=tmp_path)
    assert live.returncode in (0, 1), live
    # librosa calls the removed scipy.signal.hann (no entry point here: at most a warn)
    assert live.finding("scipy.removed-names")["status"] in ("warn", "fail")
    saved = json.loads(facts.read_text())
    assert saved["format"] == "tts-doctor-facts" and saved["format_version"].startswith("1.")
    split = [pid for pid, e in saved["probes"].items() if "facts" in e]
    assert "torch.build" in split or split, saved["probes"].keys()
    moved = venv.path.with_name(venv.path.name + "-moved")
    venv.path.rename(moved)
    try:
        judged = cli("check", "--json", "--facts", str(facts), cwd=tmp_path)
    finally:
        moved.rename(venv.path)
    assert judged.returncode == live.returncode, judged
    a, b = live.json, judged.json
    assert [f["id"] for f in a["findings"]] == [f["id"] for f in b["findings"]]
    for x, y in zip(a["findings"], b["findings"]):
        assert _comparable(x) == _comparable(y), x["id"]
    assert a["python"] == b["python"]
    assert a["environment"] == b["environment"]
    assert a["summary"] == b["summary"]
    # what is not split is replayed, and says so
    replayed = [f for f in b["findings"] if "replayed" in f["details"]]
    assert all(saved["probes"][f["id"]].get("finding") for f in replayed)


def test_a_split_probe_is_judged_again_with_the_reading_doctors_knowledge(cli, tmp_path):
    facts = tmp_path / "facts.json"
    only = "factstest.worker,factstest.home,factstest.whole"
    live = cli("check", "--json", "--only", only, "--save-facts", str(facts),
               env=_plugins(FACTS_TEST_VALUE="7", FACTS_TEST_LIMIT="10"))
    assert live.returncode == 0, live
    worker = live.finding("factstest.worker")["details"]
    assert worker["collector_pid"] != worker["judge_pid"]  # collected in the worker
    home = live.finding("factstest.home")["details"]
    assert home["collector_pid"] == home["judge_pid"]
    # judged by a "later doctor" that knows a lower limit, on another machine state
    later = cli("check", "--json", "--facts", str(facts),
                env=_plugins(FACTS_TEST_VALUE="0", FACTS_TEST_LIMIT="5"))
    for pid in ("factstest.worker", "factstest.home"):
        f = later.finding(pid)
        assert f["status"] == "warn", f
        assert f["summary"] == "value 7 is over the limit 5"
        assert f["details"]["value"] == 7
    whole = later.finding("factstest.whole")
    assert whole["summary"] == "value 7 seen when it ran"  # replayed, not run again
    assert whole["details"]["replayed"]["collected_by"]
    assert later.returncode == 0  # warnings only


def test_a_collector_that_returns_what_json_cannot_carry_is_an_error_not_a_crash(
        cli, tmp_path):
    facts = tmp_path / "facts.json"
    r = cli("check", "--json", "--only", "factstest.bad-facts", "--save-facts", str(facts),
            env=_plugins())
    assert r.returncode == 1, r
    f = r.finding("factstest.bad-facts")
    assert f["status"] == "error" and "collector" in f["summary"]
    replay = cli("check", "--json", "--facts", str(facts), env=_plugins())
    assert replay.finding("factstest.bad-facts")["status"] == "error"


def test_secrets_in_collected_facts_never_reach_the_file(cli, tmp_path):
    secret = "hf_" + "Q7xK2mP9vL4nR8tZ3wY6bJ1cF5dH0gS"
    facts = tmp_path / "facts.json"
    r = cli("check", "--json", "--only", "factstest.*,python.platform", "--skip",
            "factstest.bad-facts", "--save-facts", str(facts),
            env=_plugins(HF_TOKEN=secret))
    assert r.returncode == 0, r
    text = facts.read_text()
    assert secret not in text
    assert secret not in r.stdout
    judged = cli("check", "--json", "--facts", str(facts), env=_plugins())
    assert secret not in judged.stdout


def test_a_probe_the_file_does_not_have_is_a_skip_that_says_so(cli, tmp_path):
    facts = tmp_path / "facts.json"
    cli("check", "--json", "--only", "python.platform", "--save-facts", str(facts))
    r = cli("check", "--json", "--facts", str(facts), "--only", "python.platform,numpy.abi")
    assert r.returncode == 0, r
    assert r.finding("python.platform")["status"] == "ok"
    missing = r.finding("numpy.abi")
    assert missing["status"] == "skip"
    assert "not in the facts file" in missing["summary"]


def _one_line_exit_2(r) -> str:
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.parametrize("content, words", [
    ("not json at all", "not JSON"),
    ("[1, 2]", "not a tts-doctor facts file"),
    ('{"format": "tts-doctor-report"}', "not a tts-doctor facts file"),
    ('{"format": "tts-doctor-facts", "format_version": "9.0", "probes": {}, '
     '"target": {"executable": "/x", "version": "3.11.0"}}', "not readable by this doctor"),
    ('{"format": "tts-doctor-facts", "format_version": "1.0", "probes": [], '
     '"target": {"executable": "/x", "version": "3.11.0"}}', "`probes`"),
    ('{"format": "tts-doctor-facts", "format_version": "1.0", "probes": {"a.b": 3}, '
     '"target": {"executable": "/x", "version": "3.11.0"}}', "neither facts nor a finding"),
    ('{"format": "tts-doctor-facts", "format_version": "1.0", "probes": {}, '
     '"target": {"version": "3.11.0"}}', "no executable"),
])
def test_a_bad_facts_file_is_one_line_and_exit_2(cli, tmp_path, content, words):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert words in _one_line_exit_2(cli("check", "--facts", str(bad)))


def test_facts_inputs_that_are_not_files_and_conflicting_flags_are_exit_2(cli, tmp_path):
    _one_line_exit_2(cli("check", "--facts", str(tmp_path / "missing.json")))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _one_line_exit_2(cli("check", "--facts", str(fifo), timeout=30))
    good = tmp_path / "facts.json"
    cli("check", "--json", "--only", "python.platform", "--save-facts", str(good))
    for extra in (["--recipe", "piper"], ["--set", "model.offline=1"],
                  ["--save-facts", str(tmp_path / "again.json")]):
        assert "--facts" in _one_line_exit_2(cli("check", "--facts", str(good), *extra))
    # --save-facts into a missing folder is refused before anything runs
    _one_line_exit_2(cli("check", "--only", "python.platform", "--save-facts",
                         str(tmp_path / "no" / "such" / "f.json")))
    assert not (tmp_path / "no").exists()


def test_damaged_recorded_facts_or_findings_are_errors_or_exit_2_not_tracebacks(
        cli, tmp_path):
    good = tmp_path / "facts.json"
    cli("check", "--json", "--only", "packages.consistency,factstest.whole", "--save-facts",
        str(good), env=_plugins())
    data = json.loads(good.read_text())
    assert "facts" in data["probes"]["packages.consistency"]
    # facts a judge cannot read: that probe's `error` (exit 1), the others still judged
    data["probes"]["packages.consistency"] = {"facts": ["not", "a", "mapping"]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = cli("check", "--json", "--facts", str(bad), env=_plugins())
    assert r.returncode == 1, r
    f = r.finding("packages.consistency")
    assert f["status"] == "error" and "judge" in f["summary"]
    assert r.finding("factstest.whole")["status"] == "ok"
    # a recorded finding that is not one: the file is damaged, one line and exit 2
    data["probes"]["factstest.whole"] = {"finding": {"id": "factstest.whole"}}
    bad.write_text(json.dumps(data))
    assert "damaged" in _one_line_exit_2(cli("check", "--json", "--facts", str(bad),
                                             env=_plugins()))


def test_the_facts_file_is_the_documented_shape(tmp_path, cli):
    facts = tmp_path / "facts.json"
    cli("check", "--json", "--only", "python.platform,torch.build", "--save-facts", str(facts))
    data = json.loads(Path(facts).read_text())
    assert set(data) >= {"format", "format_version", "tool", "created", "host", "target",
                         "interpreter", "variables", "context", "probes"}
    torch = data["probes"]["torch.build"]
    assert "facts" in torch and "metadata_version" in torch["facts"]
