"""`tts-doctor check`: probe the environment and report every finding with its fix."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import click
from tts_doctor import atomic, params
from tts_doctor.api import load_recipe
from tts_doctor.commands.options import (  # noqa: F401  (as this module had them)
    KNOWN_OPTIONS,
    parse_options,
    select_probes,
    split_patterns,
)
from tts_doctor.errors import UserError
from tts_doctor.registry import ProbeSpec
from tts_doctor.report import Report


def print_checks(specs: list[ProbeSpec], as_json: bool) -> None:
    if as_json:
        rows = [{"id": s.id, "category": s.category, "title": s.title,
                 "isolated": s.isolated, "families": list(s.families)} for s in specs]
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(s.id) for s in specs)
    for s in specs:
        where = "worker" if s.isolated else "in-process"
        fam = f" [{', '.join(s.families)}]" if s.families else ""
        click.echo(f"{s.id:<{width}}  {where:<10}  {s.title}{fam}")


class _Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.enabled = sys.stderr.isatty() and total > 1 and not os.environ.get("CI")

    def __call__(self, finding: Any) -> None:
        self.done += 1
        if self.enabled:
            sys.stderr.write(f"\r\x1b[2K  checking... {self.done}/{self.total} {finding.id}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def run_check(*, only: tuple[str, ...] = (), skip: tuple[str, ...] = (),
              recipe: Optional[dict[str, Any]] = None, options: Optional[dict[str, Any]] = None,
              timeout: float = 30.0, python: Optional[str] = None, jobs: int = 3,
              progress: bool = False, reason: Optional[str] = None,
              project: Optional[str] = None, save_facts: Optional[str] = None,
              facts: Optional[str] = None, memo: str = "use") -> Report:
    """`tts_doctor.check` (or, with `facts`, `tts_doctor.judge_facts`) with a progress line
    on stderr (see tts_doctor.api)."""
    from tts_doctor import api
    from tts_doctor.registry import select

    bar = _Progress(len(select(only, skip))) if progress else None
    try:
        if facts is not None:
            return api.judge_facts(facts, only=only, skip=skip, on_finding=bar)
        return api.check(only=only, skip=skip, recipe=recipe, options=options,
                         timeout=timeout, python=python, jobs=jobs, on_finding=bar,
                         reason=reason, project=project, save_facts=save_facts, memo=memo)
    finally:
        if bar:
            bar.clear()


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default=None,
              help="Output format (default text; github when GITHUB_ACTIONS=true).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a JUnit XML report (one testcase per finding) to FILE.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the JSON report to FILE (for diff and summarize).")
@click.option("-v", "--verbose", is_flag=True, help="Show details and per-probe timing.")
@click.option("--only", multiple=True, metavar="PATTERN",
              help="Run only these probe ids or categories (globs, comma-separated).")
@click.option("--skip", multiple=True, metavar="PATTERN",
              help="Do not run these probe ids or categories (globs, comma-separated).")
@click.option("--list-checks", is_flag=True, help="List the probes and exit.")
@click.option("--strict", is_flag=True, help="Warnings count as failures (--fail-on warn).")
@click.option("--fail-on", type=click.Choice(["warn", "fail"]), default="fail",
              show_default=True, help="The lowest status that makes the exit code 1.")
@click.option("--recipe", metavar="NAME|PATH", help="Judge against a model's recipe.")
@click.option("--timeout", type=params.seconds(0.1), default=30.0, show_default=True,
              help="Seconds each probe may take before it is stopped (0.1 to 86400).")
@click.option("--python", "python", type=click.Path(exists=True, dir_okay=False),
              metavar="PATH", help="Diagnose another interpreter (a venv's python) without "
              "installing the doctor there.")
@click.option("--jobs", type=click.IntRange(1, 3), default=None, metavar="1|2|3",
              help="Worker processes for native probes, side by side (default 3; 1 on a "
              "single CPU, or to keep one worker).")
@click.option("--project", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="The application folder: its code is scanned and counts as reached "
              "(default: the current folder when it holds Python code).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Probe options, e.g. ttsfrd.resource=/path/to/resource.")
@click.option("--save-facts", "save_facts", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write what the probes observed (redacted) to FILE, to be judged "
              "later or elsewhere with --facts.")
@click.option("--facts", "facts", type=click.Path(dir_okay=False), metavar="FILE",
              help="Judge the facts in FILE (from --save-facts) instead of this machine: "
              "nothing here is probed; the recorded recipe and options apply.")
@click.option("--fresh", is_flag=True,
              help="Observe everything anew: no facts are reused from an earlier check "
              "(the facts memo; by default they are while nothing they depend on changed).")
@click.option("--color/--no-color", "colour", default=None,
              help="Force colour on or off (default: on a terminal, unless NO_COLOR).")
def check(fmt: Optional[str], as_json: bool, junit_path: Optional[str],
          report_path: Optional[str], verbose: bool, only: tuple[str, ...],
          skip: tuple[str, ...], list_checks: bool, strict: bool, fail_on: str,
          recipe: Optional[str], timeout: float, python: Optional[str], jobs: Optional[int],
          settings: tuple[str, ...], colour: Optional[bool], project: Optional[str],
          save_facts: Optional[str], facts: Optional[str], fresh: bool) -> int:
    """Probe the environment and report, per finding, what is wrong and the fix.

    \b
    Exit codes: 0 no fail or error (warnings allowed), 1 at least one fail or
    error (or warning with --strict / --fail-on warn), 2 usage error.
    """
    from tts_doctor import registry

    if as_json:
        if fmt not in (None, "json"):
            raise click.UsageError("--json conflicts with --format " + fmt)
        fmt = "json"
    if fmt is None:
        fmt = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    if strict:
        fail_on = "warn"
    only_p, skip_p, specs = select_probes(only, skip)
    if facts is not None:
        given = [flag for flag, value in (("--python", python), ("--recipe", recipe),
                                          ("--set", settings), ("--project", project),
                                          ("--save-facts", save_facts),
                                          ("--fresh", fresh)) if value]
        if given:
            raise UserError(f"--facts judges what was recorded (the recorded recipe and "
                            f"options apply); it cannot be combined with {', '.join(given)}")
    for path, flag in ((report_path, "--report"), (junit_path, "--junit"),
                       (save_facts, "--save-facts")):
        if path is not None:
            atomic.check_target(path, flag)
    for problem in registry.plugin_errors:
        click.echo(f"tts-doctor: warning: probe plugin not loaded: {problem}", err=True)
    if list_checks:
        print_checks(specs, fmt == "json")
        return 0
    options = parse_options(settings)
    if jobs is None:
        # one worker per lane; measured on 2 cores, 3 lanes beat 2 (docs/BENCHMARKS.md)
        jobs = 3 if (os.cpu_count() or 1) > 1 else 1
    recipe_data = load_recipe(recipe)
    from tts_doctor.api import select_interpreter

    if facts is not None:
        report = run_check(only=only_p, skip=skip_p, progress=fmt != "json", facts=facts)
        emit(report.to_dict(), fmt=fmt, verbose=verbose, colour=colour, fail_on=fail_on,
             junit_path=junit_path, report_path=report_path)
        return report.exit_code(fail_on)
    chosen = select_interpreter(python)
    # a TargetError (not a Python: exit 2; the worker cannot start there: exit 3) is one
    # line, mapped by cli.main like every UserError
    report = run_check(only=only_p, skip=skip_p, recipe=recipe_data, options=options,
                       timeout=timeout, python=chosen.python, jobs=jobs,
                       progress=fmt != "json", reason=chosen.reason, project=project,
                       save_facts=save_facts, memo="fresh" if fresh else "use")
    data = report.to_dict()
    emit(data, fmt=fmt, verbose=verbose, colour=colour, fail_on=fail_on,
         junit_path=junit_path, report_path=report_path)
    return report.exit_code(fail_on)



def emit(data: dict[str, Any], *, fmt: str, verbose: bool, colour: Optional[bool],
         fail_on: str, junit_path: Optional[str], report_path: Optional[str]) -> None:
    """Write a redacted report dict in the chosen format, plus the optional files."""
    from tts_doctor.render import github, junit, text
    from tts_doctor.render import json as json_render

    if junit_path:
        atomic.write_text(junit_path, junit.render(data, fail_on=fail_on))
    if report_path:
        atomic.write_text(report_path, json_render.render(data))
    if fmt == "json":
        click.echo(json_render.render(data), nl=False)
        return
    if fmt == "github":
        click.echo(github.annotations(data, fail_on=fail_on), nl=False)
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            try:
                atomic.append_text(summary_file, github.step_summary(data))
            except OSError as exc:
                click.echo(f"tts-doctor: warning: GITHUB_STEP_SUMMARY: {exc}", err=True)
        click.echo(text.render(data, verbose=verbose, colour=False), nl=False)
        return
    stream = click.get_text_stream("stdout")
    click.echo(text.render(data, verbose=verbose, colour=text.use_colour(stream, colour),
                           stream=stream), nl=False, color=True)
