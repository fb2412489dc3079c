"""Run one probe function and turn what it returns or raises into a finding.

Used by the doctor's process for in-process probes and by the worker for isolated ones; so
standard library only (it runs inside the diagnosed interpreter too).

A split probe (`@probe(..., collect=...)`) runs in two steps: `collect` observes where the
probe runs and returns facts, which are normalised through JSON (what the judge sees live is
exactly what it sees when a facts file is judged later); `judge` turns them into a finding in
the doctor's process.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import Any, Optional

from tts_doctor.finding import Finding, Fix, Status, manual
from tts_doctor.registry import Context, ProbeSpec

OUTPUT_TAIL = 4000


def _error_fix(spec: ProbeSpec) -> Fix:
    return Fix(
        f"The probe {spec.id} itself failed; its traceback is in the details. This is a bug "
        "in tts-doctor or an environment it did not expect: please report it with the JSON "
        "report attached (secrets are redacted).",
        commands=(manual("tts-doctor", "check", "--only", spec.id, "--json"),),
    )


def _raised(spec: ProbeSpec, exc: BaseException, t0: float, what: str = "probe") -> Finding:
    return Finding(
        spec.id, spec.category, Status.ERROR,
        f"{what} raised {type(exc).__name__}: {exc}"[:300],
        {"traceback": traceback.format_exc()[-OUTPUT_TAIL:]},
        _error_fix(spec), time.perf_counter() - t0,
    )


def collect(spec: ProbeSpec, ctx: Context) -> tuple[Any, Optional[Finding], float]:
    """Run a split probe's collector: (facts, None, seconds), or (None, error finding,
    seconds) when it raised or returned something JSON cannot carry."""
    t0 = time.perf_counter()
    assert spec.collect is not None
    try:
        facts = json.loads(json.dumps(spec.collect(ctx), allow_nan=False))
    except Exception as exc:  # a probe bug must not end the run
        return None, _raised(spec, exc, t0, "the probe's collector"), time.perf_counter() - t0
    return facts, None, time.perf_counter() - t0


def judge(spec: ProbeSpec, ctx: Context, facts: Any, collect_s: float = 0.0
          ) -> Optional[Finding]:
    """Judge collected facts (in the doctor's process); exceptions become an `error`."""
    t0 = time.perf_counter()
    try:
        result = spec.func(ctx, facts)
    except Exception as exc:  # a judge bug must not end the run
        return _raised(spec, exc, t0 - collect_s, "the probe's judge")
    return _finding(spec, result, t0 - collect_s)


def execute(spec: ProbeSpec, ctx: Context) -> Optional[Finding]:
    """Run one probe function here and now (both steps of a split probe); exceptions become
    an `error` finding."""
    if spec.collect is not None:
        facts, error, seconds = collect(spec, ctx)
        return error if error is not None else judge(spec, ctx, facts, seconds)
    t0 = time.perf_counter()
    try:
        result = spec.func(ctx)
    except Exception as exc:  # a probe bug must not end the run
        return _raised(spec, exc, t0)
    return _finding(spec, result, t0)


def _finding(spec: ProbeSpec, result: Any, t0: float) -> Optional[Finding]:
    if result is None:
        return None
    if result.status in (Status.WARN, Status.FAIL) and result.fix is None:
        return Finding(spec.id, spec.category, Status.ERROR,
                       f"probe returned {result.status} without a fix: {result.summary}",
                       dict(result.details), _error_fix(spec), time.perf_counter() - t0)
    return Finding(spec.id, spec.category, result.status, result.summary,
                   dict(result.details), result.fix, time.perf_counter() - t0)
