"""One smoke run: load, synthesize down the ladder, check the audio, repeat, fit the budget.

`run(options)` returns the findings (the same `Finding` objects `check` reports, so the
renderers and the JSON contract apply) and the `smoke` section of the JSON report: engine,
timing, per-stage memory, the sampled timeline, the ladder's rungs, the repeat and budget
results (docs/smoke.md). Errors in the user's input (`EngineConfigError`) are raised for the
command to turn into exit code 2 before anything is written.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from tts_doctor.finding import Finding, Fix, Status
from tts_doctor.smoke import allocator_history, audio_checks, budget, ladder, leak
from tts_doctor.smoke.engine import EngineConfigError, EngineUnavailable, create
from tts_doctor.smoke.profiler import Profiler
from tts_doctor.smoke.sizes import fmt_bytes

CATEGORY = "smoke"
ALLOC_CONF = "export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"


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


@dataclass
class Result:
    findings: list[Finding]
    section: dict[str, Any]
    samples: Any = None
    sample_rate: int = 0


def _f(name: str, status: Status, summary: str, fix: Optional[Fix] = None,
       duration: float = 0.0, **details: Any) -> Finding:
    return Finding(f"{CATEGORY}.{name}", CATEGORY, status, summary, details, fix, duration)


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


def _limit_vram(device: str, limit: int) -> Optional[Finding]:
    """Cap this process's CUDA allocator at `limit` bytes (set_per_process_memory_fraction):
    a smaller GPU emulated on a larger one, and the way the ladder is exercised for real."""
    if not device.startswith("cuda"):
        return _f("vram-limit", Status.FAIL, f"--vram-limit needs a CUDA device, not {device}",
                  Fix("Run on the GPU, or use --ram-budget for a CPU run.",
                      commands=("tts-doctor smoke --device cuda --vram-limit 12GiB",)))
    import torch

    index = torch.device(device).index or 0
    total = torch.cuda.get_device_properties(index).total_memory
    fraction = min(1.0, limit / total)
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return _f("vram-limit", Status.OK, f"CUDA allocator capped at {fmt_bytes(limit)} "
              f"({fraction:.3f} of {fmt_bytes(total)}): a smaller GPU emulated",
              limit=limit, total=total, fraction=round(fraction, 5))


def run(opts: Options, progress: Callable[[str], None] = lambda _: None) -> Result:
    engine = create(opts.engine, opts.model, opts.recipe)
    profiler = Profiler("cpu", sample_hz=opts.sample_hz)
    findings: list[Finding] = []
    recipe = opts.recipe or {}
    section: dict[str, Any] = {
        "engine": {"name": opts.engine, "device": opts.device, "precision": opts.precision,
                   "info": {}},
        "text": {"chars": len(opts.text), "source": opts.text_source, "chunks": None},
        "audio": None, "timing": None, "memory": None, "stages": [], "timeline": None,
        "ladder": None, "repeat": None, "budget": None, "memory_snapshot": None,
    }
    result = Result(findings, section)
    profiler.start()
    try:
        _run(engine, opts, profiler, findings, section, result, recipe, progress)
    finally:
        profiler.stop()
        if not section["stages"]:
            section["stages"] = profiler.stages()
        prof = profiler.to_dict()
        section["timeline"] = prof["timeline"]
        section["profiler"] = {"sample_hz": prof["sample_hz"],
                               "rss_peak_per_stage": prof["rss_peak_per_stage"],
                               "nvml_device": profiler.nvml.name,
                               "nvml_error": profiler.nvml.error}
        if section["memory"] is not None:
            section["memory"]["peak"] = _peaks(section["stages"])
        engine.close()
    return result


def _run(engine: Any, opts: Options, profiler: Profiler, findings: list[Finding],
         section: dict[str, Any], result: Result, recipe: dict[str, Any],
         progress: Callable[[str], None]) -> None:
    # --- device and load ------------------------------------------------------------------
    try:
        device = engine.resolve_device(opts.device)
    except EngineUnavailable as exc:
        findings.append(_f("load", Status.FAIL, f"{opts.engine} engine cannot run here: {exc}",
                           exc.fix, **exc.details))
        return
    precision, allow_precision = _start_precision(opts)
    if precision not in engine.precisions:
        raise EngineConfigError(f"the {opts.engine} engine runs {', '.join(engine.precisions)} "
                                f"only, not {precision}")
    profiler.set_device(device)
    if opts.vram_limit:
        limited = _limit_vram(device, opts.vram_limit)
        if limited is not None:
            findings.append(limited)
            if limited.status is Status.FAIL:
                return
    engine.profiler = profiler
    section["engine"].update(device=device, precision=precision)
    baseline = profiler.current()
    progress(f"loading the {opts.engine} engine on {device}")
    t0 = time.perf_counter()
    try:
        engine.load(device, precision)
    except (EngineConfigError, KeyboardInterrupt):
        raise
    except EngineUnavailable as exc:
        findings.append(_f("load", Status.FAIL, f"{opts.engine} engine cannot load: {exc}",
                           exc.fix, time.perf_counter() - t0, **exc.details))
        return
    except Exception as exc:
        oom = ladder.is_oom(exc)
        tb = "\n".join("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                       .strip().splitlines()[-12:])
        fix = Fix("The weights alone do not fit in this device's free memory (FAILURES.md "
                  "C4): free the device (other processes), use a larger one, or run on the "
                  "CPU", commands=("tts-doctor smoke --device cpu",)) if oom else Fix(
            "Loading the model raised: read the traceback; a checkpoint from another version "
            "of the model's code is the usual cause")
        findings.append(_f("load", Status.FAIL,
                           f"loading the model failed: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}",
                           fix, time.perf_counter() - t0, traceback=tb))
        return
    load_s = time.perf_counter() - t0
    info = engine.info()
    section["engine"]["info"] = info
    after_load = profiler.current()
    section["memory"] = {"baseline": baseline, "after_load": after_load, "peak": {}}
    findings.append(_f("load", Status.OK, _load_summary(opts.engine, device, precision,
                                                        load_s, info, after_load, baseline),
                       duration=load_s, device=device, precision=precision,
                       load_s=round(load_s, 3), **_small(info)))
    if engine.random_weights:
        findings.append(_f("weights", Status.OK,
                           "seeded random weights: the audio is noise, not speech; memory and "
                           "speed are those of the real architecture", weights="random",
                           seed=info.get("seed")))
    elif info.get("checkpoint"):
        ck = info.get("checkpoint_info") or {}
        note = " (weight norm folded)" if ck.get("weight_norm") else ""
        swap = (f"; the checkpoint is HiFi-GAN {ck['config'].upper()}, not the recipe's "
                f"{ck['requested'].upper()}") if ck.get("config") != ck.get("requested") else ""
        findings.append(_f("weights", Status.OK,
                           f"HiFi-GAN generator from {info['checkpoint']}{note}{swap}; the "
                           "acoustic model is random, so it vocodes a random mel (not speech)",
                           weights="checkpoint", **ck))

    # --- synthesis down the ladder --------------------------------------------------------
    snapshot_reason = None
    if opts.memory_snapshot:
        snapshot_reason = allocator_history.unavailable(device)
        if snapshot_reason is None:
            allocator_history.start()
    start = ladder.Plan(device, precision, opts.max_chars)
    min_rms = float((recipe.get("audio") or {}).get("min_rms", audio_checks.MIN_RMS))

    def on_rung(rung: ladder.Rung, i: int) -> None:
        progress(f"synthesizing ({rung.name}: {rung.plan.describe()})" if i > 1
                 else f"synthesizing {len(opts.text)} characters on {device}")

    outcome = ladder.run(engine, opts.text, start, profiler, enabled=opts.ladder,
                         allow_precision=allow_precision, min_rms=min_rms, on_rung=on_rung)
    section["ladder"] = outcome.to_dict()
    section["stages"] = profiler.stages()  # load + the ladder's synthesis, before repeats
    if opts.memory_snapshot:
        if snapshot_reason is None:
            allocator_history.dump(opts.memory_snapshot)
            section["memory_snapshot"] = opts.memory_snapshot
            findings.append(_f("memory-snapshot", Status.OK,
                               f"allocator history written to {opts.memory_snapshot}: open it "
                               "at https://pytorch.org/memory_viz", path=opts.memory_snapshot))
        else:
            findings.append(_f("memory-snapshot", Status.SKIP,
                               f"no allocator history: {snapshot_reason}",
                               reason=snapshot_reason))
    findings.extend(_ladder_findings(outcome, opts, start, allow_precision))
    if outcome.worked is None:
        return
    plan = outcome.plan
    assert plan is not None
    rung = outcome.rungs[outcome.worked]
    samples, rate = outcome.samples, outcome.sample_rate
    result.samples, result.sample_rate = samples, rate
    seconds = len(samples) / rate if rate else 0.0
    rtf = rung.wall_s / seconds if seconds else None
    section["engine"].update(device=plan.device, precision=plan.precision)
    section["text"]["chunks"] = rung.chunks
    section["timing"] = {"load_s": round(load_s, 4), "synthesis_s": round(rung.wall_s, 4),
                         "first_audio_s": round(rung.first_audio_s or rung.wall_s, 4),
                         "audio_s": round(seconds, 4),
                         "rtf": round(rtf, 4) if rtf is not None else None}
    stats = audio_checks.analyze(samples)
    section["audio"] = {"sample_rate": rate, "samples": stats["samples"],
                        "seconds": round(seconds, 4), "rms": stats["rms"],
                        "peak": stats["peak"], "dc": stats["dc"],
                        "clip_ratio": stats["clip_ratio"], "non_finite": stats["non_finite"],
                        "out": None}
    rtf_text = f"RTF {rtf:.3f}" if rtf is not None else "RTF -"
    findings.append(_f("synthesis", Status.OK,
                       f"{seconds:.2f} s of audio in {rung.wall_s:.2f} s ({rtf_text}, first "
                       f"audio after {rung.first_audio_s or rung.wall_s:.2f} s) on "
                       f"{plan.describe()}", duration=rung.wall_s,
                       audio_s=round(seconds, 3), wall_s=round(rung.wall_s, 4),
                       rtf=section["timing"]["rtf"],
                       first_audio_s=section["timing"]["first_audio_s"], chunks=rung.chunks))
    findings.append(_memory_finding(section["stages"]))
    findings.extend(audio_checks.check(samples, rate, opts.text,
                                       audio_cfg=recipe.get("audio"),
                                       precision=plan.precision,
                                       recipe_name=recipe.get("name")))

    # --- repeat: the leak check -----------------------------------------------------------
    if opts.repeat:
        progress(f"repeating the synthesis {opts.repeat} times")
        rep = leak.repeat(engine, opts.text, plan, profiler, opts.repeat,
                          on_run=lambda i, n: progress(f"repeat {i}/{n}"))
        section["repeat"] = rep
        findings.append(_leak_finding(rep))

    # --- budget ---------------------------------------------------------------------------
    for kind, limit in (("vram", opts.vram_budget), ("ram", opts.ram_budget)):
        if limit is None:
            continue
        flag = f"--{kind}-budget"
        if kind == "vram" and not plan.device.startswith("cuda"):
            findings.append(_f("budget", Status.SKIP,
                               f"{flag}: the model ran on {plan.device}, there is no GPU memory "
                               "to measure (on a CPU use --ram-budget)", budget=limit))
            continue
        if kind == "ram" and plan.device != "cpu":
            findings.append(_f("budget", Status.SKIP,
                               f"{flag}: the model ran on {plan.device}; host RAM is measured "
                               "for CPU runs (use --vram-budget for the GPU)", budget=limit))
            continue
        progress(f"measuring peak memory at {len(opts.budget_lengths)} text lengths")
        measured = budget.measure(engine, opts.text, plan, profiler, kind, opts.budget_lengths,
                                  on_length=lambda i, n: progress(f"budget length {i}/{n}"))
        main_peak = _peaks(section["stages"]).get("rss" if kind == "ram" else "torch_reserved")
        v = budget.verdict(measured, limit, len(opts.text), main_peak)
        section["budget"] = {"kind": kind, "basis": measured["basis"],
                             "overhead": measured["overhead"],
                             "points": [p.to_dict() for p in measured["points"]], **v}
        findings.append(_budget_finding(kind, v, measured["basis"], plan))


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


def _ladder_findings(out: ladder.Outcome, opts: Options, start: ladder.Plan,
                     allow_precision: bool) -> list[Finding]:
    found: list[Finding] = []
    rungs = out.rungs
    tried = [f"{r.name} ({r.outcome})" for r in rungs]
    details = {"rungs": [r.to_dict() for r in rungs]}
    half = [r for r in rungs if r.plan.precision in ("fp16", "bf16") and r.outcome != "oom"
            and not (r.outcome == "error" and out.error is not None and r is rungs[-1])]
    if half:
        broken = [r for r in half if r.outcome in ("broken-audio", "error")]
        if broken:
            b = broken[0]
            status = Status.WARN if (allow_precision and out.worked is not None) else Status.FAIL
            what = "breaks the audio" if b.outcome == "broken-audio" else "does not run"
            found.append(_f("precision", status,
                            f"{b.plan.precision} {what} on {b.plan.device}: {b.detail}"
                            + (" (FAILURES.md C5)" if b.outcome == "broken-audio" else ""),
                            Fix("Run this model in fp32 on this device: half precision "
                                + ("gives NaN or silence here" if b.outcome == "broken-audio"
                                   else "is not supported here"),
                                commands=("tts-doctor smoke --precision fp32",)),
                            precision=b.plan.precision, device=b.plan.device, detail=b.detail))
        else:
            found.append(_f("precision", Status.OK,
                            f"{half[0].plan.precision} output is finite and above the silence "
                            "floor", precision=half[0].plan.precision))
    if out.error is not None:
        err = out.error
        found.append(_f("synthesis", Status.FAIL,
                        f"synthesis failed: {err['type']}: {err['message'][:200]}",
                        Fix("The engine raised an error that is not out-of-memory (the ladder "
                            "stops there: less memory does not fix it); read the traceback"),
                        traceback=err["traceback"], rung=rungs[-1].name))
        return found
    if out.worked is None:
        ooms = sum(1 for r in rungs if r.outcome == "oom")
        if not out.enabled:
            found.append(_f("ladder", Status.FAIL,
                            f"out of memory as configured ({start.describe()}); the ladder is "
                            "off (--no-ladder)",
                            Fix("Run without --no-ladder to find settings that fit, or split "
                                "the text yourself (--max-chars 200) (FAILURES.md C4)",
                                commands=("tts-doctor smoke --max-chars 200",)),
                            **details))
        else:
            found.append(_f("ladder", Status.FAIL,
                            f"out of memory at every rung ({ooms} of {len(rungs)} rungs OOM): "
                            + ", ".join(tried),
                            Fix("The model does not fit this device even with half precision, "
                                "short text chunks, chunked vocoding"
                                + (" and the CPU" if any(r.name == "cpu" for r in rungs) else "")
                                + ": use a device with more free memory, stop other processes "
                                "on it, or shorten the input further (FAILURES.md C4)",
                                commands=(ALLOC_CONF,) if start.device.startswith("cuda")
                                else ()), **details))
        return found
    worked = rungs[out.worked]
    if out.worked == 0:
        found.append(_f("ladder", Status.OK,
                        f"no out-of-memory: ran as configured ({worked.plan.describe()})",
                        **details))
    else:
        found.append(_f("ladder", Status.WARN,
                        f"{rungs[0].outcome} as configured ({start.describe()}); worked at rung "
                        f"{out.worked + 1} '{worked.name}' ({worked.plan.describe()}); tried: "
                        + ", ".join(tried),
                        Fix(f"Deploy with the settings that worked ({worked.plan.describe()}); "
                            "in a recipe: smoke.max_chars / smoke.precision (FAILURES.md C4)",
                            commands=(f"tts-doctor smoke {worked.plan.flags()}",)
                            + ((ALLOC_CONF,) if start.device.startswith("cuda") else ())),
                        worked=worked.name, **details))
    return found


def _memory_finding(stages: list[dict[str, Any]]) -> Finding:
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
        return _f("memory", Status.WARN,
                  f"{summary}; the allocator freed its cache and retried {retries} times "
                  "(one step from out-of-memory)",
                  Fix("Memory is nearly exhausted: reduce fragmentation with expandable "
                      "segments, and lower precision or chunk the text",
                      commands=(ALLOC_CONF,)), num_alloc_retries=retries, **details)
    if alloc and reserved and reserved > 1.5 * alloc and reserved - alloc > 512 * 2 ** 20:
        return _f("memory", Status.WARN,
                  f"{summary}; reserved is {reserved / alloc:.1f}x allocated (caching or "
                  "fragmentation)",
                  Fix("The caching allocator holds much more than live tensors need: use "
                      "expandable segments, or empty the cache between requests "
                      "(torch.cuda.empty_cache())", commands=(ALLOC_CONF,)), **details)
    return _f("memory", Status.OK, summary, **details)


def _leak_finding(rep: dict[str, Any]) -> Finding:
    runs = rep["runs"]
    if rep["verdict"] == "not-enough-runs":
        return _f("leak", Status.SKIP, f"{len(runs)} repeat: the leak check needs --repeat 2 "
                  "or more (the first repeat is the baseline)", runs=len(runs))
    growth = rep["growth"]
    if rep["verdict"] == "leak":
        return _f("leak", Status.FAIL,
                  "memory does not return to its baseline between runs: "
                  + "; ".join(rep["reasons"]),
                  Fix("Something keeps per-request state: run inference under "
                      "torch.inference_mode(), do not keep outputs, caches or histories across "
                      "calls (index-tts#630), and free the CUDA cache between requests",
                      commands=("tts-doctor smoke --repeat 10 --html leak.html",)),
                  basis=rep["basis"], growth=growth, runs=len(runs))
    shown = ", ".join(f"{k} {v:+d}" if k == "tensors"
                      else f"{k} {'+' if v >= 0 else ''}{fmt_bytes(v)}"
                      for k, v in growth.items())
    return _f("leak", Status.OK,
              f"memory returns to its baseline over {rep['intervals']} repeats ({rep['basis']}: "
              f"{shown})", basis=rep["basis"], growth=growth, runs=len(runs))


def _budget_finding(kind: str, v: dict[str, Any], basis: str, plan: ladder.Plan) -> Finding:
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
        return _f("budget", Status.FAIL, f"{flag}: no length ran without running out of memory",
                  Fix("The model does not fit this device at any measured length (FAILURES.md "
                      "C4)"), **details)
    if v["fits"]:
        return _f("budget", Status.OK,
                  f"fits {fmt_bytes(v['budget'])} of {label}: peak {fmt_bytes(v['peak_at_text'])}"
                  f" at {v['text_chars']} characters, headroom {fmt_bytes(v['headroom'])}; "
                  f"{longest_text}", **details)
    cmds = []
    if longest and longest >= 20:
        cmds.append(f"tts-doctor smoke --max-chars {longest}")
    return _f("budget", Status.FAIL,
              f"does not fit {fmt_bytes(v['budget'])} of {label}: needs "
              f"{fmt_bytes(v['peak_at_text'])} at {v['text_chars']} characters "
              f"({fmt_bytes(-v['headroom'])} over); {longest_text}",
              Fix(("Split the text into chunks that fit (smoke.max_chars in the recipe)"
                   if longest and longest >= 20 else
                   "Even short texts do not fit: a device with more memory, or half precision")
                  + " (FAILURES.md C4)", commands=tuple(cmds)), **details)
