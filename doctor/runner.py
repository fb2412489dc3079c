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

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from tts_doctor import isolation
from tts_doctor.execute import collect as collect_facts
from tts_doctor.execute import execute, judge
from tts_doctor.finding import Finding, Fix, Status, as_command, manual
from tts_doctor.memo import Memo, Session
from tts_doctor.registry import Context, ProbeSpec
from tts_doctor.target import Target, TargetError

DEFAULT_TIMEOUT = 30.0
STARTUP_TIMEOUT = 30.0
OUTPUT_TAIL = 4000

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


def _error(spec: ProbeSpec, summary: str, details: dict[str, Any], duration: float,
           fix: Optional[Fix] = None, python: Optional[str] = None) -> Finding:
    fix = fix or spec.crash_advice(python or sys.executable) or _default_crash_fix(spec)
    # crash fixes are written before the interpreter is known: "{python}" names it
    py = python or sys.executable
    fix = Fix(fix.description, fix.shim,
              tuple(as_command(c).substitute("{python}", py) for c in fix.commands))
    return Finding(spec.id, spec.category, Status.ERROR, summary, details, fix, duration)


@dataclass(frozen=True)
class Collected:
    """What a split probe's collector answered in the worker, before it is judged here."""

    facts: Any
    seconds: float
    output: str = ""
    # what the facts depend on, from the worker (tts_doctor.footprint), when the memo is on
    footprint: Optional[dict[str, Any]] = None


class Recording:
    """What every probe of a run observed, for `check --save-facts` (tts_doctor.factfile).

    A split probe leaves its facts (judged again from the file); any other outcome (a probe
    that is not split, a crash, a timeout) leaves its finding, which the file can only replay.
    """

    def __init__(self) -> None:
        self.probes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def facts(self, spec: ProbeSpec, collected: Collected) -> None:
        with self._lock:
            self.probes[spec.id] = {"facts": collected.facts,
                                    "collect_s": round(collected.seconds, 4),
                                    "output": collected.output}

    def finding(self, spec: ProbeSpec, finding: Optional[Finding]) -> None:
        with self._lock:
            self.probes[spec.id] = {"finding": finding.to_dict() if finding else None}


def judge_collected(spec: ProbeSpec, ctx: Context, collected: Collected) -> Optional[Finding]:
    """Judge a split probe's facts in this process; output the collector printed goes into
    the details of a finding that is not ok (as for a probe that is not split)."""
    finding = judge(spec, ctx, collected.facts, collected.seconds)
    if finding is not None and finding.status is not Status.OK and collected.output.strip():
        finding.details.setdefault("output", collected.output)
    return finding


class Worker:
    """The worker subprocess: probe requests on stdin, findings back on the private pipe."""

    def __init__(self, python: str, boot: str, env: dict[str, str], modules: str = "",
                 yield_until: Optional[threading.Event] = None):
        self.child = isolation.Child(python, boot, (modules,), env)
        self.python = python
        self.yield_until = yield_until
        self.info: dict[str, Any] = {}
        self.last_offset = 0

    def start(self, timeout: float) -> None:
        self.child.start()
        if self.yield_until is not None:
            isolation.yield_cpu(self.child, LANE_NICE, self.yield_until)
        event = self.child.next(timeout)
        if event.get("event") != "ready":
            self.child.kill()
            raise WorkerDied(f"unexpected first event {event!r}", {})
        self.info = event.get("python") or {}

    def output_since(self, offset: int) -> str:
        return self.child.output_since(offset)

    def request(self, spec: ProbeSpec, ctx: Context, timeout: float
                ) -> Optional[Finding | Collected]:
        deadline = time.monotonic() + timeout
        self.child.send({"id": spec.id, "context": ctx.to_dict()})
        offset = 0
        while True:
            event = self.child.next(deadline - time.monotonic(), offset)
            if event.get("event") == "start":
                offset = int(event.get("offset") or 0)
                self.last_offset = offset
            elif event.get("event") == "finding":
                data = event.get("finding")
                return Finding.from_dict(data) if data else None
            elif event.get("event") == "facts":
                return Collected(event.get("facts"), float(event.get("seconds") or 0.0),
                                 str(event.get("output") or ""), event.get("footprint"))

    def close(self) -> None:
        self.child.close()


WorkerDied = isolation.ChildDied
WorkerStalled = isolation.ChildStalled
describe_exit = isolation.describe_exit
crash_stack = isolation.crash_stack


class WorkerStartError(TargetError):
    """The worker could not start under the diagnosed interpreter: the doctor's failure."""


