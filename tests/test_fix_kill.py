"""`kill -9` of `tts-doctor fix` at random points, many times: `fix --undo` always restores the
environment (site-packages listed and hashed exactly as before).

The journal is written (atomically, fsync'd) before the change it records, so whatever moment
the kill lands on (the check, the journal write, between the journal and the .pth, the .pth's
own atomic write, the re-probe) the journal knows about every change that may have happened.
Half of the tries kill the moment the .pth appears (the window that used to leave a shim
`--undo` did not know about), the other half at a random time over a whole run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.harness.envs_shims import SHIMS_FIX, exclusive, snapshot

pytestmark = [pytest.mark.venv, pytest.mark.slow]

TRIES = int(os.environ.get("TTS_DOCTOR_KILL_TRIES", "30"))

PLUGIN = '''
from tts_doctor.finding import Fix, ok, warn
from tts_doctor.registry import probe


@probe("testkill.hann", title="test: scipy.signal.hann", isolated=True)
def hann(ctx):
    import scipy.signal

    if getattr(scipy.signal, "hann", None) is None:
        return warn("scipy.signal.hann is missing",
                    Fix("Restore the removed names", shim="scipy_names"))
    return ok("scipy.signal.hann present")
'''


def _env(tmp_path, state):
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "testkill_probe.py").write_text(PLUGIN)
    env = dict(os.environ, PYTHONPATH=str(plugins), TTS_DOCTOR_PLUGINS="testkill_probe",
               TTS_DOCTOR_STATE_DIR=str(state), NO_COLOR="1")
    env.pop("GITHUB_ACTIONS", None)
    return env


def _doctor(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tts_doctor", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_at_random_points_then_undo_restores(make_env, tmp_path, cli):
    rng = random.Random(int(os.environ.get("TTS_DOCTOR_KILL_SEED", "20261201")))
    with exclusive(make_env(SHIMS_FIX)) as venv:
        py = str(venv.python)
        cli("shims", "uninstall", "--python", py)
        pth = venv.site / "tts_doctor_shims.pth"
        clean = snapshot(venv.site)
        # one whole run, for the length of the random window
        env = _env(tmp_path, tmp_path / "state-full")
        t0 = time.monotonic()
        proc = _doctor("fix", "--python", py, "--only", "testkill", env=env)
        out, err = proc.communicate(timeout=300)
        full = time.monotonic() - t0
        assert proc.returncode == 0 and pth.exists(), (out, err)
        undo = _doctor("fix", "--undo", "--python", py, env=env)
        assert undo.wait(timeout=300) == 0 and snapshot(venv.site) == clean

        outcomes = {"killed before the .pth": 0, "killed with the .pth written": 0,
                    "finished before the kill": 0}
        failures = []
        for i in range(TRIES):
            env = _env(tmp_path, tmp_path / f"state-{i}")
            proc = _doctor("fix", "--python", py, "--only", "testkill", env=env)
            if i % 2 == 0:  # the moment the .pth appears, plus 0-20 ms
                deadline = time.monotonic() + 300
                while not pth.exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.0005)
                time.sleep(rng.uniform(0, 0.02))
            else:
                time.sleep(rng.uniform(0, full))
            finished = proc.poll() is not None
            if not finished:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            key = ("finished before the kill" if finished else
                   "killed with the .pth written" if pth.exists() else "killed before the .pth")
            outcomes[key] += 1
            undo = _doctor("fix", "--undo", "--python", py, env=env)
            u_out, u_err = undo.communicate(timeout=300)
            after = snapshot(venv.site)
            if undo.returncode != 0 or after != clean:
                failures.append((i, key, undo.returncode, u_out, u_err,
                                 sorted(set(after.items()) ^ set(clean.items()))))
                cli("shims", "uninstall", "--python", py)  # the next try starts clean
        print(f"\n{TRIES} kill -9 tries: {outcomes}; undo failed {len(failures)} times")
        assert not failures, failures
        assert outcomes["killed with the .pth written"] >= 1, outcomes
