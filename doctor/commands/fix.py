"""`tts-doctor fix`: run the check, plan the fixes, apply the shims, print (or run) the rest.

The plan has four parts, from the findings (warn/fail) that carry a `Fix`:

- **shims** the doctor applies itself (`fix.shim` names a hooked shim): one `.pth` file in
  the environment's site-packages, written by doctor.shim_install;
- **library shims** (`mel`): advice to use from code, nothing to apply;
- **package commands** (`fix.commands`): printed; run only with `--run-commands`, each shown
  before it runs, stopping at the first that fails;
- **environment variables** (`export NAME=value` lines): printed, never run (a child process
  cannot set them for the user's shell).

`--dry-run` prints the plan, with the file that would be written and its content. Otherwise
the shims are applied, the probes whose findings they address are run again, and a
before/after table is shown. Every applied change goes into a journal
(`$TTS_DOCTOR_STATE_DIR`, default `~/.local/state/tts-doctor/fix-journal.json`), and
`tts-doctor fix --undo` reverts the latest one for the environment: the `.pth` is put back as
it was (if nobody changed it since), and for commands that were run, the package versions
recorded before them are restored by commands printed (and run with `--run-commands`).

Exit codes: 0 everything planned was applied (or nothing to do), 1 a step failed, 2 usage.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import click
from tts_doctor import atomic
from tts_doctor.commands.check import load_recipe, parse_options, split_patterns
from tts_doctor.finding import Finding, Status

JOURNAL_NAME = "fix-journal.json"


# --- the plan -----------------------------------------------------------------------------

@dataclass
class Plan:
    """What `fix` would do for a set of findings."""

    shims: dict[str, list[str]] = field(default_factory=dict)  # shim -> finding ids
    library: dict[str, list[str]] = field(default_factory=dict)
    unknown_shims: dict[str, list[str]] = field(default_factory=dict)
    commands: list[tuple[str, list[str]]] = field(default_factory=list)
    exports: list[tuple[str, list[str]]] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    considered: int = 0

    @property
    def empty(self) -> bool:
        return not (self.shims or self.library or self.commands or self.exports
                    or self.unknown_shims)


def _add(rows: list[tuple[str, list[str]]], line: str, finding_id: str) -> None:
    for text, ids in rows:
        if text == line:
            if finding_id not in ids:
                ids.append(finding_id)
            return
    rows.append((line, [finding_id]))


def make_plan(findings: list[Finding]) -> Plan:
    """Group the fixes of warn/fail findings; error findings are listed, not acted on (their
    'fix' is a diagnostic command: the probe could not judge)."""
    from tts_doctor import shims

    plan = Plan()
    for f in findings:
        if f.status == Status.ERROR:
            plan.errors.append(f)
            continue
        if f.status not in (Status.WARN, Status.FAIL) or f.fix is None:
            continue
        plan.considered += 1
        if f.fix.shim:
            target = (plan.shims if f.fix.shim in shims.HOOKED else
                      plan.library if f.fix.shim in shims.LIBRARY else plan.unknown_shims)
            target.setdefault(f.fix.shim, []).append(f.id)
        for line in f.fix.commands:
            line = line.strip()
            if not line:
                continue
            _add(plan.exports if line.startswith("export ") else plan.commands, line, f.id)
    return plan


# --- the journal --------------------------------------------------------------------------

def state_dir() -> Path:
    if os.environ.get("TTS_DOCTOR_STATE_DIR"):
        return Path(os.environ["TTS_DOCTOR_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "tts-doctor"


@contextlib.contextmanager
def _journal() -> Iterator[dict[str, Any]]:
    """The journal, locked for the duration; written back atomically on exit."""
    folder = state_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / (JOURNAL_NAME + ".lock"), "w")
    except OSError as exc:
        raise click.ClickException(f"cannot use the fix journal in {folder}: {exc} (set "
                                   "TTS_DOCTOR_STATE_DIR to a writable folder)") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / JOURNAL_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {"version": 1, "transactions": []}
        except (OSError, json.JSONDecodeError) as exc:
            raise click.ClickException(f"the fix journal {path} is unreadable ({exc}); move "
                                       "it aside to start a new one") from None
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            atomic.write_text(path, json.dumps(data, indent=2) + "\n")


def _distributions(python: str) -> Optional[dict[str, str]]:
    """name -> version of every distribution the interpreter sees (for undoing commands)."""
    code = ("import importlib.metadata as m, json; print(json.dumps({(d.metadata['Name'] or '')"
            ".lower(): d.version for d in m.distributions()}))")
    try:
        proc = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "TTS_DOCTOR_SHIMS": "0"})
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError):
        return None


def reverse_commands(python: str, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The pip commands that take the distributions from `after` back to `before`."""
    py = shlex.quote(python)
    restore = sorted(f"{n}=={v}" for n, v in before.items() if n and after.get(n) != v)
    remove = sorted(n for n in after if n and n not in before)
    out = []
    if remove:
        out.append(f"{py} -m pip uninstall -y {' '.join(shlex.quote(n) for n in remove)}")
    if restore:
        out.append(f"{py} -m pip install {' '.join(shlex.quote(r) for r in restore)}")
    return out