@dataclass
class RunResult:
    """Findings in report order, and the interpreter the isolated probes saw."""

    findings: list[Finding] = field(default_factory=list)
    interpreter: dict[str, Any] = field(default_factory=dict)
    target: Optional[Target] = None
    # the probes judged from facts the memo kept (tts_doctor.memo)
    reused: list[str] = field(default_factory=list)


def _support_dir() -> str:
    """A temporary folder holding the doctor's own package, for a foreign interpreter.

    Only the name `tts_doctor` becomes importable there: the diagnosed environment's own
    distributions and metadata are left exactly as they are, and none of the doctor's
    dependencies travels with it (the code that runs there needs only the standard library).
    The one exception is nvidia-ml-py's `pynvml` (NVML's ctypes binding, no dependencies),
    appended last so that the environment's own copy wins: without it a foreign
    environment would hide the GPU driver.
    """
    import importlib.util

    import tts_doctor
    from tts_doctor import shims

    root = isolation.temp_dir("support")
    first = os.path.join(root, "first")
    last = os.path.join(root, "last")
    package = os.path.join(first, "tts_doctor")
    os.makedirs(package)
    os.mkdir(last)
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
    spec = importlib.util.find_spec("pynvml")
    if spec is not None and spec.origin:
        os.symlink(spec.origin, os.path.join(last, os.path.basename(spec.origin)))
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


def _worker_env(memo: Optional[Memo] = None, support: Optional[str] = None
                ) -> dict[str, str]:
    from tts_doctor import footprint

    env = dict(os.environ)
    env.pop(footprint.ENV, None)
    if memo is not None:
        env[footprint.ENV] = "1:" + (os.path.join(support, "") if support else "")
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
    target: Optional[Target] = None,
    on_finding: Optional[Callable[[Finding], None]] = None,
    recording: Optional[Recording] = None,
    memo: Optional[Memo] = None,
    yield_until: Optional[threading.Event] = None,
) -> RunResult:
    """Run probes in worker subprocesses, one at a time, restarting a worker that dies.

    A split probe's facts are judged here, in the doctor's process, as they arrive. With
    `memo`, a memo probe whose kept facts are still valid is judged from them, and the worker
    starts only for the probes that must observe. `yield_until`: the workers yield the CPU
    until it is set (isolation.yield_cpu).

    WorkerStartError when the worker cannot start at all (the doctor's failure, not a
    finding about the diagnosed code)."""
    result = RunResult()
    if not specs:
        return result
    support = None
    if python is None:
        python, boot = sys.executable, _boot([], [])
    else:
        support = _support_dir()
        boot = _boot([os.path.join(support, "first")], [os.path.join(support, "last")])
    env = _worker_env(memo, support)
    modules = ",".join(sorted({s.func.__module__ for s in specs}))
    pending = list(specs)
    worker: Optional[Worker] = None
    session: Optional[Session] = None
    try:
        while pending:
            kept = _from_memo(pending[0], ctx, memo, recording)
            if kept is not None:
                spec = pending.pop(0)
                result.reused.append(spec.id)
                if kept.finding is not None:
                    result.findings.append(kept.finding)
                    if on_finding:
                        on_finding(kept.finding)
                continue
            if worker is None:
                session = Session(memo) if memo is not None else None
                worker = Worker(python, boot, env, modules, yield_until)
                t0 = time.perf_counter()
                try:
                    worker.start(max(timeout, STARTUP_TIMEOUT))
                except (WorkerDied, WorkerStalled) as exc:
                    how = exc.how if isinstance(exc, WorkerDied) else "it did not answer in time"
                    how = how.split(" (os._exit")[0]
                    out = worker.output_since(0).strip()
                    worker.close()
                    last = out.splitlines()[-1] if out else ""
                    version = (target.version if target is not None
                               else ".".join(map(str, sys.version_info[:3])))
                    raise WorkerStartError(
                        f"the doctor's worker could not start under {python} (Python "
                        f"{version}): {how}" + (f": {last[:300]}" if last else "")
                        + "; this is a tts-doctor bug, please report it with this line",
                        3) from None
            spec = pending.pop(0)
            limit = spec.timeout or timeout
            t0 = time.perf_counter()
            try:
                answer = worker.request(spec, ctx, limit)
                if isinstance(answer, Collected):
                    if memo is not None and session is not None:
                        session.add(answer.footprint)
                        memo.keep(spec, ctx, answer.facts, answer.seconds, answer.output,
                                  session, answer.footprint)
                    if recording is not None:
                        recording.facts(spec, answer)
                    finding = judge_collected(spec, ctx, answer)
                    answer = None
                else:
                    finding = answer
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
            if recording is not None and spec.id not in recording.probes:
                recording.finding(spec, finding)
            if finding is not None:
                result.findings.append(finding)
                if on_finding:
                    on_finding(finding)
    finally:
        if worker is not None:
            worker.close()
        if support:
            isolation.remove_temp(support)
    return result


