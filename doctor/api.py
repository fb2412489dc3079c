"""The library surface: what the commands, the pytest plugin and your own code call.

    from tts_doctor import check, fix_plan, load_recipe, run_smoke
    report = check(recipe=load_recipe("piper"), python="/opt/venv/bin/python")
    report.exit_code()
    run = run_smoke(recipe=load_recipe("reference-hifigan-v1"))  # tts-doctor smoke
    run.to_dict()["smoke"]                                       # the JSON report's section
    plan = fix_plan(python="/opt/venv/bin/python")              # tts-doctor fix --dry-run
    plan.to_dict()                                               # ... --json

`run_smoke` is `tts_doctor.api.smoke`: the package exports it under that name because
`tts_doctor.smoke` is the smoke subpackage. `check`, `smoke` and `fix_plan` take parsed
values (a recipe dict from `load_recipe`, probe patterns, options as a dict); the commands in
tts_doctor/commands parse the flags and call these, and nothing else of each other.

Everything here runs in the doctor's own process; what it learns from the diagnosed
interpreter travels as facts (tts_doctor.target) and findings.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

from tts_doctor.finding import Finding
from tts_doctor.report import Report


@dataclass(frozen=True)
class Selection:
    """The interpreter to diagnose and why it was chosen (the report's first line says)."""

    python: Optional[str]
    reason: str


def select_interpreter(python: Optional[str] = None,
                       environ: Optional[dict[str, str]] = None) -> Selection:
    """`--python` if given; else an activated venv (VIRTUAL_ENV) or conda environment
    (CONDA_PREFIX) that is not the doctor's own; else the doctor's own interpreter.

    A doctor installed with pipx lives in its own venv: run while the user's venv is
    activated, it must diagnose the user's venv, not its own.
    """
    env = os.environ if environ is None else environ
    if python:
        return Selection(python, "--python")
    own = os.path.realpath(sys.prefix)
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = env.get(var)
        if not prefix or os.path.realpath(prefix) == own:
            continue
        for candidate in ("bin/python", "bin/python3", "python.exe", "Scripts/python.exe"):
            path = os.path.join(prefix, candidate)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                label = "venv" if var == "VIRTUAL_ENV" else "conda environment"
                return Selection(path, f"the activated {label} (${var})")
    return Selection(None, "the interpreter tts-doctor runs on")


def _patterns(values: tuple[str, ...]) -> tuple[str, ...]:
    """Probe patterns as given, comma-separated ones split: ("a,b", "c") -> ("a", "b", "c")."""
    return tuple(p.strip() for v in values for p in str(v).split(",") if p.strip())


def check(*, only: tuple[str, ...] = (), skip: tuple[str, ...] = (),
          recipe: Optional[dict[str, Any]] = None, options: Optional[dict[str, Any]] = None,
          timeout: float = 30.0, python: Optional[str] = None, jobs: int = 3,
          on_finding: Optional[Callable[[Finding], None]] = None,
          reason: Optional[str] = None, project: Optional[str] = None,
          save_facts: Optional[str] = None, memo: str = "use") -> Report:
    """Select, run and collect the probes: the library entry point behind `tts-doctor check`.

    `only`/`skip` are probe ids or categories, with globs, comma-separated ones split.
    `project` is the application folder for the usage scan (tts_doctor.usage; default: the
    current folder when it holds Python code). `save_facts` is a path where what the probes
    observed is written (tts_doctor.factfile), for `judge_facts` later and elsewhere.
    `memo` is "use" (probes whose facts an earlier check kept are judged from them while
    nothing they depend on changed, tts_doctor.memo), "fresh" (observe everything, renew the
    memo) or "off".

    Raises tts_doctor.target.TargetError (with its exit_code) when the interpreter cannot be
    diagnosed, and registry.SelectionError for patterns that match no probe.
    """
    from tts_doctor import registry, runner, snapshot, usage
    from tts_doctor.registry import Context

    specs = registry.select(_patterns(only), _patterns(skip))
    ctx = Context(recipe=recipe, options=dict(options or {}))
    from tts_doctor import target as targets

    recording = runner.Recording() if save_facts else None
    target = targets.probe_interpreter(python) if python is not None else None
    store = runner.open_memo(memo, None if target is None or target.is_home else target)
    # the one scan pass (doctor/usage.py) runs beside the probes; they read its index
    scan_pass = usage.start(specs, recipe=recipe, python=python, project=project,
                            in_thread=store is not None and store.warm)
    try:
        result = runner.run(specs, ctx, timeout=timeout, python=python, jobs=jobs,
                            on_finding=on_finding, recording=recording, memo=store,
                            target=target, yield_to_index=scan_pass.written)
    finally:
        scan_pass.close()
    interpreter = dict(result.interpreter)
    interpreter["selected_by"] = reason or ("--python" if python else
                                            "the interpreter tts-doctor runs on")
    report = Report(result.findings, interpreter,
                    recipe=recipe.get("name") if recipe else None,
                    snapshot=snapshot.build(result.findings, interpreter),
                    reused=result.reused)
    if save_facts and recording is not None:
        from tts_doctor import factfile
        from tts_doctor.redact import environment

        assert result.target is not None
        factfile.write(save_facts, factfile.build(
            target=result.target.to_dict(), interpreter=interpreter, context=ctx,
            probes=recording.probes, host=report.host, variables=environment()))
    return report


def judge_facts(path: str, *, only: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                on_finding: Optional[Callable[[Finding], None]] = None) -> Report:
    """The report of a facts file (`check --save-facts`), judged by this doctor without
    touching this machine: split probes are judged again from their facts, the others'
    findings are replayed (tts_doctor.factfile). FactsFileError (exit 2) for a bad file."""
    from tts_doctor import factfile, registry, snapshot

    facts = factfile.read(path)
    specs = registry.select(only, skip)
    findings = factfile.judge(specs, facts, on_finding)
    interpreter = dict(facts.interpreter)
    recipe = (facts.context.get("recipe") or {}) if isinstance(facts.context, dict) else {}
    return Report(findings, interpreter,
                  recipe=recipe.get("name") if isinstance(recipe, dict) else None,
                  snapshot=snapshot.build(findings, interpreter), host=facts.host,
                  variables=facts.variables)


def load_recipe(name_or_path: Optional[str]) -> Optional[dict[str, Any]]:
    """A built-in recipe by name, or a recipe file (RecipeError if it does not parse)."""
    from tts_doctor import recipe

    return recipe.load(name_or_path) if name_or_path else None


# --- smoke --------------------------------------------------------------------------------

ENGINES = ("reference", "piper", "modelscope", "indextts2", "callable")


@dataclass
class SmokeRun:
    """What `smoke` did: the findings, the report's `smoke` section (a
    `tts_doctor.smoke.session.Section`, docs/smoke.md), and the audio (a float32 NumPy array,
    None when no synthesis completed)."""

    findings: list[Finding]
    section: Any
    samples: Any = None
    sample_rate: int = 0
    recipe: Optional[str] = None

    def report(self) -> tuple[dict[str, Any], Report]:
        """(the JSON report `tts-doctor smoke --json` prints, redacted; its Report)."""
        from tts_doctor.smoke import reporting

        return reporting.build(self.findings, self.section, self.recipe)

    def to_dict(self) -> dict[str, Any]:
        return self.report()[0]

    def exit_code(self, fail_on: str = "fail") -> int:
        return self.report()[1].exit_code(fail_on)


def _engine_model(recipe: Optional[dict[str, Any]], engine: Optional[str],
                  model: Optional[dict[str, Any]], checkpoint: Optional[str],
                  model_id: Optional[str], function: Optional[str]
                  ) -> tuple[str, dict[str, Any]]:
    """The engine (given, or implied by `function`/`model_id`, or the recipe's) and its model
    options: the recipe's [model] table (when it is the recipe's engine), then `model`, then
    the checkpoint/model id/function."""
    from tts_doctor.smoke.engine import EngineConfigError

    if engine is None:
        if function is not None:
            engine = "callable"
        elif model_id is not None:
            engine = "modelscope"
        elif recipe is not None:
            engine = recipe["engine"]
        else:
            raise EngineConfigError("choose a model: --recipe NAME (see 'tts-doctor recipes') "
                                    "or --engine " + "|".join(ENGINES))
    if engine not in ENGINES:
        raise EngineConfigError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
    options = dict((recipe or {}).get("model") or {}) \
        if recipe and recipe.get("engine") == engine else {}
    options.update(model or {})
    if checkpoint is not None:
        key = {"indextts2": "checkpoint_dir", "piper": "voice"}.get(engine, "checkpoint")
        options[key] = checkpoint
    if model_id is not None:
        options["model_id"] = model_id
    if function is not None:
        options["function"] = function
    return engine, options


def smoke(*, recipe: Optional[dict[str, Any]] = None, engine: Optional[str] = None,
          model: Optional[dict[str, Any]] = None, checkpoint: Optional[str] = None,
          model_id: Optional[str] = None, function: Optional[str] = None,
          text: Optional[str] = None, text_source: Optional[str] = None,
          device: str = "auto", precision: str = "auto", max_chars: Optional[int] = None,
          ladder: bool = True, repeat: int = 0, vram_budget: Optional[int] = None,
          ram_budget: Optional[int] = None, vram_limit: Optional[int] = None,
          budget_lengths: Optional[tuple[int, ...]] = None,
          memory_snapshot: Optional[str] = None, sample_hz: float = 25.0,
          offline: bool = False, timeout: float = 1800.0, in_process: bool = False,
          progress: Optional[Callable[[str], None]] = None) -> SmokeRun:
    """Load a model and synthesize under the memory profiler; check the audio: the library
    entry point behind `tts-doctor smoke` (docs/smoke.md: the options are its flags).

    The model: `recipe` (a dict from `load_recipe`) and/or `engine`, with `model` options
    overriding the recipe's [model] table (`--set`), `checkpoint`, `model_id` or `function`
    ("module:function", the callable engine). `text` defaults to the recipe's smoke.text.
    Sizes are bytes. The synthesis runs in a child process under a watchdog (`timeout`
    seconds) unless `in_process`. Writes no file (the command writes --out, --html, --report).

    Raises a UserError (exit 2 in the CLI) for input that cannot be used: no model chosen,
    text that cannot be synthesized, an engine's missing or corrupt input.
    """
    from tts_doctor.smoke import budget, isolate, session
    from tts_doctor.smoke import text as textmod

    engine, options = _engine_model(recipe, engine, model, checkpoint, model_id, function)
    smoke_cfg = (recipe or {}).get("smoke") or {}
    if text is not None:
        words, source = textmod.validate(text, text_source or "the text"), text_source or "text"
    elif smoke_cfg.get("text"):
        words, source = textmod.validate(smoke_cfg["text"], "the recipe's smoke.text"), \
            "recipe"
    else:
        raise textmod.TextError("no text to speak: give --text or --text-file (or a recipe "
                                "with smoke.text)")
    opts = session.Options(
        engine=engine, text=words, model=options, recipe=recipe, text_source=source,
        device=device, precision=precision,
        max_chars=max_chars or smoke_cfg.get("max_chars"), ladder=ladder,
        repeat=repeat, vram_budget=vram_budget, ram_budget=ram_budget,
        budget_lengths=tuple(budget_lengths or budget.DEFAULT_LENGTHS),
        memory_snapshot=memory_snapshot, sample_hz=sample_hz, vram_limit=vram_limit,
        offline=offline)
    report_progress = progress or (lambda _message: None)
    if in_process:
        result = session.run(opts, report_progress)
    else:
        result = isolate.run(opts, report_progress, timeout=timeout)
    if result.section.engine.get("name") is None:  # the child died before sending one
        result.section = session.Section.start(opts)
    return SmokeRun(result.findings, result.section, result.samples, result.sample_rate,
                    recipe.get("name") if recipe else None)


# --- the fix plan -------------------------------------------------------------------------

@dataclass
class FixPlan:
    """What `tts-doctor fix` would do for an environment (tts_doctor.fixplan), from the
    check it ran: the shims it applies (and the .pth text before and after), per finding the
    command alternatives, the recommended first, and why that one would not run."""

    target: Any  # tts_doctor.shim_install.Target: the environment's python, site-packages
    report: Report
    plan: Any  # tts_doctor.fixplan.Plan
    pth_before: Optional[str] = None
    pth_after: Optional[str] = None
    installed: Optional[dict[str, str]] = None  # normalised name -> version, when commands

    @property
    def python(self) -> str:
        return str(self.target.python)

    def to_dict(self, allow_downgrade: bool = False,
                allow_system: bool = False) -> dict[str, Any]:
        """The plan as `tts-doctor fix --dry-run --json` prints it."""
        from tts_doctor import fixplan

        return fixplan.plan_dict(self.plan, self.target, self.pth_before, self.pth_after,
                                 self.installed, allow_downgrade, allow_system)


def fix_plan(*, only: tuple[str, ...] = (), skip: tuple[str, ...] = (),
             recipe: Optional[dict[str, Any]] = None, options: Optional[dict[str, Any]] = None,
             timeout: float = 30.0, python: Optional[str] = None,
             report: Optional[Report] = None) -> FixPlan:
    """Check the environment (or take `report`, a check of it) and plan the fixes, changing
    nothing: the library side of `tts-doctor fix --dry-run`. `python` is the environment's
    interpreter (default: the doctor's own; `select_interpreter` picks as the CLI does).

    Raises a UserError when `python` is not an interpreter whose environment can be fixed."""
    from tts_doctor import fixplan
    from tts_doctor import shim_install as si

    t = si.target(python)
    if report is None:
        # a repair is planned on what is observed now (never on facts kept by the memo)
        report = check(only=only, skip=skip, recipe=recipe, options=options, timeout=timeout,
                       python=python, memo="fresh")
    plan = fixplan.make_plan(report.findings)
    before = after = None
    if plan.shims:
        before, after, _ = si.planned(t, list(plan.shims))
    installed = fixplan.installed_versions(t.python) if plan.fixes else None
    return FixPlan(t, report, plan, before, after, installed)
