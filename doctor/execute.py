"""Run one probe function and turn what it returns or raises into a finding.

Used by the doctor's process for in-process probes and by the worker for isolated ones; so
standard library only (it runs inside the diagnosed interpreter too).
"""

from __future__ import annotations

import time
import traceback
from typing import Optional

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


def execute(spec: ProbeSpec, ctx: Context) -> Optional[Finding]:
    """Run one probe function here and now; exceptions become an `error` finding."""
    t0 = time.perf_counter()
    try:
        result = spec.func(ctx)
    except Exception as exc:  # a probe bug must not end the run
        return Finding(
            spec.id, spec.category, Status.ERROR,
            f"probe raised {type(exc).__name__}: {exc}"[:300],
            {"traceback": traceback.format_exc()[-OUTPUT_TAIL:]},
            _error_fix(spec), time.perf_counter() - t0,
        )
    if result is None:
        return None
    if result.status in (Status.WARN, Status.FAIL) and result.fix is None:
        return Finding(spec.id, spec.category, Status.ERROR,
                       f"probe returned {result.status} without a fix: {result.summary}",
                       dict(result.details), _error_fix(spec), time.perf_counter() - t0)
    return Finding(spec.id, spec.category, result.status, result.summary,
                   dict(result.details), result.fix, time.perf_counter() - t0)
