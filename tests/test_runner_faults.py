"""Fault injection: probes that segfault, abort, hang, exit or scribble on stdout inside the
worker. Each must yield its own `error` finding, the others must complete, and the run must
end in bounded time. The faulty probes are a real plugin (tests/plugins/faulty_probes.py)
loaded by the real CLI."""

from __future__ import annotations

import time

import pytest


def _run(cli, plugin_env, only, timeout="3"):
    t0 = time.monotonic()
    r = cli("check", "--json", "--only", only, "--timeout", timeout, env=plugin_env)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("probe, words", [
    ("fault.segfault", ["SIGSEGV", "segmentation fault"]),
    ("fault.abort", ["SIGABRT"]),
    ("fault.kill", ["SIGKILL"]),
    ("fault.exit", ["exited with code 7"]),
    ("fault.hang", ["timed out after 3 s"]),
])
def test_each_fault_is_its_own_error_and_the_next_probe_still_runs(cli, plugin_env, probe,
                                                                     words):
    r, _ = _run(cli, plugin_env, f"{probe},fault.healthy,python.platform")
    assert r.returncode == 1, r
    bad = r.finding(probe)
    assert bad["status"] == "error"
    for w in words:
        assert w in bad["summary"]
    assert bad["fix"]["description"]
    assert r.finding("fault.healthy")["status"] == "ok"
    assert r.finding("python.platform")["status"] == "ok"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_all_faults_in_one_run_are_bounded_and_restart_the_worker(cli, plugin_env, jobs):
    t0 = time.monotonic()
    r = cli("check", "--json", "--only", "fault.*,torch.lane-neighbour", "--timeout", "2", "--jobs",
            jobs, env=plugin_env)
    seconds = time.monotonic() - t0
    statuses = {f["id"]: f["status"] for f in r.json["findings"]}
    assert statuses == {
        "fault.segfault": "error", "fault.abort": "error", "fault.hang": "error",
        "fault.exit": "error", "fault.kill": "error", "fault.raises": "error",
        "fault.noisy": "ok", "fault.healthy": "ok", "fault.inprocess-hang": "error",
        "torch.lane-neighbour": "ok",  # the other lane with --jobs 2, after them with 1
    }
    # Registration order puts fault.healthy after five probes that each killed their worker:
    # its ok proves a fresh worker took over. Two 2-second timeouts (one in the worker, one
    # in-process, run side by side) plus a restart per death stay far below 9 x 2 s.
    assert seconds < 18


def test_segfault_names_the_frame_that_crashed(cli, plugin_env):
    r, _ = _run(cli, plugin_env, "fault.segfault")
    details = r.finding("fault.segfault")["details"]
    assert details["signal"] == "SIGSEGV"
    assert any("faulty_probes.py" in frame and "segfault" in frame
               for frame in details["stack"])


def test_native_output_cannot_corrupt_the_protocol(cli, plugin_env):
    r, _ = _run(cli, plugin_env, "fault.noisy,fault.healthy")
    assert r.returncode == 0, r
    assert r.finding("fault.noisy")["summary"] == "survived its own output"


def test_a_raising_probe_carries_its_traceback(cli, plugin_env):
    r, _ = _run(cli, plugin_env, "fault.raises")
    f = r.finding("fault.raises")
    assert f["status"] == "error"
    assert "ValueError: planted failure" in f["summary"]
    assert "planted failure" in f["details"]["traceback"]


def test_an_interpreter_that_cannot_run_the_collector_is_one_line_and_exit_2(cli, tmp_path):
    """Not a Python at all: said once, as a usage error, not as 48 error findings."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'this interpreter is broken' >&2\nexit 3\n")
    fake.chmod(0o755)
    r = cli("check", "--json", "--python", str(fake), "--only", "python,torch")
    assert r.returncode == 2, r
    assert r.stdout == "" and "this interpreter is broken" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
