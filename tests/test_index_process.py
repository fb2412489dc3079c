"""The usage index is built in a process of its own in a cold check (doctor/usage.py
`start`): when that process dies without writing the index, the probes that wait for it
fall back to their own scan at once, and the check reports as usual; while it is built, the
lanes' workers yield the CPU to it.

Fault injection through a real plugin, tests/plugins/index_crash.py, which ends only the
index process (every process of a check loads the plugins).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from tests.conftest import PLUGINS, run_cli


def test_an_index_process_that_dies_leaves_the_usage_probes_their_own_scan(tmp_path):
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    env = {"PYTHONPATH": path, "TTS_DOCTOR_PLUGINS": "index_crash",
           "TTS_DOCTOR_CACHE": str(tmp_path / "cache")}
    # the subprocess timeout is a guard: without the watcher the probes would wait 300 s
    res = run_cli("check", "--json", "--only", "scipy.removed-names,numpy.aliases",
                  env=env, cwd=tmp_path, timeout=200)
    assert res.returncode in (0, 1), res
    assert "Traceback" not in res.stderr
    for probe_id in ("scipy.removed-names", "numpy.aliases"):
        finding = res.finding(probe_id)
        assert finding["status"] in ("ok", "warn", "fail", "skip"), finding
    # the same check with the index process alive gives the same verdicts
    res_alive = run_cli("check", "--json", "--only", "scipy.removed-names,numpy.aliases",
                        env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache2")}, cwd=tmp_path,
                        timeout=200)
    assert [(f["id"], f["status"]) for f in res.json["findings"]] == \
        [(f["id"], f["status"]) for f in res_alive.json["findings"]]


def _nice(pid: int) -> tuple[int, Optional[int]]:
    """A process's nice value and its session's autogroup nice (None without autogroups)."""
    group: Optional[int] = None
    try:
        group = int(Path(f"/proc/{pid}/autogroup").read_text().split("nice")[-1])
    except (OSError, ValueError):
        pass
    try:
        return os.getpriority(os.PRIO_PROCESS, pid), group
    except OSError:  # it ended meanwhile (the interpreter probe's short-lived child)
        return -100, group


def _fresh_session_nice() -> Optional[int]:
    """The autogroup nice value a new session starts with (0; None without autogroups for new
    sessions): a worker's baseline, whatever the session of the test that starts the doctor
    (CI runs the tests in init's session, which has no autogroup file to read)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", "print(open('/proc/self/autogroup').read())"],
                         capture_output=True, text=True, start_new_session=True).stdout
    try:
        return int(out.split("nice")[-1])
    except ValueError:
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="Linux autogroups")
@pytest.mark.parametrize("index", ["building", "written", "none"])
def test_workers_yield_the_cpu_only_while_an_index_process_is_built(tmp_path, index):
    """The index process and its closure import are a cold check's critical path: while the
    index is built, the lanes' workers run with their session's nice value 10 higher (each
    worker is a session of its own, and the scheduler shares the CPU between sessions first),
    and back as it was once the index is written; their own nice value never changes, nor
    anything of the index process; a check without an index leaves the workers as they were."""
    import subprocess

    from tests.conftest import REPO
    from tests.test_signals import _children_of, _hanging_entry, _wait_for_children

    # building: the recipe's entry hangs at import time, the index process waits for its
    # closure import and numpy.aliases's worker for the index; fault.hang's worker sleeps
    recipe, env = _hanging_entry(tmp_path)
    if index == "written":
        (tmp_path / "lib" / "hangs_on_import.py").write_text("VALUE = 1\n")
    env["TTS_DOCTOR_PLUGINS"] = "faulty_probes"
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), env["PYTHONPATH"]])
    only = "fault.hang" if index == "none" else "fault.hang,numpy.aliases"
    proc = subprocess.Popen([sys.executable, "-m", "tts_doctor", "check", "--recipe",
                             str(recipe), "--only", only, "--timeout", "120", "--json"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        kids = _wait_for_children(proc, 3 if index == "building" else 1)
        if index == "written":  # the index process has written the index and ended
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and any(
                    "tts_doctor.usage import child" in _cmdline(pid)
                    for pid in _children_of(proc.pid)):
                time.sleep(0.2)
            kids = _wait_for_children(proc, 1)
        time.sleep(1.0)
        base = _nice(proc.pid)
        seen = {pid: (_cmdline(pid), _nice(pid)) for pid in kids}
    finally:
        proc.kill()
        proc.communicate(timeout=120)
    seen = {pid: v for pid, v in seen.items() if v[1][0] != -100}
    workers = [n for c, n in seen.values() if "tts_doctor.worker" in c]
    indexers = [n for c, n in seen.values() if "tts_doctor.usage import child" in c]
    assert workers, seen
    step = 10 if index == "building" else 0
    fresh = _fresh_session_nice()  # every child is a session of its own
    for own, group in workers:
        assert own == base[0], seen
        assert group == (None if fresh is None else min(fresh + step, 19)), seen
    assert len(indexers) == (1 if index == "building" else 0), seen
    for own, group in indexers:
        assert (own, group) == (base[0], fresh), seen
