"""One smoke run: load, synthesize down the ladder, check the audio, repeat, fit the budget.

`run(options)` returns a `Result`: the findings (the same `Finding` objects `check` reports,
so the renderers and the JSON contract apply) and the `Section`, the `smoke` object of the
JSON report (its keys are the contract documented in docs/smoke.md). Each phase is one
function that returns a `Phase`: its findings, its part of the section, and what the next
phase needs (None stops the run). Findings are built the way probe findings are
(`tts_doctor.finding.ok/warn/fail/skip`): a warn or fail always carries a fix.

Errors in the user's input (`EngineConfigError`) are raised for the command to turn into
exit code 2 before anything is written; an environment that cannot run the model (a missing
library, a model missing from the local cache) is a failed `smoke.load` finding.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from tts_doctor.finding import Finding, Fix, Status, fail, ok, skip, warn
from tts_doctor.finding import Result as Verdict
from tts_doctor.smoke import allocator_history, audio_checks, budget, ladder, leak
from tts_doctor.smoke.engine import Engine, EngineConfigError, EngineUnavailable, create
from tts_doctor.smoke.profiler import Profiler
from tts_doctor.smoke.sizes import fmt_bytes

CATEGORY = "smoke"
ALLOC_CONF = "export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
TROUBLESHOOTING = "docs/troubleshooting.md"


def see(family: str) -> str:
    """A pointer into the troubleshooting page for a failure family ('C4')."""
    from tts_doctor.families import FAMILIES

    name = next((f.name for f in FAMILIES if f.id == family), "")
    return f"see {TROUBLESHOOTING}, {family}" + (f" {name}" if name else "")


@dataclass
class Options:
    engine: str
    text: str
    model: dict[str, Any] = field(default_factory=dict)
    recipe: Optional[dict[str, Any]] = None
    text_source: str = "recipe"
    device: str = "auto"
    precision: str = "auto"
    max_chars: Optional[int] = None
    ladder: bool = True
    repeat: int = 0
    vram_budget: Optional[int] = None
    ram_budget: Optional[int] = None
    budget_lengths: tuple[int, ...] = budget.DEFAULT_LENGTHS
    memory_snapshot: Optional[str] = None
    sample_hz: float = 25.0
    vram_limit: Optional[int] = None
    offline: bool = False


@dataclass
class Section:
    """The report's `smoke` object (docs/smoke.md): one attribute per documented key.

    `html` is set by the command when it writes a page; `offline` only with --offline. Both
    are left out of the JSON when unset, the other keys are always there (null when they do
    not apply)."""

    engine: dict[str, Any]
    text: dict[str, Any]
    audio: Optional[dict[str, Any]] = None
    timing: Optional[dict[str, Any]] = None
    memory: Optional[dict[str, Any]] = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    timeline: Optional[dict[str, Any]] = None
    ladder: Optional[dict[str, Any]] = None
    repeat: Optional[dict[str, Any]] = None
    budget: Optional[dict[str, Any]] = None
    memory_snapshot: Optional[str] = None
    profiler: Optional[dict[str, Any]] = None
    offline: Optional[dict[str, Any]] = None
    html: Optional[str] = None

    _OPTIONAL = ("offline", "html")

    @classmethod
    def start(cls, opts: Options) -> Section:
        return cls(engine={"name": opts.engine, "device": opts.device,
                           "precision": opts.precision, "info": {}},
                   text={"chars": len(opts.text), "source": opts.text_source, "chunks": None})

    def update(self, part: dict[str, Any]) -> None:
        """Apply a phase's part; `engine` and `text` are merged, the rest replaced."""
        for key, value in part.items():
            if key in ("engine", "text"):
                getattr(self, key).update(value)
            else:
                setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in self._OPTIONAL:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in names}
        values.setdefault("engine", {"name": None, "device": None, "precision": None,
                                     "info": {}})
        values.setdefault("text", {"chars": None, "source": None, "chunks": None})
        return cls(**values)


@dataclass
class Result:
    findings: list[Finding]
    section: Section
    samples: Any = None
    sample_rate: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.section, Section):  # from the child's JSON, or {} after a crash
            self.section = Section.from_dict(self.section or {})


