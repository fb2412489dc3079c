"""The fix plan: from the findings of a check to what `tts-doctor fix` would do.

A library module (no click): `tts_doctor.api.fix_plan` builds a plan with it, and
`tts-doctor fix` (doctor/commands/fix.py) prints, applies and runs it. The plan groups the
fixes of the warn/fail findings into shims the doctor applies, opt-in and library shims,
package commands per finding (alternatives, the first the recommended) and environment lines;
`refusal` says why `fix --run-commands` would not run an alternative (a downgrade of a core
library judged with `packaging` from its specifiers against the installed versions, root, a
manual or text command). Runs in the doctor's own process.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any, Optional

from tts_doctor.finding import Command, Finding, Status, as_command

# The libraries a fix never downgrades unless --allow-downgrade is given: a whole TTS stack
# is built against them, and a lower version breaks more than the finding it repairs.
CORE = ("torch", "torchaudio", "numpy", "scipy", "transformers")


@dataclass
class Plan:
    """What `fix` would do for a set of findings."""

    shims: dict[str, list[str]] = field(default_factory=dict)  # shim -> finding ids
    # opt-in shims (they replace a working function): recommended, printed, never applied
    recommended: dict[str, list[str]] = field(default_factory=dict)
    library: dict[str, list[str]] = field(default_factory=dict)
    unknown_shims: dict[str, list[str]] = field(default_factory=dict)
    # every command line shown (runnable or not, exports excluded) -> the findings naming it
    commands: list[tuple[str, list[str]]] = field(default_factory=list)
    exports: list[tuple[str, list[str]]] = field(default_factory=list)
    # finding id -> its alternatives (the recommended first), each a list of steps
    fixes: dict[str, list[list[Command]]] = field(default_factory=dict)
    errors: list[Finding] = field(default_factory=list)
    considered: int = 0

    @property
    def empty(self) -> bool:
        return not (self.shims or self.recommended or self.library or self.commands
                    or self.exports or self.unknown_shims)


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
            # fix applies only the shims that add what is missing (shims.DEFAULT); one that
            # replaces a working function (shims.OPT_IN, e.g. resample: speed, not a repair)
            # is a recommendation, printed with its opt-in command
            target = (plan.recommended if f.fix.shim in shims.OPT_IN else
                      plan.shims if f.fix.shim in shims.HOOKED else
                      plan.library if f.fix.shim in shims.LIBRARY else plan.unknown_shims)
            target.setdefault(f.fix.shim, []).append(f.id)
        alternatives = [alt for alt in f.fix.alternatives if alt]
        if alternatives:
            plan.fixes[f.id] = alternatives
        for command in f.fix.commands:
            line = str(command).strip()
            if line:
                kind = as_command(command).kind
                _add(plan.exports if kind == "env" else plan.commands, line, f.id)
    return plan


# --- what may run -------------------------------------------------------------------------

# pip install options that take a value (the next argument, unless written --opt=value)
_PIP_VALUE_OPTIONS = frozenset((
    "-c", "--constraint", "-r", "--requirement", "-e", "--editable", "-f", "--find-links",
    "-i", "--index-url", "--extra-index-url", "-t", "--target", "--prefix", "--root",
    "--platform", "--python-version", "--implementation", "--abi", "--no-binary",
    "--only-binary", "--progress-bar", "--upgrade-strategy", "--src", "-C",
    "--config-settings", "--global-option", "--trusted-host", "--proxy", "--retries",
    "--timeout", "--cache-dir", "--log", "--report", "--python", "--exists-action",
    "--cert", "--client-cert", "--keyring-provider", "--root-user-action", "--group"))


def pip_install_args(argv: tuple[str, ...]) -> Optional[list[str]]:
    """The requirement arguments of a `... -m pip install ...` / `pip install ...` vector
    (options and their values dropped), or None when it is not a pip install."""
    args = list(argv)
    for i in range(len(args) - 1):
        head = os.path.basename(args[i])
        if (args[i] == "pip" and i > 0 and args[i - 1] == "-m") or (
                i == 0 and head in ("pip", "pip3")):
            if args[i + 1] != "install":
                return None
            rest, out, skip = args[i + 2:], [], False
            for a in rest:
                if skip:
                    skip = False
                elif a.startswith("-"):
                    skip = a in _PIP_VALUE_OPTIONS
                else:
                    out.append(a)
            return out
    return None


def _base(spec: Any) -> Optional[Any]:
    from packaging.version import InvalidVersion, Version

    text = spec.version[:-2] if spec.version.endswith(".*") else spec.version
    try:
        return Version(text)
    except InvalidVersion:
        return None


def downgrades(step: Command, installed: dict[str, str]) -> list[str]:
    """Why this step would downgrade a core library (empty: it would not), judged from its
    requirement specifiers and the installed versions: a specifier the installed version
    does not meet and that admits only lower versions (`<`, `<=`, `==` / `~=` of a lower
    release, or `!=` of the installed one)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version
    from tts_doctor.dists import canonical

    reqs = pip_install_args(step.argv or ()) if step.argv else None
    out = []
    for text in reqs or ():
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # a path or URL: no version to judge
        name = canonical(req.name)
        have = installed.get(name)
        if name not in CORE or have is None or not req.specifier:
            continue
        try:
            version = Version(have)
        except InvalidVersion:
            continue
        if req.specifier.contains(version, prereleases=True):
            continue
        for clause in req.specifier:
            if clause.contains(version, prereleases=True):
                continue
            base = _base(clause)
            if clause.operator in ("<", "<=", "!=") or (
                    clause.operator in ("==", "===", "~=") and base is not None
                    and base < version):
                out.append(f"{name} {have} -> {text}")
                break
    return out


