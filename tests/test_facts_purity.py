"""Judges never read the machine (issue 11, item 4): a split probe's judge is a pure function
of the context and the collected facts. A full `check --save-facts` of this repository's
environment (torch, numba, SciPy, ONNX Runtime, Piper: most probes do real work here) is
judged again in a process where every way of looking at the installed environment raises:
the distribution queries of tts_doctor.dists, importlib.metadata, os.stat/listdir/scandir,
open() and subprocesses. Every finding must come out as the live run's."""

from __future__ import annotations

import json

from tests.harness.blindfold import judge_blindfolded

JUDGE_BLINDFOLDED = r'''
import builtins, importlib.metadata, json, os, subprocess, sys
from tts_doctor import dists, factfile, registry

specs = registry.select()
recorded = factfile.read(sys.argv[1])  # the file itself is read before the blindfold
# the report header reads this process's environment variables: the file brings its own
SEEN = []


def refuse(what):
    def refused(*args, **kwargs):
        SEEN.append(what)
        raise AssertionError(f"a judge read the machine: {what}{args[:1]!r}")
    return refused


for name in ("search_path", "distributions", "distribution", "version", "all_distributions",
             "find_spec", "has_module", "summary", "_index"):
    setattr(dists, name, refuse(f"dists.{name}"))
for name in ("distributions", "distribution", "version", "metadata", "files", "requires"):
    setattr(importlib.metadata, name, refuse(f"importlib.metadata.{name}"))
for name in ("stat", "lstat", "listdir", "scandir", "walk"):
    setattr(os, name, refuse(f"os.{name}"))
builtins.open = refuse("open")
subprocess.Popen = refuse("subprocess.Popen")
subprocess.run = refuse("subprocess.run")
findings = [f.to_dict() for f in factfile.judge(specs, recorded)]
print(json.dumps({"findings": findings, "seen": SEEN}))
'''


def _comparable(finding):
    out = {k: v for k, v in finding.items() if k != "duration_s"}
    out["details"] = {k: v for k, v in (finding.get("details") or {}).items()
                      if k != "replayed"}
    return out


def test_every_judge_gives_the_live_finding_without_looking_at_the_machine(cli, tmp_path):
    facts = tmp_path / "facts.json"
    live = cli("check", "--json", "--save-facts", str(facts), cwd=tmp_path, timeout=900)
    assert live.returncode in (0, 1), live
    saved = json.loads(facts.read_text())
    split = sorted(pid for pid, e in saved["probes"].items() if "facts" in e)
    assert len(split) >= 5, split
    # asserts the blindfolded process succeeded and saw no read of the machine
    by_id = judge_blindfolded(facts, tmp_path)
    for f in live.json["findings"]:
        assert f["id"] in by_id, f["id"]
        assert _comparable(by_id[f["id"]]) == _comparable(f), f["id"]
