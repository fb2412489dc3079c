"""`tts-doctor check` in the big environment of a ModelScope / IndexTTS-2 deployment, cold and
warm, against `python -m torch.utils.collect_env` in the same environment (issue 10).

The environment is tests/harness/envs.py BIG_STACK (Python 3.11, torch 2.13.0 CPU,
transformers 4.52.1, modelscope, gradio, librosa, numba, ... about 105 distributions and
17,000 .py files), built or reused from .cache/test-envs. The doctor runs from this
repository's .venv and diagnoses it with `--python`, from an empty folder (no application
code). Cold: a new, empty TTS_DOCTOR_CACHE for every run, as in a CI job or a Docker build.
Warm: one cache shared by the runs (the warm-up run fills it): the usage index's per-file cache
and the facts memo (doctor/memo.py) judge again what nothing changed since. Warm --fresh: the
same cache, but every probe observes (the memo is not read). Targets: cold at most 1.0x
collect_env, warm at most 0.6x.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Callable

from _harness import BIN, REPO, Section, interleave


def _env() -> str:
    sys.path.insert(0, str(REPO))
    from tests.harness import venvs
    from tests.harness.envs import BIG_STACK

    return str(venvs.build(BIG_STACK).python)


def _run(args: list[str], cwd: str, env: dict[str, str], ok: tuple[int, ...]) -> None:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True)
    if proc.returncode not in ok:
        raise RuntimeError(f"{args} exited {proc.returncode}: {proc.stderr[-800:]!r}")


def _load() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "unknown"


def run(repeats: int) -> list[Section]:
    python = _env()
    # the doctor's own modules byte-compiled, as `pip install` leaves an installed doctor:
    # from a source checkout under PYTHONDONTWRITEBYTECODE=1 every process of a check (the
    # doctor and its workers) would compile them again (about 0.7 s of CPU a check)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "doctor"),
                    str(REPO / "shims")], capture_output=True, check=False)
    entries = _entries(python)
    load_before = _load()
    cwd = tempfile.mkdtemp(prefix="tts-doctor-bench-cwd-")
    warm_cache = tempfile.mkdtemp(prefix="tts-doctor-bench-warm-")
    doctor = [str(BIN / "tts-doctor"), "check", "--json", "--python", python]
    base = {k: v for k, v in os.environ.items() if k != "TTS_DOCTOR_CACHE"}

    def cold() -> None:
        cache = tempfile.mkdtemp(prefix="tts-doctor-bench-cold-")
        try:
            _run(doctor, cwd, {**base, "TTS_DOCTOR_CACHE": cache}, (0, 1))
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    candidates: dict[str, Callable[[], None]] = {
        "python -m torch.utils.collect_env": lambda: _run(
            [python, "-m", "torch.utils.collect_env"], cwd, base, (0,)),
        "tts-doctor check, cold (empty TTS_DOCTOR_CACHE)": cold,
        "tts-doctor check, warm": lambda: _run(doctor, cwd,
                                               {**base, "TTS_DOCTOR_CACHE": warm_cache}, (0, 1)),
        "tts-doctor check --fresh, warm (every probe observes)": lambda: _run(
            [*doctor, "--fresh"], cwd, {**base, "TTS_DOCTOR_CACHE": warm_cache}, (0, 1)),
        # the parts no check can skip, for the targets' sake: a check imports torch in its
        # worker (torch.build), and a cold one imports the TTS stack's entry modules
        'python -c "import torch" (part of every check)': lambda: _run(
            [python, "-c", "import torch"], cwd, base, (0,)),
        "the closure import alone (doctor/reach.py, part of a cold check)": lambda: _closure(
            python, entries),
        # with the closure import, the floor of a cold check (`_floor`): numba.jit's kernel (one
        # @njit compiled and called), and reading every file the scan pass reads with the
        # search of each for the watched libraries' names (no regex, no parse: the least any
        # scan of every installed file does)
        "numba: import and one @njit compile (numba.jit's kernel)": lambda: _run(
            [python, "-c", NUMBA_KERNEL], cwd, base, (0,)),
        "reading every scanned file, searched for the watched names (part of a cold check)":
            lambda: _run([sys.executable, "-c", READ_PASS, python], cwd, base, (0,)),
    }
    cpu: dict[str, list[float]] = {}
    candidates = {name: _cpu_of(name, fn, cpu) for name, fn in candidates.items()}
    try:
        rows = interleave(candidates, repeats)
        load_after = _load()
        notes = [_floor(rows, cpu),
                 _where_the_time_goes(doctor, cwd, {**base, "TTS_DOCTOR_CACHE": warm_cache},
                                      "warm"),
                 _index_cost(python, cwd, base),
                 f"machine load (1, 5, 15 min averages of runnable processes, 2 cores) at the "
                 f"start of the runs: {load_before}; at their end: {load_after}",
                 "CPU seconds (user + sys of every process of a run, median; far less "
                 "sensitive to the machine's load than the wall times; on an idle machine a run "
                 "takes at least its CPU seconds / 2 cores): "
                 + ", ".join(f"{name.split(' (')[0]} {statistics.median(v):.2f}"
                             for name, v in cpu.items() if v)]
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
        shutil.rmtree(warm_cache, ignore_errors=True)
    count = subprocess.run([python, "-c", "import importlib.metadata as m; "
                            "print(len(list(m.distributions())))"],
                           capture_output=True, text=True).stdout.strip()
    return [Section(
        "tts-doctor check in a big deployment environment, cold and warm, vs collect_env",
        f"tests/harness/envs.py BIG_STACK: {count} distributions (torch 2.13.0 CPU, "
        "transformers 4.52.1, modelscope, gradio, librosa, numba, ...). The doctor diagnoses it "
        "with --python from an empty folder; cold runs get a new empty TTS_DOCTOR_CACHE each, "
        "warm runs share one (the usage index's file cache and the facts memo; --fresh: every "
        "probe observes). Targets: cold <= 1.0x, warm <= 0.6x collect_env.",
        f"python benchmarks/run.py --only bigcheck --repeats {repeats}", rows,
        baseline="python -m torch.utils.collect_env", unit="s", notes=notes)]


NUMBA_KERNEL = ("import numba\n@numba.njit(cache=False)\ndef f(x):\n    return x + 1\n"
                "assert f(1) == 2")
READ_PASS = ("import os, sys; from tts_doctor import usage\n"
             "needles = usage.Scanner(False).file_scan.needles\n"
             "code = usage.discover(usage.target_sys_path(sys.argv[1]), None)\n"
             "for src in code.sources:\n"
             "    data = usage._read(src.path, os.stat(src.path).st_size) or b''\n"
             "    found = [t for t in needles if t in data]\n")
FLOOR = ("the closure import alone", "numba: import and one @njit compile",
         "reading every scanned file")


def _floor(rows: list, cpu: dict[str, list[float]]) -> str:
    """What no cold check can go under on this machine, from the medians measured here.

    A cold check must import the entry modules (the closure import, torch with them), run
    numba's kernel, and read every file the scan pass reads. Even if those were its only
    work, all side by side on the 2 cores, and torch's probes ran in the closure import's
    own interpreter, it would take their CPU seconds / 2; collect_env is one process."""
    parts = {name: statistics.median(v) for name, v in cpu.items()
             if v and name.startswith(FLOOR)}
    base = next((r for r in rows if r.name == "python -m torch.utils.collect_env"), None)
    if len(parts) != len(FLOOR) or base is None:
        return "floor of a cold check: not measured"
    total = sum(parts.values())
    wall = base.median
    return (f"floor of a cold check (CPU seconds of the closure import, numba's kernel and "
            f"the file reading, {' + '.join(f'{v:.2f}' for v in parts.values())} = "
            f"{total:.2f} s, over 2 cores): at least {total / 2:.2f} s, "
            f"{total / 2 / wall:.2f}x collect_env's median wall time ({wall:.2f} s), even "
            "with no other probe and torch's probes judged in the closure import's process")


def _cpu_of(name: str, fn: Callable[[], None], into: dict[str, list[float]]
            ) -> Callable[[], None]:
    """`fn`, recording the CPU time of the processes it ran and waited for."""
    import resource

    def run() -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        into.setdefault(name, []).append(after.ru_utime - before.ru_utime
                                         + after.ru_stime - before.ru_stime)

    return run


def _entries(python: str) -> list[str]:
    """The entry modules a check without a recipe imports in this environment."""
    from tts_doctor import usage

    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return [m for top, mods in usage.KNOWN_STACKS.items() for m in mods
            if os.path.exists(os.path.join(site, top))]


def _closure(python: str, entries: list[str]) -> None:
    """The closure import on those entry modules (doctor/reach.py in a process of the
    target, started by usage.import_closure), as a cold check runs it."""
    from tts_doctor import usage

    answer = usage.import_closure(python, entries)
    if answer.get("error") or not answer.get("loaded"):
        raise RuntimeError(f"the closure import failed: {str(answer)[:300]}")


def _where_the_time_goes(doctor: list[str], cwd: str, env: dict[str, str], label: str) -> str:
    """The slowest probes of one more check (probes run side by side in three lanes)."""
    import json

    proc = subprocess.run(doctor, cwd=cwd, env=env, capture_output=True, text=True)
    report = json.loads(proc.stdout)
    findings = report["findings"]
    top = sorted(findings, key=lambda f: -f["duration_s"])[:4]
    reused = (report.get("memo") or {}).get("reused") or []
    return (f"one more {label} check: {len(findings)} findings, {len(reused)} of them judged "
            f"from the facts memo; slowest probes: "
            + ", ".join(f"{f['id']} {f['duration_s']:.2f} s" for f in top))


def _index_cost(python: str, cwd: str, env: dict[str, str]) -> str:
    """The one scan pass alone (doctor/usage.py), cold then warm, and its closure import."""
    code = ("import sys, time; from tts_doctor import scan, usage; scan.watched(); "
            "t = time.perf_counter(); d = usage.build_index(usage.Request(sys.argv[1])); "
            "c = time.perf_counter() - t; t = time.perf_counter(); "
            "usage.build_index(usage.Request(sys.argv[1])); w = time.perf_counter() - t; "
            "print(c, w, d['reach']['import_s'], d['scanned_files'], d['reach']['reached_files'])")
    cache = tempfile.mkdtemp(prefix="tts-doctor-bench-index-")
    try:
        out = subprocess.run([sys.executable, "-c", code, python], cwd=cwd,
                             env={**env, "TTS_DOCTOR_CACHE": cache}, capture_output=True,
                             text=True, check=True).stdout.split()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    cold, warm, imp, files, reached = (float(out[0]), float(out[1]), float(out[2]), out[3],
                                       out[4])
    return (f"the one scan pass alone (doctor/usage.py build_index): cold {cold:.1f} s, of "
            f"which the closure import {imp:.1f} s (in its own process, beside the file "
            f"reading); warm {warm:.2f} s; {files} files, {reached} reached")
