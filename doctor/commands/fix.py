"""`tts-doctor fix`: run the check, plan the fixes, apply the shims, print (or run) the rest.

The plan has four parts, from the findings (warn/fail) that carry a `Fix`:

- **shims** the doctor applies itself (`fix.shim` names a hooked shim): one `.pth` file in
  the environment's site-packages, written by doctor.shim_install;
- **library shims** (`mel`): advice to use from code, nothing to apply;
- **package commands** (`fix.commands`): per finding, its **alternatives**, the first one
  the recommended (`Fix.alternatives`; an alternative may be several steps, e.g. uninstall
  then install). Printed; with `--run-commands` the steps of the recommended alternative only
  are run, each shown first, as an argument vector without a shell, the finding probed again
  after each step, stopping as soon as it is fixed (a shim that already fixed it means no
  command runs at all). The other alternatives are never run: they are for the user to
  choose. A step that would downgrade torch, torchaudio, numpy, scipy or transformers (judged
  from its requirement specifiers against the installed versions, and held by a constraints
  file against downgrades pip's resolver would make) is refused unless `--allow-downgrade`;
  system commands (apt-get, needing root) run only with `--allow-system`;
- **environment variables** (`export NAME=value` lines) and commands given as text: printed,
  never run (a child process cannot set them for the user's shell).

`--dry-run` prints the plan, with the file that would be written and its content, and what
would be refused. Otherwise the shims are applied, the probes whose findings they address are
run again, and a before/after table is shown.

The journal (`$TTS_DOCTOR_STATE_DIR`, default `~/.local/state/tts-doctor/fix-journal.json`)
is written, atomically and fsync'd, BEFORE each change it records (the `.pth` text before and
after; the installed versions before each command) and completed after it, so a `kill -9` at
any point leaves a journal that knows about every change that may have happened.
`tts-doctor fix --undo` reverts the latest fix for the environment: the `.pth` is put back as
it was (if nobody changed it since), and every package a command changed is reinstalled at
its recorded version (`pip install --no-deps NAME==VERSION`, no shell; packages the commands
added are uninstalled). It then compares the installed versions with the recorded ones and
names every package it could not restore (exit 1).

Exit codes: 0 everything planned was applied (or nothing to do), 1 a step failed, was refused
or left its finding unfixed, or undo could not restore everything, 2 usage.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import click
from tts_doctor import atomic, params
from tts_doctor.finding import Command, Finding, Status
from tts_doctor.fixplan import (  # noqa: F401  (the plan's names, as this module had them)
    CORE,
    Plan,
    downgrades,
    make_plan,
    pip_install_args,
    plan_dict,
    refusal,
)
from tts_doctor.fixplan import installed_versions as _distributions

JOURNAL_NAME = "fix-journal.json"


def _hold_core(argv: tuple[str, ...],
               installed: Optional[dict[str, str]]) -> tuple[list[str], Optional[Path]]:
    """The vector to run for a pip install with a constraints file that keeps every core
    library at its installed version or higher (pip's resolver may otherwise downgrade one
    to satisfy a dependency); other vectors unchanged."""
    from packaging.version import InvalidVersion, Version

    if pip_install_args(argv) is None or not installed:
        return list(argv), None
    lines = []
    for name in CORE:
        if installed.get(name):
            try:
                lines.append(f"{name}>={Version(installed[name]).public}")
            except InvalidVersion:
                continue
    if not lines:
        return list(argv), None
    fd, path = tempfile.mkstemp(prefix="tts-doctor-fix-hold-", suffix=".txt")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    at = list(argv).index("install") + 1
    return [*argv[:at], "-c", path, *argv[at:]], Path(path)


# --- the journal --------------------------------------------------------------------------

def state_dir() -> Path:
    if os.environ.get("TTS_DOCTOR_STATE_DIR"):
        return Path(os.environ["TTS_DOCTOR_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "tts-doctor"


@contextlib.contextmanager
def _journal() -> Iterator[dict[str, Any]]:
    """The journal, locked for the duration; written back atomically (fsync'd) on exit."""
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


class Transaction:
    """One fix run's record in the journal, written before each change it makes."""

    def __init__(self, t: Any) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.record: dict[str, Any] = {"id": self.id, "time": time.time(), "python": t.python,
                                       "purelib": str(t.purelib), "actions": [],
                                       "undone": False}
        self.written = False

    @property
    def actions(self) -> list[dict[str, Any]]:
        return self.record["actions"]

    def _save(self) -> None:
        with _journal() as journal:
            txs = journal["transactions"]
            for i, tx in enumerate(txs):
                if tx.get("id") == self.id:
                    txs[i] = self.record
                    break
            else:
                txs.append(self.record)
        self.written = True

    def intend(self, action: dict[str, Any]) -> dict[str, Any]:
        """Record a change about to be made (state "started"), durably, before making it."""
        action = {**action, "state": "started"}
        self.actions.append(action)
        self._save()
        return action

    def done(self, action: dict[str, Any], **result: Any) -> None:
        action.update(result, state="done")
        self._save()


def reverse_commands(python: str, before: dict[str, str],
                     after: dict[str, str]) -> list[Command]:
    """The pip commands (argument vectors) that take the distributions from `after` back to
    `before`: uninstall what was added, reinstall the recorded version of what changed or went
    (`--no-deps`: exactly those versions, nothing else moved)."""
    restore = sorted(f"{n}=={v}" for n, v in before.items() if n and after.get(n) != v)
    remove = sorted(n for n in after if n and n not in before)
    out = []
    if remove:
        out.append(Command((python, "-m", "pip", "uninstall", "-y", *remove)))
    if restore:
        out.append(Command((python, "-m", "pip", "install", "--no-deps", *restore)))
    return out


def differences(want: dict[str, str], have: dict[str, str]) -> list[str]:
    """What differs between two recorded version sets, one phrase per package."""
    out = []
    for name in sorted(set(want) | set(have)):
        if want.get(name) != have.get(name):
            out.append(f"{name} {have.get(name) or 'absent'} (was "
                       f"{want.get(name) or 'absent'})")
    return out


# --- rendering ----------------------------------------------------------------------------

def _ids(ids: list[str]) -> str:
    return f"  # {', '.join(ids)}"


def render_plan(plan: Plan, pth_path: str, pth_before: Optional[str],
                pth_after: Optional[str], dry_run: bool,
                installed: Optional[dict[str, str]] = None, allow_downgrade: bool = False,
                allow_system: bool = False) -> str:
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
    if plan.recommended:
        from tts_doctor import shims

        out.append("Recommended, not applied (opt-in shims replace a working function; "
                   "install one only if its change suits you):")
        for name, ids in plan.recommended.items():
            out.append(f"  $ tts-doctor shims install {name}{_ids(ids)}")
            out.append(f"    changes: {shims.OPT_IN[name]}")
    if plan.library:
        out.append("Library shims (use them from your code; nothing to install):")
        from tts_doctor import shims

        for name, ids in plan.library.items():
            out.append(f"  {name}: {shims.LIBRARY[name]}{_ids(ids)}")
    if plan.unknown_shims:
        out.append("Shims this tts-doctor does not know (a newer probe plugin?):")
        for name, ids in plan.unknown_shims.items():
            out.append(f"  {name}{_ids(ids)}")
    if plan.fixes:
        out.append("Commands, per finding: alternatives, 1. the recommended one (only that one "
                   "runs, with --run-commands, without a shell):")
        for fid, alternatives in plan.fixes.items():
            out.append(f"  {fid}:")
            for n, alt in enumerate(alternatives, 1):
                for i, step in enumerate(alt):
                    lead = f"{n}." if i == 0 else ""
                    out.append(f"    {lead:<3} {'' if step.kind == 'env' else '$ '}{step}")
                if n == 1:
                    why = refusal(alt, installed, allow_downgrade, allow_system)
                    if why:
                        out.append(f"        (not run: {why})")
    if plan.errors:
        out.append("Probes that could not judge (see `tts-doctor check`): "
                   + ", ".join(f.id for f in plan.errors))
    return "\n".join(out) + ("\n" if out else "")


def _row(f: Optional[Finding]) -> str:
    return "absent" if f is None else f.status.value


def _fixed(f: Optional[Finding]) -> bool:
    return f is None or f.status in (Status.OK, Status.SKIP)


# --- running the recommended commands -----------------------------------------------------

def run_recommended(plan: Plan, t: Any, tx: Transaction, fixed: set[str],
                    reprobe: Callable[[tuple[str, ...]], dict[str, Optional[Finding]]],
                    allow_downgrade: bool, allow_system: bool) -> bool:
    """Run, per finding not yet fixed, the steps of its recommended alternative; probe the
    finding again after each step and stop once it is fixed. True when all went well."""
    ok = True
    for fid, alternatives in plan.fixes.items():
        if fid in fixed:
            click.echo(f"{fid}: fixed already (by the shims or an earlier command); its "
                       "commands are not needed")
            continue
        alt = alternatives[0]
        installed = _distributions(t.python)
        why = refusal(alt, installed, allow_downgrade, allow_system)
        if why:
            refused = all(step.runnable for step in alt)  # a downgrade, root
            click.echo(f"{fid}: the recommended fix is not run: {why}. "
                       + ("It would run:" if refused else "For you:"))
            for step in alt:
                click.echo(f"  {'' if step.kind == 'env' else '$ '}{step}")
            if refused:
                ok = False
            continue
        finding: Optional[Finding] = None
        for step in alt:
            assert step.argv is not None
            before = _distributions(t.python)
            argv, hold = (list(step.argv), None) if allow_downgrade else _hold_core(
                step.argv, before)
            action = tx.intend({"kind": "command", "finding": fid, "command": str(step),
                                "argv": argv, "before": before})
            shown = Command(argv, step.kind, step.note)
            click.echo(f"$ {shown}")
            if hold is not None:
                held = ", ".join(hold.read_text().split())
                click.echo(f"  (-c {hold}: {held}, so that pip downgrades none of them)")
            sys.stdout.flush()
            try:
                rc = subprocess.run(argv).returncode
            except OSError as exc:
                click.echo(f"tts-doctor: error: cannot run {argv[0]}: {exc.strerror or exc}",
                           err=True)
                rc = 127
            finally:
                if hold is not None:
                    with contextlib.suppress(OSError):
                        hold.unlink()
            tx.done(action, rc=rc, after=_distributions(t.python))
            if rc != 0:
                click.echo(f"tts-doctor: error: the command exited {rc}; stopping here "
                           "(the other alternatives are not tried: choose one yourself)",
                           err=True)
                return False
            finding = reprobe((fid,))[fid]
            if _fixed(finding):
                fixed.add(fid)
                left = len(alt) - alt.index(step) - 1
                click.echo(f"{fid}: fixed ({_row(finding)})"
                           + (f"; the {left} remaining step(s) are not needed" if left else ""))
                break
        else:
            click.echo(f"{fid}: still {_row(finding)} after the recommended fix: "
                       f"{finding.summary if finding else ''} (the other alternatives are "
                       "not tried: choose one yourself)")
            ok = False
        # a fix for one finding may have fixed others: probe the rest before running theirs
        rest = tuple(o for o in plan.fixes if o not in fixed and o != fid)
        if rest:
            fixed.update(o for o, f in reprobe(rest).items() if _fixed(f))
    return ok


# --- the command --------------------------------------------------------------------------

@click.command()
@click.option("--dry-run", is_flag=True, help="Show the plan (files with their content); "
              "change nothing.")
@click.option("--run-commands", is_flag=True, help="Also run the recommended (first) "
              "command of each finding still broken after the shims, without a shell, each "
              "shown first; the finding is probed again after each and the rest skipped once "
              "it is fixed (export lines are never run).")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as "
              "JSON (per finding its alternatives, each step's argv and kind).")
