"""A stopped doctor leaves nothing behind: no worker or smoke child running, no temporary file.

`check` runs the faulty plugin's hanging probe (fault.hang: the worker sleeps for an hour), so
a worker is certainly alive when the signal arrives. Survivors are counted by the marker
variable every child inherits (TTS_DOCTOR_PARENT_PID = the CLI's pid), read from /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import PLUGINS, REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


def _children_of(pid: int) -> list[int]:
    """Processes that carry the doctor's marker for `pid` (children and their children)."""
    found = []
    marker = f"TTS_DOCTOR_PARENT_PID={pid}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == pid:
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().split(")")[-1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


# a doctor that has not stopped this long after the signal ignored it: the hanging probes
# time out only after 120 s, when the doctor ends with exit 1 by itself
STOP_TIMEOUT = 60


def _default_signals() -> None:
    """In the doctor's child, before exec: the signals under test at their default action. A
    doctor keeps a signal its parent ignores ignored (`nohup` ignores SIGHUP, a non-interactive
    shell's background job SIGINT), and so would a test run started that way."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _stopped_by(returncode: int, sig: int) -> bool:
    """The exit status of a doctor that a signal stopped: killed by it again after cleaning up
    (-sig), or 128 + sig (SIGINT: the CLI's KeyboardInterrupt exit, 130)."""
    return returncode in (-sig, 128 + sig)


def _start(args: list[str], tmp: Path, preexec: Callable[[], None] = _default_signals
           ) -> subprocess.Popen[str]:
    env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1", TTS_DOCTOR_PLUGINS="faulty_probes",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PLUGINS),
                                                        os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "tts_doctor", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)


def _wait_for_children(proc: subprocess.Popen[str], count: int = 1) -> list[int]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        kids = _children_of(proc.pid)
        if len(kids) >= count:
            return kids
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the worker never started")


def _gone(pids: list[int], timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists()
                 and (Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0] != "Z")]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("tts-doctor"))