# --- rendering ----------------------------------------------------------------------------

def _ids(ids: list[str]) -> str:
    return f"  # {', '.join(ids)}"


def render_plan(plan: Plan, pth_path: str, pth_before: Optional[str],
                pth_after: Optional[str], dry_run: bool) -> str:
    out: list[str] = []
    if plan.shims:
        out.append("Shims the doctor applies:")
        for name, ids in plan.shims.items():
            out.append(f"  {name}{_ids(ids)}")
        if pth_before == pth_after:
            out.append(f"  {pth_path} already holds them: nothing to write")
        else:
            verb = "would write" if dry_run else "writes"
            out.append(f"  {verb} {pth_path} ({'replacing' if pth_before else 'new file'}):")
            out += [f"    | {line}" for line in (pth_after or "").splitlines()]
    if plan.library:
        out.append("Library shims (use them from your code; nothing to install):")
        from tts_doctor import shims

        for name, ids in plan.library.items():
            out.append(f"  {name}: {shims.LIBRARY[name]}{_ids(ids)}")
    if plan.unknown_shims:
        out.append("Shims this tts-doctor does not know (a newer probe plugin?):")
        for name, ids in plan.unknown_shims.items():
            out.append(f"  {name}{_ids(ids)}")
    if plan.commands:
        out.append("Commands (pip, apt, tts-doctor; printed, run only with --run-commands):")
        out += [f"  $ {cmd}{_ids(ids)}" for cmd, ids in plan.commands]
    if plan.exports:
        out.append("Environment variables (set them in your shell or image; never run):")
        out += [f"  {line}{_ids(ids)}" for line, ids in plan.exports]
    if plan.errors:
        out.append("Probes that could not judge (see `tts-doctor check`): "
                   + ", ".join(f.id for f in plan.errors))
    return "\n".join(out) + ("\n" if out else "")


def _row(f: Optional[Finding]) -> str:
    return "absent" if f is None else f.status.value


# --- the command --------------------------------------------------------------------------

@click.command()
@click.option("--dry-run", is_flag=True, help="Show the plan (files with their content); "
              "change nothing.")
@click.option("--run-commands", is_flag=True, help="Also run the package commands, each "
              "shown first (export lines are never run).")
@click.option("--undo", is_flag=True, help="Revert the latest fix applied to this "
              "environment.")
@click.option("--python", "python", type=click.Path(exists=True, dir_okay=False),
              metavar="PATH", help="Fix another environment (a venv's python).")
@click.option("--only", multiple=True, metavar="PATTERN", help="Check only these probes "
              "(ids or categories, globs, comma-separated).")
