"""Runs probes: light ones in this process, native-import ones in an isolated worker.

The worker is one subprocess fed probe ids on stdin that answers JSON lines on a private pipe
(see doctor.worker). A watchdog gives every probe a timeout. If the worker dies (a signal, an
abort, `os._exit`) or stalls, the probe it was running becomes an `error` finding naming the
signal or the timeout, and a fresh worker runs the probes that are left. Every wait is bounded,
so a whole run takes at most about the sum of the probes' timeouts.

With `python=PATH` every probe runs in a worker under that interpreter: the doctor diagnoses
another environment without being installed in it (only its own package is put on that
interpreter's path, through a temporary folder of links).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tts_doctor.finding import Finding, Fix, Status, as_command, manual
from tts_doctor.registry import Context, ProbeSpec

DEFAULT_TIMEOUT = 30.0
STARTUP_TIMEOUT = 30.0
OUTPUT_TAIL = 4000

_SIGNAL_WORDS = {
    "SIGSEGV": "segmentation fault",
    "SIGABRT": "abort",
    "SIGBUS": "bus error",
    "SIGILL": "illegal instruction",
    "SIGFPE": "floating-point exception",
    "SIGKILL": "killed (out of memory, or by another process)",
    "SIGTERM": "terminated",
}


def _default_crash_fix(spec: ProbeSpec) -> Fix:
    return Fix(
        f"Something imported by probe {spec.id} crashed the process that ran it; that import "
        "will crash your program too. The captured output above names the library. Reinstall "
        "it, or run the probe alone to read the full output.",
        commands=(manual("tts-doctor", "check", "--only", spec.id, "-v"),),
    )


def _timeout_fix(spec: ProbeSpec, limit: float) -> Fix:
    return Fix(
        f"Probe {spec.id} did not finish in {limit:g} s: something it imports or calls hangs "
        "(a driver call, a lock, a network wait) and would hang your program too. Run it alone "
        "with a longer timeout to see whether it is only slow.",
        commands=(manual("tts-doctor", "check", "--only", spec.id, "--timeout",
                         f"{max(limit * 4, 120):g}", "-v"),),
    )


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def crash_stack(output: str) -> list[str]:
    """The innermost frames of a faulthandler dump, without the doctor's own frames.

    With several threads dumped, the crashing one is headed "Current thread".
    """
    at = output.rfind("Current thread")
    if at >= 0:
        output = output[at:]
    frames = []
    for line in output.splitlines():
        m = _FRAME.match(line)
        if not m:
            if frames and not line.strip():
                break
            continue
        path = m.group("file").replace(os.sep, "/")
        if "/doctor/" in path or "/tts_doctor/" in path or path == "<string>":
            continue
        frames.append(f"{m.group('file')}:{m.group('line')} in {m.group('func')}")
    return frames[:5]


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


def _error(spec: ProbeSpec, summary: str, details: dict[str, Any], duration: float,
           fix: Optional[Fix] = None, python: Optional[str] = None) -> Finding:
    fix = fix or spec.crash_fix or _default_crash_fix(spec)
    # crash fixes are written before the interpreter is known: "{python}" names it
    py = python or sys.executable
    fix = Fix(fix.description, fix.shim,
              tuple(as_command(c).substitute("{python}", py) for c in fix.commands))
    return Finding(spec.id, spec.category, Status.ERROR, summary, details, fix, duration)


class WorkerDied(Exception):
    def __init__(self, how: str, details: dict[str, Any]):
        super().__init__(how)
        self.how = how
        self.details = details


class WorkerStalled(Exception):
    pass


def _describe_exit(returncode: int) -> tuple[str, dict[str, Any]]:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        word = _SIGNAL_WORDS.get(name, "")
        return (f"the worker process was killed by {name}" + (f" ({word})" if word else ""),
                {"signal": name, "returncode": returncode})
    return (f"the worker process exited with code {returncode} (os._exit or exit() "
            "called from inside the probed code)", {"returncode": returncode})


class Worker:
    """One worker subprocess and the thread that reads its protocol pipe."""

    def __init__(self, python: str, boot: str, env: dict[str, str], modules: str = ""):
        self.python = python
        self.boot = boot
        self.env = env
        self.modules = modules
        self.info: dict[str, Any] = {}
        self.events: queue.Queue[Optional[dict[str, Any]]] = queue.Queue()
        self.capture = tempfile.NamedTemporaryFile(prefix="tts-doctor-worker-", suffix=".log")
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self, timeout: float) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [self.python, "-c", self.boot, str(write_fd), self.modules],
                stdin=subprocess.PIPE, stdout=self.capture, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), env=self.env, start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            raise WorkerDied(f"could not start {self.python}: {exc}", {}) from exc
        os.close(write_fd)
        threading.Thread(target=self._read, args=(read_fd,), daemon=True).start()
        event = self._next(timeout)
        if event.get("event") != "ready":
            self.kill()
            raise WorkerDied(f"unexpected first event {event!r}", {})
        self.info = event.get("python") or {}

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                try:
                    self.events.put(json.loads(line))
                except json.JSONDecodeError:
                    continue
        self.events.put(None)

    def output_since(self, offset: int) -> str:
        try:
            with open(self.capture.name, "rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                f.seek(max(offset, end - OUTPUT_TAIL))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _next(self, timeout: float, offset: int = 0) -> dict[str, Any]:
        try:
            event = self.events.get(timeout=max(timeout, 0.01))
        except queue.Empty:
            raise WorkerStalled() from None
        if event is None:
            assert self.proc is not None
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                rc = self.proc.returncode if self.proc.returncode is not None else -9
            how, details = _describe_exit(rc)
            output = self.output_since(offset)
            if output.strip():
                details["output"] = output
            raise WorkerDied(how, details)
        return event

    def request(self, spec: ProbeSpec, ctx: Context, timeout: float) -> Optional[Finding]:
        assert self.proc is not None and self.proc.stdin is not None
        deadline = time.monotonic() + timeout
        line = json.dumps({"id": spec.id, "context": ctx.to_dict()}) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # the worker is gone; _next reports how
        offset = 0
        while True:
            event = self._next(deadline - time.monotonic(), offset)
            if event.get("event") == "start":
                offset = int(event.get("offset") or 0)
                self.last_offset = offset
            elif event.get("event") == "finding":
                data = event.get("finding")
                return Finding.from_dict(data) if data else None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop the worker. Every finding is already in hand and the worker holds nothing to
        flush, so it is killed rather than left to tear down torch or LLVM (up to a second
        of interpreter shutdown that would only delay the report)."""
        if self.proc and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.kill()
        self.capture.close()

    last_offset = 0