@dataclass(frozen=True)
class _Kept:
    finding: Optional[Finding]


def _from_memo(spec: ProbeSpec, ctx: Context, memo: Optional[Memo],
               recording: Optional[Recording]) -> Optional[_Kept]:
    """The probe judged from the facts the memo kept, when they are still valid."""
    if memo is None:
        return None
    entry = memo.lookup(spec, ctx)
    if entry is None:
        return None
    collected = Collected(entry.get("facts"), 0.0, str(entry.get("output") or ""))
    if recording is not None:
        recording.facts(spec, Collected(collected.facts, float(entry.get("collect_s") or 0.0),
                                        collected.output))
    return _Kept(judge_collected(spec, ctx, collected))


def _run_here(spec: ProbeSpec, ctx: Context, recording: Optional[Recording],
              memo: Optional[Memo] = None, reused: Optional[list[str]] = None
              ) -> Optional[Finding]:
    """Run one probe in this process; a split one's facts are recorded before judging."""
    kept = _from_memo(spec, ctx, memo, recording)
    if kept is not None:
        if reused is not None:
            reused.append(spec.id)
        return kept.finding
    if spec.collect is None:
        finding = execute(spec, ctx)
        if recording is not None:
            recording.finding(spec, finding)
        return finding
    facts, error, seconds = collect_facts(spec, ctx)
    if error is not None:
        if recording is not None:
            recording.finding(spec, error)
        return error
    collected = Collected(facts, seconds)
    if memo is not None:
        memo.keep(spec, ctx, facts, seconds, "", None, None)
    if recording is not None:
        recording.facts(spec, collected)
    return judge_collected(spec, ctx, collected)


def run_inprocess(specs: list[ProbeSpec], ctx: Context, *, timeout: float = DEFAULT_TIMEOUT,
                  on_finding: Optional[Callable[[Finding], None]] = None,
                  recording: Optional[Recording] = None, memo: Optional[Memo] = None,
                  reused: Optional[list[str]] = None) -> list[Finding]:
    """Run light probes here, each in a thread under its timeout."""
    findings: list[Finding] = []
    for spec in specs:
        box: list[Optional[Finding]] = []
        thread = threading.Thread(
            target=lambda s=spec, b=box: b.append(_run_here(s, ctx, recording, memo, reused)),
            daemon=True)
        limit = spec.timeout or timeout
        t0 = time.perf_counter()
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            finding: Optional[Finding] = _error(
                spec, f"probe timed out after {limit:g} s", {"timeout_s": limit},
                time.perf_counter() - t0, _timeout_fix(spec, limit))
            if recording is not None:
                recording.finding(spec, finding)
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

# Probes whose import pulls in a lane's heavy library although their category belongs
# elsewhere: they join that lane, after its own probes (so that what they import cannot change
# the lane's verdicts). `from modelscope.pipelines import pipeline` imports torch: in the
# torch lane that costs nothing more, in the third lane it was a second import of torch (1.5 s
# of CPU on a 2-core machine, measured in the BIG_STACK environment, docs/BENCHMARKS.md).
# `import nltk` imports pandas and NumPy, which the second lane has loaded already.
# compat.api-drift imports the modules the closure import loaded (torch, transformers, the TTS
# stack): in the third lane that was a third import of them all.
JOIN_LAST: dict[str, int] = {"compat.modelscope-datasets": 0, "compat.api-drift": 0,
                             "frontend.nltk-data": 1}


# how far the lanes' workers yield the CPU while a cold check's index is built (run): their
# sessions' autogroup nice value, restored once the index is written
LANE_NICE = 10


def lanes(specs: list[ProbeSpec], jobs: int) -> list[list[ProbeSpec]]:
    """Split isolated probes into at most `jobs` groups, each for one worker process.

    Within a lane's own probes, those that may wait for the usage index (`reads_index`) come
    last, in their order: the others observe while a cold check's index is built (measured
    in the BIG_STACK environment, docs/BENCHMARKS.md). The joining probes stay after them."""
    groups: list[list[ProbeSpec]] = [[] for _ in range(len(LANES) + 1)]
    joining: list[tuple[int, ProbeSpec]] = []
    for s in specs:
        if s.id in JOIN_LAST:
            joining.append((JOIN_LAST[s.id], s))
            continue
        index = next((i for i, cats in enumerate(LANES) if s.category in cats), len(LANES))
        groups[index].append(s)
    groups = [sorted(g, key=lambda s: s.reads_index) for g in groups]
    for index, s in joining:
        groups[index].append(s)
    groups = [g for g in groups if g]
    while len(groups) > max(jobs, 1):
        last = groups.pop()
        groups[-1].extend(last)
    return groups


