"""Judge a facts file in a process that cannot look at the machine (the blindfold of
tests/test_facts_purity.py: dists queries, importlib.metadata, os.stat/listdir/scandir/walk,
open() and subprocesses all raise), for a probe module's own round-trip tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def judge_blindfolded(facts: Path, cwd: Path) -> dict[str, dict[str, Any]]:
    """The findings of every probe judged from `facts`, by id; AssertionError when a judge
    read the machine."""
    from tests.test_facts_purity import JUDGE_BLINDFOLDED

    proc = subprocess.run([sys.executable, "-c", JUDGE_BLINDFOLDED, str(facts)],
                          capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                               "HOME": str(cwd)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    judged = json.loads(proc.stdout.splitlines()[-1])
    assert judged["seen"] == [], judged["seen"]
    return {f["id"]: f for f in judged["findings"]}


def comparable(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding without its timing, for comparing runs."""
    return {k: v for k, v in finding.items() if k != "duration_s"}


def assert_judged_alike(live: list[dict[str, Any]], judged: list[dict[str, Any]],
                        facts: Path, cwd: Path) -> None:
    """The findings judged again from a facts file (`judged`, a `check --facts` run) are the
    live run's, timing aside; and so are those of the judges alone, blindfolded (they read
    nothing of the machine to say so)."""
    want = [comparable(f) for f in live]
    assert [comparable(f) for f in judged] == want
    blind = judge_blindfolded(facts, cwd)
    assert [comparable(blind[f["id"]]) for f in live] == want