@dataclass
class RunResult:
    """Findings in report order, and the interpreter the isolated probes saw."""

    findings: list[Finding] = field(default_factory=list)
    interpreter: dict[str, Any] = field(default_factory=dict)


def _support_dir() -> str:
    """A temporary folder holding the doctor's own package, for a foreign interpreter.

    Only the name `tts_doctor` becomes importable there: the diagnosed environment's own
    distributions and metadata are left exactly as they are, and none of the doctor's
    dependencies travels with it (the code that runs there needs only the standard library).
    """
    import tts_doctor
    from tts_doctor import shims

    root = tempfile.mkdtemp(prefix="tts-doctor-support-")
    first = os.path.join(root, "first")
    package = os.path.join(first, "tts_doctor")
    os.makedirs(package)
    os.mkdir(os.path.join(root, "last"))
    here = Path(tts_doctor.__file__).parent
    for child in here.iterdir():
        if child.name != "__pycache__":
            os.symlink(child, os.path.join(package, child.name))
    # from a source checkout the shims and recipes live beside doctor/, not inside it
    extra = {"shims": Path(shims.__file__).parent, "recipes": here.parent / "recipes"}
    for name, target in extra.items():
        link = os.path.join(package, name)
        if not os.path.lexists(link) and target.is_dir():
            os.symlink(target, link)
    import importlib.util

    for name, where in (("pynvml", first), ("packaging", os.path.join(root, "last")),
                        ("tomli", os.path.join(root, "last"))):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin)
        target = origin.parent if origin.name == "__init__.py" else origin
        os.symlink(target, os.path.join(where, target.name))
    return root


def _boot(first: list[str], last: list[str]) -> str:
    return (
        "import sys\n"
        "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"
        f"sys.path[:0] = {first!r}\n"
        f"sys.path.extend({last!r})\n"
        "from tts_doctor.worker import main\n"
        "main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else '')\n"
    )


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # The doctor never changes what it diagnoses: no .pyc files written into site-packages.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