@dataclass
class Phase:
    """What one phase hands back: its findings, its part of the section, and its state for
    the next phase (None: nothing more can run)."""

    findings: list[Finding] = field(default_factory=list)
    part: dict[str, Any] = field(default_factory=dict)
    state: Any = None


@dataclass
class Loaded:
    engine: Engine
    device: str
    precision: str
    allow_precision: bool
    load_s: float


@dataclass
class Synthesized:
    loaded: Loaded
    plan: ladder.Plan
    samples: Any
    sample_rate: int


def finding(name: str, verdict: Verdict, duration: float = 0.0) -> Finding:
    """A smoke finding under the probes' rule: a warn or fail without a fix is our bug."""
    if verdict.status in (Status.WARN, Status.FAIL) and verdict.fix is None:
        raise AssertionError(f"smoke.{name}: {verdict.status} without a fix")
    return Finding(f"{CATEGORY}.{name}", CATEGORY, verdict.status, verdict.summary,
                   dict(verdict.details), verdict.fix, duration)


def _peaks(stages: list[dict[str, Any]]) -> dict[str, Optional[int]]:
    out: dict[str, Optional[int]] = {}
    for key, col in (("rss", "rss_peak"), ("torch_allocated", "torch_allocated_peak"),
                     ("torch_reserved", "torch_reserved_peak"), ("nvml_used", "nvml_used_peak")):
        vals = [s[col] for s in stages if s.get(col) is not None]
        out[key] = max(vals) if vals else None
    return out


def _start_precision(opts: Options) -> tuple[str, bool]:
    """(precision to start at, whether the ladder may change it)."""
    wanted = opts.precision
    if wanted == "auto" and opts.recipe:
        wanted = (opts.recipe.get("smoke") or {}).get("precision", "auto")
    if wanted == "auto":
        return "fp32", True
    return wanted, False


def _limit_vram(device: str, limit: int) -> Finding:
    """Cap this process's CUDA allocator at `limit` bytes (set_per_process_memory_fraction):
    a smaller GPU emulated on a larger one, and the way the ladder is exercised for real."""
    if not device.startswith("cuda"):
        return finding("vram-limit", fail(
            f"--vram-limit needs a CUDA device, not {device}",
            Fix("Run on the GPU, or use --ram-budget for a CPU run.",
                commands=("tts-doctor smoke --device cuda --vram-limit 12GiB",))))
    import torch

    index = torch.device(device).index or 0
    total = torch.cuda.get_device_properties(index).total_memory
    fraction = min(1.0, limit / total)
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return finding("vram-limit", ok(f"CUDA allocator capped at {fmt_bytes(limit)} "
                                    f"({fraction:.3f} of {fmt_bytes(total)}): a smaller GPU "
                                    "emulated", limit=limit, total=total,
                                    fraction=round(fraction, 5)))


# --- the run ------------------------------------------------------------------------------


def run(opts: Options, progress: Callable[[str], None] = lambda _: None) -> Result:
    section = Section.start(opts)
    result = Result([], section)

    def apply(phase: Phase) -> Any:
        result.findings.extend(phase.findings)
        section.update(phase.part)
        return phase.state

    if opts.offline:
        from tts_doctor import airgap

        airgap.activate()
    profiler = Profiler("cpu", sample_hz=opts.sample_hz)
    engine: Optional[Engine] = None
    profiler.start()
    try:
        loaded = apply(load_phase(opts, profiler, progress))
        if loaded is not None:
            engine = loaded.engine
            done = apply(ladder_phase(loaded, opts, profiler, progress))
            if done is not None:
                result.samples, result.sample_rate = done.samples, done.sample_rate
                apply(audio_phase(done, opts, section.stages))
                if opts.repeat:
                    apply(repeat_phase(done, opts, profiler, progress))
                apply(budget_phase(done, opts, profiler, section.stages, progress))
    finally:
        profiler.stop()
        apply(profile_phase(profiler, section))
        if opts.offline:
            from tts_doctor import airgap

            audit = airgap.audit()
            airgap.deactivate()
            apply(offline_phase(audit, result.findings))
        if engine is not None:
            engine.close()
    return result


