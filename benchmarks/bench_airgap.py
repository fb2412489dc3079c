"""What the air-gap audit costs `check`'s closure import (doctor/reach.py under the diagnosed
interpreter, issue 14 item 3).

The same closure import (the child `tts_doctor.usage.import_closure` starts: reach.py as the
source of `python -c`, the request on stdin) of the modules this repository's .venv holds
(torch, numpy, scipy.signal, numba, onnxruntime, piper), once with doctor/airgap.py's recording
(socket block, download watch, audit hook) and once with an airgap stand-in whose activate()
does nothing, alternating. Reported: the wall time of the child process, the import time the
child measures itself (`seconds`, from after activate() to the end of the imports) and the
child's CPU time (user + system; the least disturbed by other load on a shared machine).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

from _harness import REPO, Row, Section

ENTRIES = ["torch", "numpy", "scipy.signal", "numba", "onnxruntime", "piper"]
NULL_AIRGAP = ("def activate():\n    pass\n\n\n"
               "def audit():\n    return {'connections': [], 'downloads': []}\n")


def _child(airgap_source: str) -> tuple[float, float, float]:
    reach = (REPO / "doctor" / "reach.py").read_text()
    request = {"entries": ENTRIES, "airgap": {"file": str(REPO / "doctor" / "airgap.py"),
                                              "source": airgap_source}}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", reach], input=json.dumps(request),
                          capture_output=True, text=True, cwd="/tmp")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    answer = json.loads([x for x in proc.stdout.splitlines() if x.startswith("{")][-1])
    if answer["failed"]:
        raise RuntimeError(f"the closure import failed: {answer['failed']}")
    return wall, float(answer["seconds"]), cpu


def run(repeats: int) -> list[Section]:
    real = (REPO / "doctor" / "airgap.py").read_text()
    candidates = {"closure import, activate() a no-op": NULL_AIRGAP,
                  "closure import with doctor/airgap.py (the audit)": real}
    for source in candidates.values():
        _child(source)  # warm the file cache
    walls: dict[str, list[float]] = {n: [] for n in candidates}
    inner: dict[str, list[float]] = {n: [] for n in candidates}
    cpus: dict[str, list[float]] = {n: [] for n in candidates}
    for _ in range(repeats):
        for name, source in candidates.items():
            wall, seconds, cpu = _child(source)
            walls[name].append(wall)
            inner[name].append(seconds)
            cpus[name].append(cpu)
    rows = [Row(n, walls[n], note=f"import time measured in the child: median "
                              f"{statistics.median(inner[n]) * 1000:.0f} ms; CPU time of the "
                              f"child (user + system): median "
                              f"{statistics.median(cpus[n]) * 1000:.0f} ms")
            for n in candidates]
    return [Section(
        "The air-gap audit in check's closure import",
        "doctor/reach.py run as `check` runs it (a fresh process of the interpreter, reach.py "
        f"as `python -c` source, the request on stdin) importing {', '.join(ENTRIES)} from "
        "this repository's .venv; with the real doctor/airgap.py and with a stand-in whose "
        "activate() does nothing, alternating.",
        "python benchmarks/run.py --only airgap --repeats 7", rows,
        baseline="closure import, activate() a no-op")]
