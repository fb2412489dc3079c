"""The usage index is built in a process of its own in a cold check (doctor/usage.py
`start`): when that process dies without writing the index, the probes that wait for it
fall back to their own scan at once, and the check reports as usual.

Fault injection through a real plugin, tests/plugins/index_crash.py, which ends only the
index process (every process of a check loads the plugins).
"""

from __future__ import annotations

import os

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