@click.option("--skip", multiple=True, metavar="PATTERN", help="Do not run these probes.")
@click.option("--recipe", metavar="NAME|PATH", help="Judge against a model's recipe.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Probe options.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds each probe may take.")
def fix(dry_run: bool, run_commands: bool, undo: bool, python: Optional[str],
        only: tuple[str, ...], skip: tuple[str, ...], recipe: Optional[str],
        settings: tuple[str, ...], timeout: float) -> int:
    """Apply the fixes the doctor can apply itself (shims); print the package commands.

    \b
    Exit codes: 0 applied (or nothing to do), 1 a step failed, 2 usage error.
    """
    from tts_doctor import registry
    from tts_doctor import shim_install as si
    from tts_doctor.commands.check import run_check
    from tts_doctor.registry import SelectionError

    if undo and dry_run:
        raise click.UsageError("--undo and --dry-run cannot be combined")
    if undo:
        if only or skip or recipe or settings:
            raise click.UsageError("--undo takes only --python and --run-commands")
        return _undo(python, run_commands)
    only_p, skip_p = split_patterns(only), split_patterns(skip)
    try:
        registry.select(only_p, skip_p)
    except SelectionError as exc:
        raise click.UsageError(str(exc)) from None
    options = parse_options(settings)
    recipe_data = load_recipe(recipe)
    try:
        t = si.target(python)
    except si.ShimError as exc:
        raise click.UsageError(str(exc)) from None

    report = run_check(only=only_p, skip=skip_p, recipe=recipe_data, options=options,
                       timeout=timeout, python=python)
    plan = make_plan(report.findings)
    click.echo(f"tts-doctor fix: {t.python} ({len(report.findings)} findings, "
               f"{plan.considered} with a fix)")
    if plan.empty:
        click.echo("nothing to fix" + (f"; {len(plan.errors)} probe(s) could not judge: "
                                       + ", ".join(f.id for f in plan.errors)
                                       if plan.errors else ""))
        return 0
    pth_before = pth_after = None
    if plan.shims:
        pth_before, pth_after, _ = si.planned(t, list(plan.shims))
    click.echo(render_plan(plan, str(t.pth), pth_before, pth_after, dry_run), nl=False)
    if dry_run:
        return 0

    failed = False
    transaction: dict[str, Any] = {"id": uuid.uuid4().hex[:12], "time": time.time(),
                                   "python": t.python, "purelib": str(t.purelib),
                                   "actions": [], "undone": False}
    if plan.shims and pth_before != pth_after:
        try:
            change = si.install(list(plan.shims), python)
        except si.ShimError as exc:
            click.echo(f"tts-doctor: error: {exc}", err=True)
            failed = True
        else:
            transaction["actions"].append({"kind": "pth", "path": change.path,
                                           "before": change.before, "after": change.after})
            click.echo(f"applied: shims {', '.join(change.shims)} in {change.path}")
    if run_commands and plan.commands:
        before = _distributions(t.python)
        for cmd, _ in plan.commands:
            click.echo(f"$ {cmd}")
            rc = subprocess.run(cmd, shell=True).returncode
            transaction["actions"].append({"kind": "command", "command": cmd, "rc": rc})
            if rc != 0:
                click.echo(f"tts-doctor: error: the command exited {rc}; stopping here",
                           err=True)
                failed = True
                break
        after = _distributions(t.python)
        if before is not None and after is not None and before != after:
            transaction["actions"].append({"kind": "distributions", "before": before,
                                           "after": after})
    elif plan.commands:
        click.echo("commands not run (add --run-commands to run them)")
    if transaction["actions"]:
        with _journal() as journal:
            journal["transactions"].append(transaction)
        click.echo(f"recorded as fix {transaction['id']}: `tts-doctor fix --undo"
                   f"{' --python ' + shlex.quote(t.python) if python else ''}` reverts it")

    affected = sorted({i for ids in plan.shims.values() for i in ids}
                      | ({i for _, ids in plan.commands for i in ids} if run_commands else set()))
    if affected and transaction["actions"]:
        again = run_check(only=tuple(affected), recipe=recipe_data, options=options,
                          timeout=timeout, python=python)
        old = {f.id: f for f in report.findings}
        new = {f.id: f for f in again.findings}
        click.echo("before -> after:")
        width = max(len(i) for i in affected)
        for i in affected:
            f = new.get(i)
            summary = f.summary if f is not None else ""
            click.echo(f"  {i:<{width}}  {_row(old.get(i)):>5} -> {_row(f):<5}  {summary}")
    return 1 if failed else 0


def _undo(python: Optional[str], run_commands: bool) -> int:
    from tts_doctor import shim_install as si

    try:
        t = si.target(python)
    except si.ShimError as exc:
        raise click.UsageError(str(exc)) from None
    with _journal() as journal:
        pending = [tx for tx in journal["transactions"]
                   if tx.get("purelib") == str(t.purelib) and not tx.get("undone")]
        if not pending:
            click.echo(f"nothing to undo for {t.python}")
            return 0
        tx = pending[-1]
        failed = False
        for action in reversed(tx["actions"]):
            if action["kind"] == "pth":
                try:
                    si.restore(action["path"], action["before"], action["after"])
                except si.ShimError as exc:
                    click.echo(f"tts-doctor: error: {exc}", err=True)
                    failed = True
                    continue
                click.echo(("removed " if action["before"] is None else "restored ")
                           + action["path"])
            elif action["kind"] == "distributions":
                for cmd in reverse_commands(t.python, action["before"], action["after"]):
                    click.echo(f"$ {cmd}")
                    if run_commands:
                        rc = subprocess.run(cmd, shell=True).returncode
                        if rc != 0:
                            click.echo(f"tts-doctor: error: the command exited {rc}",
                                       err=True)
                            failed = True
                if not run_commands:
                    click.echo("(package changes are reverted by the commands above; add "
                               "--run-commands to run them)")
        if not failed:
            tx["undone"] = True
            click.echo(f"undid fix {tx['id']}")
    if failed:
        sys.exit(1)
    return 0
