"""The isolated worker: runs native-import probes and answers one JSON line per event.

The parent (tts_doctor.runner, through tts_doctor.isolation) starts `python -c BOOT <fd>`
with stdout and stderr sent to a capture file, and keeps a private pipe (file descriptor
`fd`) for the protocol, so that C++ code printing to stdout (ttsfrd does) cannot corrupt
it. This module runs inside the diagnosed interpreter: standard library of CPython 3.7+ only.
Requests arrive on stdin, one JSON object a line: {"id": probe id, "context": {...}}. Events go
back on the pipe:

    {"event": "ready", "python": {...}}
    {"event": "start", "id": ..., "offset": capture-file offset}
    {"event": "finding", "finding": {...}}
    {"event": "facts", "id": ..., "facts": ..., "seconds": s, "output": "...",
     "footprint": {...}}   (with $TTS_DOCTOR_FOOTPRINT=1: tts_doctor.footprint)

A split probe (`collect=`) only collects here: its facts go back in a "facts" event and the
doctor's process judges them (tts_doctor.execute.judge), where the doctor's own libraries are.

faulthandler writes the Python stack to the capture file if a probe segfaults or aborts; the
parent reads it back from the probe's offset and names the signal.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import time
import traceback
from typing import Any, Optional

OUTPUT_TAIL = 4000


def _flush_c_stdio() -> None:
    """Flush C-level stdio buffers: native code (ttsfrd's C++) may hold printed lines there."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:
        pass


def _offset() -> int:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    _flush_c_stdio()
    try:
        return os.fstat(1).st_size
    except OSError:
        return 0


def _captured(since: int) -> str:
    end = _offset()
    if end <= since:
        return ""
    try:
        with open("/proc/self/fd/1", "rb") as f:
            f.seek(max(since, end - OUTPUT_TAIL))
            return f.read(end - since).decode("utf-8", "replace")
    except OSError:
        return ""


def run_one(spec: Any, context: Any) -> Optional[dict[str, Any]]:
    """Run one probe; its finding as a dict, or None when the probe does not apply."""
    from tts_doctor.execute import execute

    finding = execute(spec, context)
    return finding.to_dict() if finding else None


def _missing(probe_id: str, registry: Any) -> dict[str, Any]:
    """A probe the parent knows but this interpreter could not load (a plugin failed here)."""
    why = "; ".join(registry.plugin_errors) or "its module is not importable here"
    return {"id": probe_id, "category": probe_id.split(".", 1)[0], "status": "error",
            "summary": f"probe {probe_id} is not available in the diagnosed interpreter",
            "details": {"plugin_errors": registry.plugin_errors},
            "fix": {"description": f"Make the plugin importable there: {why}"[:500],
                    "shim": None, "commands": []},
            "duration_s": 0.0}


def main(fd: int, modules: str = "") -> None:
    from tts_doctor.isolation import child_channel, die_with_parent

    die_with_parent()
    send = child_channel(fd)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    import tts_doctor
    from tts_doctor import footprint, registry

    # the doctor's own files are not what the facts depend on (the memo stamps them apart)
    own = os.path.dirname(os.path.abspath(tts_doctor.__file__))
    if os.environ.get(footprint.ENV):
        # the folder of links a foreign interpreter imports the doctor from (runner.py)
        support = os.environ.get(footprint.ENV, "")[2:]
        footprint.start(skip=tuple(p for p in (own + os.sep, os.path.realpath(own) + os.sep,
                                               support) if len(p) > 1))

    # only the modules of the probes this worker will run (all of them if not told)
    specs = registry.load_modules(modules.split(",")) if modules else registry.load_all()
    send({"event": "ready", "pid": os.getpid(), "python": {"version": sys.version.split()[0]}})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        spec = specs.get(request["id"])
        context = registry.Context.from_dict(request.get("context") or {})
        offset = _offset()
        send({"event": "start", "id": request["id"], "offset": offset, "t": time.time()})
        if spec is None:
            send({"event": "finding", "finding": _missing(request["id"], registry)})
            continue
        if spec.collect is not None:
            from tts_doctor.execute import collect

            facts, error, seconds = collect(spec, context)
            if error is None:
                event = {"event": "facts", "id": spec.id, "facts": facts, "seconds": seconds,
                         "output": _captured(offset)[-OUTPUT_TAIL:]}
                if footprint.recording():
                    event["footprint"] = footprint.take()
                send(event)
                continue
            finding = error.to_dict()
            output = _captured(offset)
            if output.strip():
                finding["details"].setdefault("output", output[-OUTPUT_TAIL:])
            send({"event": "finding", "finding": finding})
            continue
        try:
            finding = run_one(spec, context)
        except BaseException:  # a probe must never take the worker down by raising
            finding = {"id": spec.id, "category": spec.category, "status": "error",
                       "summary": "the probe raised outside its own error handling",
                       "details": {"traceback": traceback.format_exc()[-OUTPUT_TAIL:]},
                       "fix": None, "duration_s": 0.0}
        output = _captured(offset)
        if finding and output.strip() and finding["status"] != "ok":
            finding["details"].setdefault("output", output[-OUTPUT_TAIL:])
        send({"event": "finding", "finding": finding})


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")