def profile_phase(profiler: Profiler, section: Section) -> Phase:
    """The profiler's numbers: stages (when no synthesis recorded them), timeline, peaks."""
    prof = profiler.to_dict()
    part: dict[str, Any] = {
        "timeline": prof["timeline"],
        "profiler": {"sample_hz": prof["sample_hz"],
                     "rss_peak_per_stage": prof["rss_peak_per_stage"],
                     "nvml_device": profiler.nvml.name, "nvml_error": profiler.nvml.error}}
    stages = section.stages or profiler.stages()
    part["stages"] = stages
    if section.memory is not None:
        part["memory"] = dict(section.memory, peak=_peaks(stages))
    return Phase(part=part)


def load_phase(opts: Options, profiler: Profiler, progress: Callable[[str], None]) -> Phase:
    """Build the engine, pick the device and precision, load the model."""
    name = opts.engine
    t0 = time.perf_counter()
    try:
        engine = create(name, opts.model, opts.recipe)
        device = engine.resolve_device(opts.device)
    except EngineUnavailable as exc:
        return Phase([finding("load", fail(f"{name} engine cannot run here: {exc}", exc.fix,
                                           **exc.details), time.perf_counter() - t0)])
    precision, allow_precision = _start_precision(opts)
    if precision not in engine.precisions:
        raise EngineConfigError(f"the {name} engine runs {', '.join(engine.precisions)} "
                                f"only, not {precision}")
    profiler.set_device(device)
    found: list[Finding] = []
    if opts.vram_limit:
        limited = _limit_vram(device, opts.vram_limit)
        found.append(limited)
        if limited.status is Status.FAIL:
            return Phase(found)
    engine.profiler = profiler
    part: dict[str, Any] = {"engine": {"device": device, "precision": precision}}
    baseline = profiler.current()
    progress(f"loading the {name} engine on {device}")
    t0 = time.perf_counter()
    try:
        engine.load(device, precision)
    except (EngineConfigError, KeyboardInterrupt):
        raise
    except EngineUnavailable as exc:
        found.append(finding("load", fail(f"{name} engine cannot load: {exc}", exc.fix,
                                          **exc.details), time.perf_counter() - t0))
        return Phase(found, part)
    except Exception as exc:
        found.append(finding("load", _load_error(exc), time.perf_counter() - t0))
        return Phase(found, part)
    load_s = time.perf_counter() - t0
    info = engine.info()
    after_load = profiler.current()
    part["engine"]["info"] = info
    part["memory"] = {"baseline": baseline, "after_load": after_load, "peak": {}}
    found.append(finding("load", ok(_load_summary(name, device, precision, load_s, info,
                                                  after_load, baseline),
                                    device=device, precision=precision,
                                    load_s=round(load_s, 3), **_small(info)), load_s))
    weights = _weights_verdict(engine, info)
    if weights is not None:
        found.append(finding("weights", weights))
    return Phase(found, part, Loaded(engine, device, precision, allow_precision, load_s))