CHECK = ["check", "--only", "fault.hang,fault.healthy", "--timeout", "120", "--json"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_check_stops_every_worker_and_removes_temp_files(tmp_path, sig):
    proc = _start(CHECK, tmp_path)
    kids = _wait_for_children(proc)
    time.sleep(0.5)  # the hanging probe is running
    proc.send_signal(sig)
    proc.communicate(timeout=STOP_TIMEOUT)
    assert _stopped_by(proc.returncode, sig), proc.returncode
    assert _gone(kids) == []
    assert _children_of(proc.pid) == []
    assert _leftovers(tmp_path) == []


def test_kill_9_of_check_leaves_no_worker_and_the_next_run_sweeps_its_folders(tmp_path):
    """SIGKILL runs no code of ours: the kernel kills the workers (PR_SET_PDEATHSIG) and the
    next run removes the folders whose owner is dead."""
    python = Path(sys.executable)
    # --python (another path to the same interpreter) makes the worker use a support folder
    link = tmp_path / "bin" / "python"
    link.parent.mkdir()
    link.symlink_to(python)
    (tmp_path / "tmp").mkdir()
    proc = _start(["check", "--python", str(link), *CHECK[1:]], tmp_path / "tmp")
    kids = _wait_for_children(proc)
    proc.kill()
    proc.communicate(timeout=STOP_TIMEOUT)
    assert _gone(kids) == [], "a worker outlived the doctor's kill -9"
    left = _leftovers(tmp_path / "tmp")
    again = _start(["check", "--only", "fault.healthy", "--python", str(link), "--json"],
                   tmp_path / "tmp")
    again.communicate(timeout=300)
    assert again.returncode == 0
    assert _leftovers(tmp_path / "tmp") == [], f"not swept: {left}"


def test_sigterm_to_check_of_another_interpreter_removes_its_support_folder(tmp_path):
    """--python puts the doctor's package in a support folder for the worker: SIGTERM ends
    the worker and removes the folder."""
    link = tmp_path / "bin" / "python"
    link.parent.mkdir()
    link.symlink_to(Path(sys.executable))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _start(["check", "--python", str(link), *CHECK[1:]], tmp)
    kids = _wait_for_children(proc)
    deadline = time.monotonic() + 60
    while not _leftovers(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(name.startswith("tts-doctor-support-") for name in _leftovers(tmp))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=STOP_TIMEOUT)
    assert _stopped_by(proc.returncode, signal.SIGTERM), proc.returncode
    assert _gone(kids) == [] and _children_of(proc.pid) == []
    assert _leftovers(tmp) == []


def test_check_that_ends_normally_leaves_nothing(tmp_path):
    proc = _start(["check", "--only", "fault.healthy,python", "--json"], tmp_path)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert _leftovers(tmp_path) == [] and _children_of(proc.pid) == []


HANGS = "import time\n\ndef hangs(text):\n    time.sleep(3600)\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_smoke_stops_the_synthesis_child_and_removes_its_folder(tmp_path, sig):
    (tmp_path / "hanging_voice.py").write_text(HANGS)
    env_path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1", PYTHONPATH=env_path)
    proc = subprocess.Popen([sys.executable, "-m", "tts_doctor", "smoke", "--callable",
                             "hanging_voice:hangs", "--text", "Hello there.", "--json",
                             "--timeout", "600"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    kids = _wait_for_children(proc)
    time.sleep(1.0)
    proc.send_signal(sig)
    proc.communicate(timeout=STOP_TIMEOUT)
    assert _stopped_by(proc.returncode, sig), proc.returncode
    assert _gone(kids) == [] and _children_of(proc.pid) == []
    assert _leftovers(tmp) == []


HANGS_ON_IMPORT = "import time\n\ntime.sleep(3600)\n"


def _hanging_entry(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A recipe whose entry module hangs at import time, for the closure import to run."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "hangs_on_import.py").write_text(HANGS_ON_IMPORT)
    recipe = tmp_path / "hang.toml"
    recipe.write_text('name = "hang"\ndescription = "an entry that hangs"\n'
                      'engine = "callable"\nentry = ["hangs_on_import"]\n'
                      '[audio]\nsample_rate = 16000\n[smoke]\ntext = "Hello."\n')
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1", TTS_DOCTOR_CACHE=str(tmp_path / "c"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(lib),
                                                        os.environ.get("PYTHONPATH")])))
    return recipe, env


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_check_leaves_no_closure_import_running(tmp_path, sig):
    """The closure import (doctor/reach.py) imports the deployment's entry modules in a child
    of its own: an entry that hangs at import time dies with the doctor, and the folder of
    the caches it writes is removed (after SIGKILL, by the next run)."""
    recipe, env = _hanging_entry(tmp_path)
    args = [sys.executable, "-m", "tts_doctor", "check", "--recipe", str(recipe), "--only",
            "model.offline-import", "--json"]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    tmp = tmp_path / "tmp"
    _wait_for_children(proc)
    deadline = time.monotonic() + 120  # the closure import has begun: its folder is there
    while not any(n.startswith("tts-doctor-reach-") for n in _leftovers(tmp)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.returncode
        time.sleep(0.05)
    kids = _children_of(proc.pid)  # the index process, and its child the closure import
    kids += [k for kid in kids for k in _children_of(kid)]
    assert len(kids) >= 2, kids
    time.sleep(0.5)  # the entry's import is sleeping
    proc.send_signal(sig)
    proc.communicate(timeout=STOP_TIMEOUT)
    assert _stopped_by(proc.returncode, sig), proc.returncode
    assert _gone(kids, timeout=20) == [], "the closure import outlived the doctor"
    if sig == signal.SIGKILL:
        assert [n for n in _leftovers(tmp) if n.startswith("tts-doctor-reach-")]
        (tmp_path / "lib" / "hangs_on_import.py").write_text("VALUE = 1\n")
        again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=300)
        assert again.returncode == 0, again.stderr
    assert _leftovers(tmp) == []


STOPPING = """
import os, sys
from tts_doctor import isolation, usage
isolation.temp_dir("work")
isolation.cleanup()  # what a SIGTERM or the interpreter's exit runs first
try:
    isolation.temp_dir("reach")
    print("made")
except OSError as exc:
    print("refused:", exc)
answer = usage.import_closure(None, ["json"])
print("closure:", answer.get("error"), sorted(answer.get("loaded") or {}))
"""


def test_a_stopping_doctor_makes_no_folder_and_starts_no_closure_import(tmp_path):
    """Once cleanup() has begun, a thread of the doctor's that asks for a temporary folder
    (a probe that falls back to building the usage index itself, its index process being
    killed first) is refused: the folder would be made after cleanup removed the others, and
    left behind by the dying doctor. CI's SIGTERM run of the test above left such a folder."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", STOPPING], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "refused: tts-doctor is stopping" in res.stdout, res.stdout
    assert "closure: tts-doctor is stopping []" in res.stdout, res.stdout
    assert _leftovers(tmp_path) == []


def test_a_doctor_started_under_nohup_keeps_running_on_sighup(tmp_path):
    """A signal the parent ignores stays ignored (`nohup tts-doctor check`, as Python keeps an
    ignored SIGINT): SIGHUP leaves the check running; SIGTERM still stops it cleanly."""
    def nohup() -> None:
        _default_signals()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = _start(CHECK, tmp_path, nohup)
    kids = _wait_for_children(proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGHUP)
    time.sleep(2.0)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=STOP_TIMEOUT)
    assert _stopped_by(proc.returncode, signal.SIGTERM), proc.returncode
    assert _gone(kids) == [] and _leftovers(tmp_path) == []