def interpreter_info(t: Target) -> dict[str, Any]:
    """The report's header: the diagnosed interpreter and platform, from its facts."""
    from tts_doctor import snapshot
    from tts_doctor import target as targets

    with targets.use(None if t.is_home else t):
        versions = snapshot.distribution_versions()
    return {
        "distributions": versions,
        "version": t.version,
        "implementation": t.implementation,
        "executable": t.executable,
        "prefix": t.prefix,
        "platform": {"system": t.system, "release": t.release, "machine": t.machine,
                     "libc": t.libc or None},
    }


def run(
    specs: list[ProbeSpec],
    ctx: Context,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    python: Optional[str] = None,
    jobs: int = 3,
    on_finding: Optional[Callable[[Finding], None]] = None,
    target: Optional[Target] = None,
    recording: Optional[Recording] = None,
    memo: Union[str, Memo, None] = "off",
    yield_to_index: Optional[threading.Event] = None,
) -> RunResult:
    """Run the selected probes and return their findings in the order of `specs`.

    With `recording`, what each probe observed is kept there (check --save-facts).
    `memo` is "use" (memo probes are judged from the facts kept by an earlier check while
    they are valid, tts_doctor.memo), "fresh" (every probe observes; the memo is rewritten)
    or "off"; or a Memo opened by `open_memo`.
    `yield_to_index`: set once the usage index that a process of its own builds is written (a
    cold check, doctor/usage.py `start`); it and the closure import it runs are the run's
    critical path (every probe that reads the index waits for them), so until then the
    workers yield the CPU to them (LANE_NICE). Measured in the BIG_STACK environment,
    docs/BENCHMARKS.md.
    Probes that do not apply to the recipe (doctor/applicability.py) are not run.

    Isolated probes start first in their workers (`jobs` of them at most, one per lane, see
    LANES) under the diagnosed interpreter; light probes run here meanwhile, judging that
    interpreter's facts (`target`, read from `python` when not given). TargetError when the
    interpreter cannot be read or the worker cannot start there.
    """
    from tts_doctor import applicability
    from tts_doctor import target as targets

    isolation.install_handlers()
    # a probe whose component the recipe marks absent is not run at all (no finding)
    specs_run = [s for s in specs if applicability.decide(s.components, ctx) != applicability.SKIP]
    if python is not None and target is None:
        target = targets.probe_interpreter(python)
    if target is not None and target.is_home:
        python, target = None, None
    store = memo if isinstance(memo, Memo) or memo is None else open_memo(memo, target)
    reused: list[str] = []
    isolated = [s for s in specs_run if s.isolated]
    local = [s for s in specs_run if not s.isolated]
    results: list[RunResult] = []
    failures: list[BaseException] = []
    threads = []

    def lane_run(lane: list[ProbeSpec]) -> None:
        try:
            results.append(run_isolated(lane, ctx, timeout=timeout, python=python,
                                        target=target, on_finding=on_finding,
                                        recording=recording, memo=store,
                                        yield_until=yield_to_index))
        except TargetError as exc:
            failures.append(exc)

    for lane in lanes(isolated, jobs):
        thread = threading.Thread(target=lane_run, args=(lane,), daemon=True)
        thread.start()
        threads.append(thread)
    # the lanes judge their probes' facts here as they arrive: the diagnosed interpreter
    # stays bound until every lane is done
    with targets.use(target):
        local_findings = run_inprocess(local, ctx, timeout=timeout, on_finding=on_finding,
                                       recording=recording, memo=store, reused=reused)
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    if store is not None:
        store.save()
    by_id = {f.id: f for f in local_findings}
    for res in results:
        by_id.update({f.id: f for f in res.findings})
        reused += res.reused
    judged = target or targets.home()
    interpreter = interpreter_info(judged)
    order = {s.id: i for i, s in enumerate(specs)}
    return RunResult([by_id[s.id] for s in specs if s.id in by_id], interpreter, judged,
                     sorted(reused, key=lambda i: order.get(i, 0)))


def open_memo(mode: str, target: Optional[Target]) -> Optional[Memo]:
    """The facts memo of the diagnosed interpreter for this run (None when off or when
    there is no writable cache folder)."""
    if mode not in ("use", "fresh"):
        return None
    from tts_doctor import target as targets

    try:
        return Memo.open((target or targets.home()).to_dict(), read=mode == "use")
    except Exception:  # the memo is an optimisation: a run never fails for it
        return None