def _load_error(exc: Exception) -> Verdict:
    tb = "\n".join("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                   .strip().splitlines()[-12:])
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    if ladder.is_oom(exc):
        fix = Fix("The weights alone do not fit in this device's free memory: free the "
                  "device (other processes), use a larger one, or run on the CPU (" + see("C4")
                  + ")", commands=("tts-doctor smoke --device cpu",))
    else:
        fix = Fix("Loading the model raised: read the traceback; a checkpoint from another "
                  "version of the model's code is the usual cause")
    return fail(f"loading the model failed: {type(exc).__name__}: {first}", fix, traceback=tb)


def _weights_verdict(engine: Engine, info: dict[str, Any]) -> Optional[Verdict]:
    if engine.random_weights:
        return ok("seeded random weights: the audio is noise, not speech; memory and speed "
                  "are those of the real architecture", weights="random", seed=info.get("seed"))
    if info.get("checkpoint"):
        ck = info.get("checkpoint_info") or {}
        note = " (weight norm folded)" if ck.get("weight_norm") else ""
        swap = (f"; the checkpoint is HiFi-GAN {ck['config'].upper()}, not the recipe's "
                f"{ck['requested'].upper()}") if ck.get("config") != ck.get("requested") else ""
        return ok(f"HiFi-GAN generator from {info['checkpoint']}{note}{swap}; the acoustic "
                  "model is random, so it vocodes a random mel (not speech)",
                  weights="checkpoint", **ck)
    return None


def ladder_phase(loaded: Loaded, opts: Options, profiler: Profiler,
                 progress: Callable[[str], None]) -> Phase:
    """Synthesize the text, stepping down the out-of-memory ladder; the allocator history."""
    engine, device = loaded.engine, loaded.device
    found: list[Finding] = []
    part: dict[str, Any] = {}
    snapshot_reason = None
    if opts.memory_snapshot:
        snapshot_reason = allocator_history.unavailable(device)
        if snapshot_reason is None:
            allocator_history.start()
    start = ladder.Plan(device, loaded.precision, opts.max_chars)
    recipe = opts.recipe or {}
    min_rms = float((recipe.get("audio") or {}).get("min_rms", audio_checks.MIN_RMS))

    def on_rung(rung: ladder.Rung, i: int) -> None:
        progress(f"synthesizing ({rung.name}: {rung.plan.describe()})" if i > 1
                 else f"synthesizing {len(opts.text)} characters on {device}")

    outcome = ladder.run(engine, opts.text, start, profiler, enabled=opts.ladder,
                         allow_precision=loaded.allow_precision, min_rms=min_rms,
                         on_rung=on_rung)
    part["ladder"] = outcome.to_dict()
    part["stages"] = profiler.stages()  # load + the ladder's synthesis, before repeats
    if opts.memory_snapshot:
        if snapshot_reason is None:
            allocator_history.dump(opts.memory_snapshot)
            part["memory_snapshot"] = opts.memory_snapshot
            found.append(finding("memory-snapshot", ok(
                f"allocator history written to {opts.memory_snapshot}: open it at "
                "https://pytorch.org/memory_viz", path=opts.memory_snapshot)))
        else:
            found.append(finding("memory-snapshot", skip(
                f"no allocator history: {snapshot_reason}", reason=snapshot_reason)))
    found += [finding(n, v) for n, v in _ladder_verdicts(outcome, start,
                                                         loaded.allow_precision)]
    if outcome.worked is None:
        return Phase(found, part)
    plan = outcome.plan
    assert plan is not None
    rung = outcome.rungs[outcome.worked]
    samples, rate = outcome.samples, outcome.sample_rate
    seconds = len(samples) / rate if rate else 0.0
    rtf = rung.wall_s / seconds if seconds else None
    first = rung.first_audio_s or rung.wall_s
    part["engine"] = {"device": plan.device, "precision": plan.precision}
    part["text"] = {"chunks": rung.chunks}
    part["timing"] = {"load_s": round(loaded.load_s, 4), "synthesis_s": round(rung.wall_s, 4),
                      "first_audio_s": round(first, 4), "audio_s": round(seconds, 4),
                      "rtf": round(rtf, 4) if rtf is not None else None}
    rtf_text = f"RTF {rtf:.3f}" if rtf is not None else "RTF -"
    found.append(finding("synthesis", ok(
        f"{seconds:.2f} s of audio in {rung.wall_s:.2f} s ({rtf_text}, first audio after "
        f"{first:.2f} s) on {plan.describe()}", audio_s=round(seconds, 3),
        wall_s=round(rung.wall_s, 4), rtf=part["timing"]["rtf"],
        first_audio_s=part["timing"]["first_audio_s"], chunks=rung.chunks), rung.wall_s))
    found.append(finding("memory", _memory_verdict(part["stages"])))
    return Phase(found, part, Synthesized(loaded, plan, samples, rate))


def audio_phase(done: Synthesized, opts: Options, stages: list[dict[str, Any]]) -> Phase:
    """The audio checks (output.*) on the synthesis that worked."""
    recipe = opts.recipe or {}
    samples, rate = done.samples, done.sample_rate
    stats = audio_checks.analyze(samples)
    seconds = len(samples) / rate if rate else 0.0
    part = {"audio": {"sample_rate": rate, "samples": stats["samples"],
                      "seconds": round(seconds, 4), "rms": stats["rms"], "peak": stats["peak"],
                      "dc": stats["dc"], "clip_ratio": stats["clip_ratio"],
                      "non_finite": stats["non_finite"], "out": None}}
    found = audio_checks.check(samples, rate, opts.text, audio_cfg=recipe.get("audio"),
                               precision=done.plan.precision, recipe_name=recipe.get("name"))
    return Phase(found, part)


def repeat_phase(done: Synthesized, opts: Options, profiler: Profiler,
                 progress: Callable[[str], None]) -> Phase:
    """--repeat N: the leak check."""
    progress(f"repeating the synthesis {opts.repeat} times")
    rep = leak.repeat(done.loaded.engine, opts.text, done.plan, profiler, opts.repeat,
                      on_run=lambda i, n: progress(f"repeat {i}/{n}"))
    return Phase([finding("leak", _leak_verdict(rep))], {"repeat": rep})


def budget_phase(done: Synthesized, opts: Options, profiler: Profiler,
                 stages: list[dict[str, Any]], progress: Callable[[str], None]) -> Phase:
    """--vram-budget / --ram-budget: peak memory against text length."""
    plan = done.plan
    found: list[Finding] = []
    part: dict[str, Any] = {}
    for kind, limit in (("vram", opts.vram_budget), ("ram", opts.ram_budget)):
        if limit is None:
            continue
        flag = f"--{kind}-budget"
        if kind == "vram" and not plan.device.startswith("cuda"):
            found.append(finding("budget", skip(
                f"{flag}: the model ran on {plan.device}, there is no GPU memory to measure "
                "(on a CPU use --ram-budget)", budget=limit)))
            continue
        if kind == "ram" and plan.device != "cpu":
            found.append(finding("budget", skip(
                f"{flag}: the model ran on {plan.device}; host RAM is measured for CPU runs "
                "(use --vram-budget for the GPU)", budget=limit)))
            continue
        progress(f"measuring peak memory at {len(opts.budget_lengths)} text lengths")
        measured = budget.measure(done.loaded.engine, opts.text, plan, profiler, kind,
                                  opts.budget_lengths,
                                  on_length=lambda i, n: progress(f"budget length {i}/{n}"))
        main_peak = _peaks(stages).get("rss" if kind == "ram" else "torch_reserved")
        v = budget.verdict(measured, limit, len(opts.text), main_peak)
        part["budget"] = {"kind": kind, "basis": measured["basis"],
                          "overhead": measured["overhead"],
                          "points": [p.to_dict() for p in measured["points"]], **v}
        found.append(finding("budget", _budget_verdict(kind, v, measured["basis"])))
    return Phase(found, part)


def offline_phase(audit: dict[str, Any], findings: list[Finding]) -> Phase:
    """--offline: will this image work without a network? Connections and downloads."""
    from tts_doctor.smoke import offline

    verdicts = offline.verdicts(audit, findings)
    return Phase([finding(n, v) for n, v in verdicts], {"offline": offline.section(audit)})


# --- verdicts -----------------------------------------------------------------------------


def _small(info: dict[str, Any]) -> dict[str, Any]:
    keep = ("parameters", "vocoder", "acoustic", "voice", "model_dir", "function",
            "checkpoint_dir", "weights", "memory_cap")
    return {k: info[k] for k in keep if k in info}


def _load_summary(name: str, device: str, precision: str, load_s: float, info: dict[str, Any],
                  after: dict[str, Any], before: dict[str, Any]) -> str:
    parts = [f"{name} engine on {device} ({precision}) in {load_s:.2f} s"]
    params = info.get("parameters")
    if isinstance(params, dict) and params:
        parts.append(", ".join(f"{k} {v / 1e6:.3f} M params" for k, v in params.items()))
    if before.get("rss") is not None and after.get("rss") is not None:
        parts.append(f"RSS +{fmt_bytes(after['rss'] - before['rss'])}")
    if after.get("torch_allocated") is not None:
        parts.append(f"torch allocated {fmt_bytes(after['torch_allocated'])}")
    return "; ".join(parts)


def _ladder_verdicts(out: ladder.Outcome, start: ladder.Plan,
                     allow_precision: bool) -> list[tuple[str, Verdict]]:
    found: list[tuple[str, Verdict]] = []
    rungs = out.rungs
    tried = [f"{r.name} ({r.outcome})" for r in rungs]
    details = {"rungs": [r.to_dict() for r in rungs]}
    half = [r for r in rungs if r.plan.precision in ("fp16", "bf16") and r.outcome != "oom"
            and not (r.outcome == "error" and out.error is not None and r is rungs[-1])]
    if half:
        broken = [r for r in half if r.outcome in ("broken-audio", "error")]
        if broken:
            b = broken[0]
            what = "breaks the audio" if b.outcome == "broken-audio" else "does not run"
            make = warn if (allow_precision and out.worked is not None) else fail
            found.append(("precision", make(
                f"{b.plan.precision} {what} on {b.plan.device}: {b.detail}",
                Fix("Run this model in fp32 on this device: half precision "
                    + ("gives NaN or silence here (" + see("C5") + ")"
                       if b.outcome == "broken-audio" else "is not supported here"),
                    commands=("tts-doctor smoke --precision fp32",)),
                precision=b.plan.precision, device=b.plan.device, detail=b.detail)))
        else:
            found.append(("precision", ok(f"{half[0].plan.precision} output is finite and "
                                          "above the silence floor",
                                          precision=half[0].plan.precision)))
    if out.error is not None:
        err = out.error
        found.append(("synthesis", fail(
            f"synthesis failed: {err['type']}: {err['message'][:200]}",
            Fix("The engine raised an error that is not out-of-memory (the ladder stops "
                "there: less memory does not fix it); read the traceback"),
            traceback=err["traceback"], rung=rungs[-1].name)))
        return found
    if out.worked is None:
        ooms = sum(1 for r in rungs if r.outcome == "oom")
        if not out.enabled:
            found.append(("ladder", fail(
                f"out of memory as configured ({start.describe()}); the ladder is off "
                "(--no-ladder)",
                Fix("Run without --no-ladder to find settings that fit, or split the text "
                    "yourself (--max-chars 200) (" + see("C4") + ")",
                    commands=("tts-doctor smoke --max-chars 200",)), **details)))
        else:
            found.append(("ladder", fail(
                f"out of memory at every rung ({ooms} of {len(rungs)} rungs OOM): "
                + ", ".join(tried),
                Fix("The model does not fit this device even with half precision, short text "
                    "chunks, chunked vocoding"
                    + (" and the CPU" if any(r.name == "cpu" for r in rungs) else "")
                    + ": use a device with more free memory, stop other processes on it, or "
                    "shorten the input further (" + see("C4") + ")",
                    commands=(ALLOC_CONF,) if start.device.startswith("cuda") else ()),
                **details)))
        return found
    worked = rungs[out.worked]
    if out.worked == 0:
        found.append(("ladder", ok(f"no out-of-memory: ran as configured "
                                   f"({worked.plan.describe()})", **details)))
    else:
        found.append(("ladder", warn(
            f"{rungs[0].outcome} as configured ({start.describe()}); worked at rung "
            f"{out.worked + 1} '{worked.name}' ({worked.plan.describe()}); tried: "
            + ", ".join(tried),
            Fix(f"Deploy with the settings that worked ({worked.plan.describe()}); in a "
                "recipe: smoke.max_chars / smoke.precision (" + see("C4") + ")",
                commands=(f"tts-doctor smoke {worked.plan.flags()}",)
                + ((ALLOC_CONF,) if start.device.startswith("cuda") else ())),
            worked=worked.name, **details)))
    return found


def _memory_verdict(stages: list[dict[str, Any]]) -> Verdict:
    peaks = _peaks(stages)
    parts = [f"peak RSS {fmt_bytes(peaks['rss'])}"]
    if peaks["torch_allocated"] is not None:
        parts.append(f"torch allocated {fmt_bytes(peaks['torch_allocated'])} / reserved "
                     f"{fmt_bytes(peaks['torch_reserved'])}")
    if peaks["nvml_used"] is not None:
        parts.append(f"device used (NVML) {fmt_bytes(peaks['nvml_used'])}")
    rise = "torch_allocated_rise" if peaks["torch_allocated"] is not None else "rss_rise"
    top = max((s for s in stages if s["name"] != "load" and s.get(rise) is not None),
              key=lambda s: s[rise], default=None)
    if top:
        what = "allocated" if rise.startswith("torch") else "RSS"
        parts.append(f"largest stage: {top['name']} (+{fmt_bytes(top[rise])} {what})")
    summary = "; ".join(parts)
    details = {"peaks": peaks, "stages": {s["name"]: s for s in stages}}
    alloc, reserved = peaks["torch_allocated"], peaks["torch_reserved"]
    retries = sum(s.get("num_alloc_retries") or 0 for s in stages)
    if retries:
        return warn(f"{summary}; the allocator freed its cache and retried {retries} times "
                    "(one step from out-of-memory)",
                    Fix("Memory is nearly exhausted: reduce fragmentation with expandable "
                        "segments, and lower precision or chunk the text (" + see("C4") + ")",
                        commands=(ALLOC_CONF,)), num_alloc_retries=retries, **details)
    if alloc and reserved and reserved > 1.5 * alloc and reserved - alloc > 512 * 2 ** 20:
        return warn(f"{summary}; reserved is {reserved / alloc:.1f}x allocated (caching or "
                    "fragmentation)",
                    Fix("The caching allocator holds much more than live tensors need: use "
                        "expandable segments, or empty the cache between requests "
                        "(torch.cuda.empty_cache())", commands=(ALLOC_CONF,)), **details)
    return ok(summary, **details)


def _leak_verdict(rep: dict[str, Any]) -> Verdict:
    runs = rep["runs"]
    if rep["verdict"] == "not-enough-runs":
        return skip(f"{len(runs)} repeat: the leak check needs --repeat 2 or more (the first "
                    "repeat is the baseline)", runs=len(runs))
    growth = rep["growth"]
    if rep["verdict"] == "leak":
        return fail("memory does not return to its baseline between runs: "
                    + "; ".join(rep["reasons"]),
                    Fix("Something keeps per-request state: run inference under "
                        "torch.inference_mode(), do not keep outputs, caches or histories "
                        "across calls (index-tts#630), and free the CUDA cache between "
                        "requests", commands=("tts-doctor smoke --repeat 10 --html leak.html",)),
                    basis=rep["basis"], growth=growth, runs=len(runs))
    shown = ", ".join(f"{k} {v:+d}" if k == "tensors"
                      else f"{k} {'+' if v >= 0 else ''}{fmt_bytes(v)}"
                      for k, v in growth.items())
    return ok(f"memory returns to its baseline over {rep['intervals']} repeats "
              f"({rep['basis']}: {shown})", basis=rep["basis"], growth=growth, runs=len(runs))


def _budget_verdict(kind: str, v: dict[str, Any], basis: str) -> Verdict:
    flag = f"--{kind}-budget"
    label = "GPU memory" if kind == "vram" else "RAM"
    longest = v["longest_chars"]
    longest_text = ("memory does not grow measurably with the text" if longest is None
                    and v["growth_per_char"] is not None
                    else f"longest text that fits about {longest:,} characters"
                    + (" (extrapolated)" if v["extrapolated"] else ""))
    details = {k: v[k] for k in ("budget", "peak_at_text", "headroom", "longest_chars",
                                 "growth_per_char", "oom_at_chars", "fit")}
    details["basis"] = basis
    if v["peak_at_text"] is None:
        return fail(f"{flag}: no length ran without running out of memory",
                    Fix("The model does not fit this device at any measured length ("
                        + see("C4") + ")"), **details)
    if v["fits"]:
        return ok(f"fits {fmt_bytes(v['budget'])} of {label}: peak "
                  f"{fmt_bytes(v['peak_at_text'])} at {v['text_chars']} characters, headroom "
                  f"{fmt_bytes(v['headroom'])}; {longest_text}", **details)
    cmds = []
    if longest and longest >= 20:
        cmds.append(f"tts-doctor smoke --max-chars {longest}")
    return fail(f"does not fit {fmt_bytes(v['budget'])} of {label}: needs "
                f"{fmt_bytes(v['peak_at_text'])} at {v['text_chars']} characters "
                f"({fmt_bytes(-v['headroom'])} over); {longest_text}",
                Fix(("Split the text into chunks that fit (smoke.max_chars in the recipe)"
                     if longest and longest >= 20 else
                     "Even short texts do not fit: a device with more memory, or half "
                     "precision") + " (" + see("C4") + ")", commands=tuple(cmds)), **details)