@click.option("--allow-downgrade", is_flag=True, help="Let a command downgrade torch, "
              "torchaudio, numpy, scipy or transformers (refused otherwise).")
@click.option("--allow-system", is_flag=True, help="Let --run-commands run system commands "
              "(apt-get and others that need root; printed otherwise).")
@click.option("--undo", is_flag=True, help="Revert the latest fix applied to this "
              "environment (the .pth, and the recorded package versions).")
@click.option("--python", "python", type=click.Path(exists=True, dir_okay=False),
              metavar="PATH", help="Fix another environment (a venv's python).")
@click.option("--only", multiple=True, metavar="PATTERN", help="Check only these probes "
              "(ids or categories, globs, comma-separated).")
@click.option("--skip", multiple=True, metavar="PATTERN", help="Do not run these probes.")
@click.option("--recipe", metavar="NAME|PATH", help="Judge against a model's recipe.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Probe options.")
@click.option("--timeout", type=params.seconds(0.1), default=30.0, show_default=True,
              help="Seconds each probe may take.")
def fix(dry_run: bool, run_commands: bool, as_json: bool, allow_downgrade: bool,
        allow_system: bool,
        undo: bool, python: Optional[str], only: tuple[str, ...], skip: tuple[str, ...],
        recipe: Optional[str], settings: tuple[str, ...], timeout: float) -> int:
    """Apply the fixes the doctor can apply itself (shims); print the package commands.

    \b
    Exit codes: 0 applied (or nothing to do), 1 a step failed, was refused or did not fix
    its finding, 2 usage error.
    """
    from tts_doctor import api
    from tts_doctor import shim_install as si
    from tts_doctor.commands.options import parse_options, select_probes

    # like check: an activated venv or conda env that is not the doctor's own (pipx)
    python = api.select_interpreter(python).python
    if undo and dry_run:
        raise click.UsageError("--undo and --dry-run cannot be combined")
    if as_json and not dry_run:
        raise click.UsageError("--json goes with --dry-run (the plan as JSON)")
    if undo:
        if only or skip or recipe or settings or allow_downgrade or allow_system:
            raise click.UsageError("--undo takes only --python (and --run-commands, which "
                                   "it implies)")
        return _undo(python)
    only_p, skip_p, _ = select_probes(only, skip)
    options = parse_options(settings)
    recipe_data = api.load_recipe(recipe)
    try:
        t = si.target(python)
    except si.ShimError as exc:
        raise click.UsageError(str(exc)) from None

    planned = api.fix_plan(only=only_p, skip=skip_p, recipe=recipe_data, options=options,
                           timeout=timeout, python=python)
    report, plan = planned.report, planned.plan
    if as_json:
        click.echo(json.dumps(planned.to_dict(allow_downgrade, allow_system), indent=2))
        return 0
    click.echo(f"tts-doctor fix: {t.python} ({len(report.findings)} findings, "
               f"{plan.considered} with a fix)")
    if plan.empty:
        click.echo("nothing to fix" + (f"; {len(plan.errors)} probe(s) could not judge: "
                                       + ", ".join(f.id for f in plan.errors)
                                       if plan.errors else ""))
        return 0
    pth_before, pth_after = planned.pth_before, planned.pth_after
    click.echo(render_plan(plan, str(t.pth), pth_before, pth_after, dry_run,
                           planned.installed, allow_downgrade, allow_system), nl=False)
    if dry_run:
        return 0

    def reprobe(ids: tuple[str, ...]) -> dict[str, Optional[Finding]]:
        """The findings of these probes now (None: the probe gave no finding)."""
        # after a change, observe (never judge kept facts)
        again = api.check(only=ids, recipe=recipe_data, options=options, timeout=timeout,
                          python=python, memo="fresh")
        found = {f.id: f for f in again.findings}
        out = {i: found.get(i) for i in ids}
        new.update(out)
        return out

    new: dict[str, Optional[Finding]] = {}  # finding id -> its latest finding
    failed = False
    tx = Transaction(t)
    if plan.shims and pth_before != pth_after:
        action = tx.intend({"kind": "pth", "path": str(t.pth), "before": pth_before,
                            "after": pth_after})
        try:
            change = si.install(list(plan.shims), python)
        except si.ShimError as exc:
            click.echo(f"tts-doctor: error: {exc}", err=True)
            tx.done(action, after=pth_before, error=str(exc))
            failed = True
        else:
            tx.done(action, before=change.before, after=change.after)
            click.echo(f"applied: shims {', '.join(change.shims)} in {change.path}")

    shimmed = sorted({i for ids in plan.shims.values() for i in ids})
    old = {f.id: f for f in report.findings}
    if shimmed and tx.actions:
        reprobe(tuple(shimmed))
    fixed = {i for i, f in new.items() if _fixed(f)}

    if run_commands and plan.fixes:
        if not run_recommended(plan, t, tx, fixed, reprobe, allow_downgrade, allow_system):
            failed = True
    elif plan.fixes and any(fid not in fixed for fid in plan.fixes):
        click.echo("commands not run (add --run-commands to run the recommended one of each "
                   "finding)")
    if tx.written:
        click.echo(f"recorded as fix {tx.id}: `tts-doctor fix --undo"
                   f"{' --python ' + shlex.quote(t.python) if python else ''}` reverts it")

    if new:
        click.echo("before -> after:")
        width = max(len(i) for i in new)
        for i in sorted(new):
            f = new[i]
            summary = f.summary if f is not None else ""
            click.echo(f"  {i:<{width}}  {_row(old.get(i)):>5} -> {_row(f):<5}  {summary}")
    return 1 if failed else 0



