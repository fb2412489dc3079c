"""Split probes (collect, then judge) for the facts-file tests (tests/test_facts.py).

Loaded through TTS_DOCTOR_PLUGINS=facts_probes with this folder on PYTHONPATH. The collectors
observe the process they run in (its environment variables stand for the machine); the judges
compare with FACTS_TEST_LIMIT, read when they run: it stands for the knowledge of the doctor
that judges, so a test can judge the same facts "with a later doctor".
"""

from __future__ import annotations

import os
import sys

from tts_doctor.finding import Fix, manual, ok, warn
from tts_doctor.registry import probe


def _observe(ctx):
    return {"value": int(os.environ.get("FACTS_TEST_VALUE", "0")),
            "python": ".".join(map(str, sys.version_info[:3])),
            "collector_pid": os.getpid(),
            "token": os.environ.get("HF_TOKEN", "")}


def _judge(facts):
    limit = int(os.environ.get("FACTS_TEST_LIMIT", "100"))
    details = {"value": facts["value"], "limit": limit, "python": facts["python"],
               "collector_pid": facts["collector_pid"], "judge_pid": os.getpid(),
               "token": facts["token"]}
    if facts["value"] > limit:
        return warn(f"value {facts['value']} is over the limit {limit}",
                    Fix("Lower the value.", commands=(manual("true"),)), **details)
    return ok(f"value {facts['value']} is within the limit {limit}", **details)


@probe("factstest.worker", title="a split probe collected in the worker", isolated=True,
       collect=_observe)
def in_worker(ctx, facts):
    return _judge(facts)


@probe("factstest.home", title="a split probe collected in the doctor's process",
       collect=_observe)
def at_home(ctx, facts):
    return _judge(facts)


@probe("factstest.whole", title="a probe that is not split (replayed from a facts file)")
def whole(ctx):
    return ok(f"value {os.environ.get('FACTS_TEST_VALUE', '0')} seen when it ran")


@probe("factstest.bad-facts", title="a collector that returns what JSON cannot carry",
       isolated=True, collect=lambda ctx: {"not json": object()})
def bad_facts(ctx, facts):
    return ok("unreachable")