def refusal(alternative: list[Command], installed: Optional[dict[str, str]],
            allow_downgrade: bool, allow_system: bool) -> Optional[str]:
    """Why `fix --run-commands` does not run this alternative (None: it may run)."""
    for step in alternative:
        if step.kind == "env":
            return "it sets an environment variable (set it in your shell or image)"
        if step.kind == "manual":
            return ("it is for you to run: it works outside this environment, deletes "
                    "files, or only diagnoses")
        if not step.runnable:
            return "it is a command given as text, not an argument vector: run it yourself"
        if step.kind == "system" and not allow_system:
            return "it needs root (a system package): add --allow-system to run it"
    if not allow_downgrade:
        if installed is None:
            if any(pip_install_args(s.argv or ()) for s in alternative):
                return ("the installed versions could not be read, so a downgrade of "
                        f"{', '.join(CORE)} cannot be ruled out; add --allow-downgrade")
        else:
            down = [d for s in alternative for d in downgrades(s, installed)]
            if down:
                return (f"it would downgrade {'; '.join(down)}; add --allow-downgrade to "
                        "allow it")
    return None


def installed_versions(python: str) -> Optional[dict[str, str]]:
    """Normalised name -> version of every distribution the interpreter sees, as `pip freeze`
    lists them (the first of a name on sys.path wins): recorded before each command."""
    code = ("import importlib.metadata as m, json, re\nout = {}\nfor d in m.distributions():\n"
            "    n = re.sub(r'[-_.]+', '-', (d.metadata['Name'] or '')).lower()\n"
            "    if n: out.setdefault(n, d.version)\nprint(json.dumps(out))")
    try:
        proc = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "TTS_DOCTOR_SHIMS": "0"})
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError):
        return None


def plan_dict(plan: Plan, t: Any, pth_before: Optional[str], pth_after: Optional[str],
              installed: Optional[dict[str, str]], allow_downgrade: bool,
              allow_system: bool) -> dict[str, Any]:
    """The plan as JSON (`fix --dry-run --json`): per finding its alternatives, the first the
    recommended, each step's shown line, argument vector and kind, and why the recommended
    one would not run (null: it would)."""
    findings = []
    for fid, alternatives in plan.fixes.items():
        alts = []
        for n, alt in enumerate(alternatives):
            alts.append({"recommended": n == 0,
                         "refused": (refusal(alt, installed, allow_downgrade, allow_system)
                                     if n == 0 else None),
                         "steps": [{"command": str(c), "argv": list(c.argv) if c.argv
                                    is not None else None, "kind": c.kind} for c in alt]})
        findings.append({"id": fid, "alternatives": alts})
    return {"python": t.python, "considered": plan.considered,
            "shims": {k: list(v) for k, v in plan.shims.items()},
            # opt-in shims: recommended with their command, never applied by fix
            "recommended_shims": {k: list(v) for k, v in plan.recommended.items()},
            "library_shims": {k: list(v) for k, v in plan.library.items()},
            "pth": {"path": str(t.pth), "before": pth_before, "after": pth_after}
            if plan.shims else None,
            "findings": findings, "errors": [f.id for f in plan.errors]}
