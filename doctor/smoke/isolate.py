"""Run one smoke session in a child process, under a watchdog.

Model code is native code (torch, ONNX Runtime, the user's own extensions) and may segfault,
abort or hang; the doctor must not die of it. The child runs `session.run` and profiles
itself (the profiler measures the process that synthesizes), streams progress lines, and
hands back its findings, the `smoke` section, and the samples (an .npy file). If it dies or
stalls, the parent reports a `smoke.run` error that names the signal or the timeout, the
stage it was in, and the innermost frames of the crash.

Protocol, one JSON object a line on a private pipe (fd passed as argv[1]); the request is a
JSON file (argv[2]):

    {"event": "progress", "message": "..."}
    {"event": "result", "findings": [...], "section": {...}, "samples": PATH|null, "rate": N}
    {"event": "usage_error", "message": "..."}     (EngineConfigError: exit code 2)
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

from tts_doctor.errors import UserError
from tts_doctor.finding import Finding, Fix, Status

DEFAULT_TIMEOUT = 1800.0
OUTPUT_TAIL = 4000


class UsageError(UserError):
    """The child found an error in the user's input (an EngineConfigError)."""


def _options_to_json(opts: Any) -> dict[str, Any]:
    data = dataclasses.asdict(opts)
    data["budget_lengths"] = list(data.get("budget_lengths") or ())
    return data


def _child(fd: int, request_path: str) -> None:
    from tts_doctor.isolation import child_channel, die_with_parent

    die_with_parent()
    send = child_channel(fd)
    import faulthandler

    faulthandler.enable(file=sys.stderr, all_threads=True)
    from tts_doctor.smoke import session
    from tts_doctor.smoke.engine import EngineConfigError

    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    raw = request["options"]
    raw["budget_lengths"] = tuple(raw.get("budget_lengths") or ())
    opts = session.Options(**raw)
    try:
        result = session.run(opts, lambda message: send({"event": "progress",
                                                         "message": message}))
    except EngineConfigError as exc:
        send({"event": "usage_error", "message": str(exc)})
        return
    except Exception as exc:  # a bug of ours or of the engine adapter: report, do not crash
        send({"event": "error", "summary": f"{type(exc).__name__}: {exc}"[:300],
              "traceback": traceback.format_exc()[-OUTPUT_TAIL:]})
        return
    samples_path = None
    if result.samples is not None:
        import numpy as np

        samples_path = request["samples_path"]
        np.save(samples_path, np.asarray(result.samples, dtype=np.float32))
    send({"event": "result", "findings": [f.to_dict() for f in result.findings],
          "section": result.section.to_dict(), "samples": samples_path,
          "rate": result.sample_rate})


# The current folder stays importable (as with `python -m`): `--callable mypkg.tts:fn`
# names the user's own code.
_BOOT = ("import sys\n"
         "from tts_doctor.smoke.isolate import _child\n"
         "_child(int(sys.argv[1]), sys.argv[2])\n")


def _error(summary: str, details: dict[str, Any], fix: Fix, duration: float) -> Finding:
    return Finding("smoke.run", "smoke", Status.ERROR, summary, details, fix, duration)


def run(opts: Any, progress: Callable[[str], None] = lambda _: None,
        timeout: float = DEFAULT_TIMEOUT) -> Any:
    """`session.run(opts)` in a child process; a crash or hang becomes a smoke.run error."""
    from tts_doctor import isolation
    from tts_doctor.smoke.session import Result

    isolation.install_handlers()
    workdir = isolation.temp_dir("smoke")
    request_path = os.path.join(workdir, "request.json")
    samples_path = os.path.join(workdir, "samples.npy")
    with open(request_path, "w", encoding="utf-8") as f:
        json.dump({"options": _options_to_json(opts), "samples_path": samples_path}, f)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    child = isolation.Child(sys.executable, _BOOT, (request_path,), env,
                            stdin=subprocess.DEVNULL)
    child.start()
    proc = child.proc
    assert proc is not None
    describe_exit, crash_stack = isolation.describe_exit, isolation.crash_stack
    events = child.events
    deadline = time.monotonic() + timeout
    stage = "starting"

    def output() -> str:
        return child.output_since(0)

    try:
        while True:
            try:
                event = events.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                child.kill()
                details: dict[str, Any] = {"timeout_s": timeout, "stage": stage}
                if output().strip():
                    details["output"] = output()
                return Result([_error(
                    f"smoke timed out after {timeout:g} s while {stage}", details,
                    Fix("The synthesis hung or is far slower than expected (a driver call, "
                        "a lock, CPU inference of a GPU model). Rerun with a longer timeout "
                        "or a shorter text to see which.",
                        commands=(f"tts-doctor smoke --timeout {timeout * 4:g} -v",)),
                    time.perf_counter() - t0)], {})
            if event is None:
                rc = proc.wait()
                how, details = describe_exit(rc)
                out = output()
                if out.strip():
                    details["output"] = out
                    stack = crash_stack(out)
                    if stack:
                        details["stack"] = stack
                details["stage"] = stage
                if rc == 0:
                    how = "the smoke process ended without a result"
                return Result([_error(
                    f"smoke crashed while {stage}: {how.replace('the worker process', 'it')}",
                    details,
                    Fix("Native code of the model's stack crashed the process that ran it; your "
                        "program would crash the same way. The stack and output name the "
                        "library: reinstall it, or try another device or precision.",
                        commands=("tts-doctor smoke --device cpu --precision fp32 -v",)),
                    time.perf_counter() - t0)], {})
            kind = event.get("event")
            if kind == "progress":
                stage = str(event.get("message") or stage)
                progress(stage)
            elif kind == "error":
                proc.wait()
                return Result([_error(
                    f"smoke failed while {stage}: {event.get('summary')}",
                    {"traceback": event.get("traceback"), "stage": stage},
                    Fix("The smoke session raised where it should have reported: this is a bug "
                        "in tts-doctor or in the engine adapter. Please report it with the "
                        "JSON report attached (secrets are redacted).",
                        commands=("tts-doctor smoke --json -v",)),
                    time.perf_counter() - t0)], {})
            elif kind == "usage_error":
                proc.wait()
                raise UsageError(event.get("message") or "invalid input")
            elif kind == "result":
                proc.wait()
                samples = None
                if event.get("samples"):
                    import numpy as np

                    samples = np.load(event["samples"])
                return Result([Finding.from_dict(f) for f in event.get("findings") or []],
                              event.get("section") or {}, samples, int(event.get("rate") or 0))
    finally:
        child.close()
        isolation.remove_temp(workdir)