def _undo(python: Optional[str]) -> int:
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
        recorded = [a for a in tx["actions"]
                    if a["kind"] in ("command", "distributions") and "before" in a]
        if recorded:
            failed |= not _restore_versions(t.python, recorded[0]["before"])
        elif any(a["kind"] == "command" for a in tx["actions"]):
            click.echo("tts-doctor: error: this fix ran commands but recorded no versions "
                       "before them (an older tts-doctor): its package changes cannot be "
                       "restored", err=True)
            failed = True
        for action in reversed(tx["actions"]):
            if action["kind"] != "pth":
                continue
            try:
                current = Path(action["path"]).read_text(encoding="utf-8")
            except FileNotFoundError:
                current = None
            except OSError as exc:
                click.echo(f"tts-doctor: error: cannot read {action['path']}: {exc}", err=True)
                failed = True
                continue
            # started but not known to be done (a kill -9): the file holds either text
            expect = (action["before"] if current == action["before"]
                      and action.get("state") != "done" else action["after"])
            try:
                si.restore(action["path"], action["before"], expect)
            except si.ShimError as exc:
                click.echo(f"tts-doctor: error: {exc}", err=True)
                failed = True
                continue
            if expect == action["before"]:
                click.echo(f"{action['path']}: never written (the fix stopped before): "
                           "nothing to revert")
            else:
                click.echo(("removed " if action["before"] is None else "restored ")
                           + action["path"])
        if not failed:
            tx["undone"] = True
            click.echo(f"undid fix {tx['id']}")
    if failed:
        sys.exit(1)
    return 0