def run_isolated(
    specs: list[ProbeSpec],
    ctx: Context,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    python: Optional[str] = None,
    on_finding: Optional[Callable[[Finding], None]] = None,
) -> RunResult:
    """Run probes in worker subprocesses, one at a time, restarting a worker that dies."""
    result = RunResult()
    if not specs:
        return result
    support = None
    if python is None:
        python, boot = sys.executable, _boot([], [])
    else:
        support = _support_dir()
        boot = _boot([os.path.join(support, "first")], [os.path.join(support, "last")])
    env = _worker_env()
    modules = ",".join(sorted({s.func.__module__ for s in specs}))
    pending = list(specs)
    worker: Optional[Worker] = None
    try:
        while pending:
            if worker is None:
                worker = Worker(python, boot, env, modules)
                t0 = time.perf_counter()
                try:
                    worker.start(max(timeout, STARTUP_TIMEOUT))
                    result.interpreter = worker.info
                except (WorkerDied, WorkerStalled) as exc:
                    how = exc.how if isinstance(exc, WorkerDied) else "it did not answer in time"
                    details = dict(getattr(exc, "details", {}))
                    out = worker.output_since(0)
                    if out.strip():
                        details.setdefault("output", out)
                    worker.close()
                    fix = Fix(f"The interpreter {python} could not run the doctor's worker. "
                              "Check that it starts and is Python 3.9 or newer.",
                              commands=(manual(python, "-c",
                                               "import sys; print(sys.version)"),))
                    for spec in pending:
                        result.findings.append(_error(
                            spec, f"worker could not start: {how}", details,
                            time.perf_counter() - t0, fix))
                    return result
            spec = pending.pop(0)
            limit = spec.timeout or timeout
            t0 = time.perf_counter()
            try:
                finding = worker.request(spec, ctx, limit)
            except WorkerDied as exc:
                stack = crash_stack(exc.details.get("output", ""))
                if stack:
                    exc.details["stack"] = stack
                finding = _error(spec, f"probe crashed: {exc.how}", exc.details,
                                 time.perf_counter() - t0, python=python)
                worker.close()
                worker = None
            except WorkerStalled:
                output = worker.output_since(worker.last_offset)
                worker.close()
                worker = None
                details: dict[str, Any] = {"timeout_s": limit}
                if output.strip():
                    details["output"] = output
                finding = _error(spec, f"probe timed out after {limit:g} s (the worker was "
                                 "stopped and restarted for the remaining probes)", details,
                                 time.perf_counter() - t0, _timeout_fix(spec, limit), python)
            if finding is not None:
                result.findings.append(finding)
                if on_finding:
                    on_finding(finding)
    finally:
        if worker is not None:
            worker.close()
        if support:
            shutil.rmtree(support, ignore_errors=True)
    return result


def run_inprocess(specs: list[ProbeSpec], ctx: Context, *, timeout: float = DEFAULT_TIMEOUT,
                  on_finding: Optional[Callable[[Finding], None]] = None) -> list[Finding]:
    """Run light probes here, each in a thread under its timeout."""
    findings: list[Finding] = []
    for spec in specs:
        box: list[Optional[Finding]] = []
        thread = threading.Thread(target=lambda s=spec, b=box: b.append(execute(s, ctx)),
                                  daemon=True)
        limit = spec.timeout or timeout
        t0 = time.perf_counter()
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            finding: Optional[Finding] = _error(
                spec, f"probe timed out after {limit:g} s", {"timeout_s": limit},
                time.perf_counter() - t0, _timeout_fix(spec, limit))
        else:
            finding = box[0] if box else None
        if finding is not None:
            findings.append(finding)
            if on_finding:
                on_finding(finding)
    return findings


# Lanes: probes that import the same heavy library share a worker (one import), and lanes
# run side by side. torch for the first; numba (LLVM) and NumPy for the second; SciPy, ONNX
# Runtime, ttsfrd and the rest for the third. With fewer jobs, lanes are merged from the end.
LANES: tuple[frozenset[str], ...] = (
    frozenset({"torch", "cuda", "vram", "torchaudio"}),
    frozenset({"numba", "numpy"}),
)


def lanes(specs: list[ProbeSpec], jobs: int) -> list[list[ProbeSpec]]:
    """Split isolated probes into at most `jobs` groups, each for one worker process."""
    groups: list[list[ProbeSpec]] = [[] for _ in range(len(LANES) + 1)]
    for s in specs:
        index = next((i for i, cats in enumerate(LANES) if s.category in cats), len(LANES))
        groups[index].append(s)
    groups = [g for g in groups if g]
    while len(groups) > max(jobs, 1):
        last = groups.pop()
        groups[-1].extend(last)
    return groups


def run(
    specs: list[ProbeSpec],
    ctx: Context,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    python: Optional[str] = None,
    jobs: int = 3,
    on_finding: Optional[Callable[[Finding], None]] = None,
) -> RunResult:
    """Run the selected probes and return their findings in the order of `specs`.

    Isolated probes start first in their workers (`jobs` of them at most, one per lane, see
    LANES); light probes run here meanwhile.
    """
    if python is not None:
        isolated, local = list(specs), []
    else:
        isolated = [s for s in specs if s.isolated]
        local = [s for s in specs if not s.isolated]
    results: list[RunResult] = []
    threads = []
    for lane in lanes(isolated, jobs):
        thread = threading.Thread(
            target=lambda lane=lane: results.append(run_isolated(
                lane, ctx, timeout=timeout, python=python, on_finding=on_finding)),
            daemon=True)
        thread.start()
        threads.append(thread)
    local_findings = run_inprocess(local, ctx, timeout=timeout, on_finding=on_finding)
    for thread in threads:
        thread.join()
    by_id = {f.id: f for f in local_findings}
    interpreter: dict[str, Any] = {}
    for res in results:
        by_id.update({f.id: f for f in res.findings})
        interpreter = interpreter or res.interpreter
    if not interpreter:
        from tts_doctor.worker import interpreter_info

        interpreter = interpreter_info()
    return RunResult([by_id[s.id] for s in specs if s.id in by_id], interpreter)
