"""The library surface: what the commands, the pytest plugin and your own code call.

    from tts_doctor import check, select_interpreter
    report = check(recipe=load_recipe("piper"), python="/opt/venv/bin/python")
    report.exit_code()

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


def check(*, only: tuple[str, ...] = (), skip: tuple[str, ...] = (),
          recipe: Optional[dict[str, Any]] = None, options: Optional[dict[str, Any]] = None,
          timeout: float = 30.0, python: Optional[str] = None, jobs: int = 3,
          on_finding: Optional[Callable[[Finding], None]] = None,
          reason: Optional[str] = None, project: Optional[str] = None,
          save_facts: Optional[str] = None) -> Report:
    """Select, run and collect the probes: the library entry point behind `tts-doctor check`.

    `project` is the application folder for the usage scan (tts_doctor.usage; default: the
    current folder when it holds Python code). `save_facts` is a path where what the probes
    observed is written (tts_doctor.factfile), for `judge_facts` later and elsewhere.

    Raises tts_doctor.target.TargetError (with its exit_code) when the interpreter cannot be
    diagnosed, and registry.SelectionError for patterns that match no probe.
    """
    from tts_doctor import registry, runner, snapshot, usage
    from tts_doctor.registry import Context

    specs = registry.select(only, skip)
    ctx = Context(recipe=recipe, options=dict(options or {}))
    recording = runner.Recording() if save_facts else None
    # the one scan pass (doctor/usage.py) runs here beside the probes; they read its index
    scan_pass = usage.start(specs, recipe=recipe, python=python, project=project)
    try:
        result = runner.run(specs, ctx, timeout=timeout, python=python, jobs=jobs,
                            on_finding=on_finding, recording=recording)
    finally:
        scan_pass.close()
    interpreter = dict(result.interpreter)
    interpreter["selected_by"] = reason or ("--python" if python else
                                            "the interpreter tts-doctor runs on")
    report = Report(result.findings, interpreter,
                    recipe=recipe.get("name") if recipe else None,
                    snapshot=snapshot.build(result.findings, interpreter))
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