def _restore_versions(python: str, before: Optional[dict[str, str]]) -> bool:
    """Reinstall the recorded versions (no shell), then compare; False, with every package
    named that is not back at its recorded version, when something could not be restored."""
    if before is None:
        click.echo("tts-doctor: error: the versions before the fix's commands were not "
                   "recorded (the interpreter could not be asked): cannot restore them",
                   err=True)
        return False
    now = _distributions(python)
    if now is None:
        click.echo(f"tts-doctor: error: cannot read the installed versions of {python}",
                   err=True)
        return False
    for command in reverse_commands(python, before, now):
        click.echo(f"$ {command}")
        sys.stdout.flush()
        try:
            rc = subprocess.run(list(command.argv or ())).returncode
        except OSError as exc:
            click.echo(f"tts-doctor: error: {exc}", err=True)
            rc = 127
        if rc != 0:
            click.echo(f"tts-doctor: error: the command exited {rc}", err=True)
    after = _distributions(python) or {}
    left = differences(before, after)
    if left:
        click.echo("tts-doctor: error: could not restore " + "; ".join(left) + ". The fix "
                   "stays in the journal: restore these by hand, then run --undo again.",
                   err=True)
        return False
    if before != now:
        click.echo("restored the recorded package versions: " + "; ".join(
            f"{n} {now.get(n) or 'absent'} -> {before.get(n) or 'absent'}"
            for n in sorted(set(before) | set(now)) if before.get(n) != now.get(n)))
    return True
