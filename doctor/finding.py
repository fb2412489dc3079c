"""The report's core types: Status, Fix, Finding.

Everything a probe says travels as a `Finding`: plain, frozen, JSON-able. This module imports
nothing heavy so that the CLI, the worker and the renderers can all share it.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional


class Status(str, enum.Enum):
    """A finding's verdict, from best to worst (`error` means the probe itself broke)."""

    OK = "ok"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __str__(self) -> str:
        return self.value


_RANK = {Status.OK: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3}


def worst(statuses: list[Status]) -> Status:
    """The most severe status of a group; a group of only skips is `skip`, empty is `ok`."""
    statuses = list(statuses)
    if not statuses:
        return Status.OK
    top = max(s.rank for s in statuses)
    if top == 0:
        return Status.OK if Status.OK in statuses else Status.SKIP
    return next(s for s in (Status.ERROR, Status.FAIL, Status.WARN) if s.rank == top)


class Command(str):
    """One command of a fix: an argument vector, shown shell-quoted (`shlex.quote` each).

    A `Command` is the display string itself (so renderers, tests and probes treat it as the
    text they always did) and carries what `tts-doctor fix` needs to run it without a shell:

    - `argv`: the argument vector (None for text that is not one: `export` lines, free text);
    - `kind`: `"run"` (an ordinary program run as the user: pip, python, modelscope, the doctor),
      `"system"` (needs root: apt-get, nvidia-smi -r, links under /usr; run only with
      `fix --allow-system`), `"manual"` (an argument vector for the user to run, never run by
      `fix`: it works outside the diagnosed environment, deletes files, or only diagnoses),
      `"env"` (an `export NAME=value` line: a child process cannot set the user's variables,
      so it is printed, never run) or `"text"` (a line given as text: printed, never run);
    - `note`: a comment shown after the command (`  # note`), not part of `argv`;
    - `follows`: this command is the next step of the previous one (both belong to one
      alternative, run in order), not an alternative to it.

    `shlex.split(str(cmd), comments=True) == list(cmd.argv)` for every runnable command: every
    argument is quoted, so no value (a recipe's name, a path with `$(...)` in it) can become
    shell syntax, and the command fix runs is the one it shows.
    """

    argv: Optional[tuple[str, ...]]
    kind: str
    note: str
    follows: bool

    def __new__(cls, argv: Optional[Sequence[str]], kind: str = "run", note: str = "",
                follows: bool = False, text: Optional[str] = None) -> Command:
        if kind not in KINDS:
            raise ValueError(f"unknown command kind {kind!r} (one of {', '.join(KINDS)})")
        vector = tuple(str(a) for a in argv) if argv is not None else None
        if vector is None and text is None:
            raise ValueError("a command needs an argument vector or a text")
        shown = text if text is not None else join(vector or ())
        note = " ".join(note.split())
        if note and text is None:
            shown += "  # " + note
        self = super().__new__(cls, shown)
        self.argv = vector
        self.kind = kind
        self.note = note
        self.follows = follows
        return self

    @property
    def runnable(self) -> bool:
        """Whether `fix` may run it at all (kinds run and system)."""
        return self.argv is not None and self.kind in ("run", "system")

    def then(self) -> Command:
        """This command as the next step of the previous one (see `steps`)."""
        return self._copy(follows=True)

    def alone(self) -> Command:
        return self._copy(follows=False)

    def _copy(self, **change: Any) -> Command:
        fields = {"argv": self.argv, "kind": self.kind, "note": self.note,
                  "follows": self.follows,
                  "text": None if self.argv is not None else str(self)}
        fields.update(change)
        return Command(**fields)

    def substitute(self, placeholder: str, value: str) -> Command:
        """Replace `placeholder` in every argument (crash fixes name "{python}" before the
        interpreter is known)."""
        if self.argv is None:
            return self._copy(text=str(self).replace(placeholder, shlex.quote(value)))
        return self._copy(argv=tuple(a.replace(placeholder, value) for a in self.argv))

    def to_dict(self, alternative: int) -> dict[str, Any]:
        return {"argv": list(self.argv) if self.argv is not None else None,
                "kind": self.kind, "alternative": alternative}

    def __reduce__(self) -> Any:
        return (_rebuild, (self.argv, self.kind, self.note, self.follows,
                           None if self.argv is not None else str(self)))


def _rebuild(argv: Any, kind: str, note: str, follows: bool, text: Optional[str]) -> Command:
    return Command(argv, kind, note, follows, text)


KINDS = ("run", "system", "manual", "env", "text")


def join(argv: Sequence[str]) -> str:
    """`shlex.join` (Python 3.8+; this module also runs in 3.7 interpreters). The
    placeholder `{python}` (crash fixes, filled in by the runner) stays as it is: braces
    around a word are literal in a shell, and it splits back into itself."""
    return " ".join(a if a == PYTHON_PLACEHOLDER else shlex.quote(a) for a in argv)


PYTHON_PLACEHOLDER = "{python}"


def cmd(*argv: str, note: str = "") -> Command:
    """A command the user's account runs (pip, python, modelscope, tts-doctor ...)."""
    return Command(argv, "run", note)


def system(*argv: str, note: str = "") -> Command:
    """A command that needs root (apt-get, nvidia-smi -r ...): `fix` runs it only with
    `--allow-system`."""
    return Command(argv, "system", note)


def manual(*argv: str, note: str = "") -> Command:
    """A command for the user to run, never run by `fix` (another environment, a deletion,
    a diagnostic)."""
    return Command(argv, "manual", note)


def export(name: str, value: str, note: str = "") -> Command:
    """`export NAME=value`, the value quoted: printed, never run."""
    if not name.replace("_", "a").isalnum() or name[:1].isdigit():
        raise ValueError(f"not an environment variable name: {name!r}")
    text = f"export {name}={shlex.quote(str(value)) if value != '' else ''}"
    note = " ".join(note.split())
    return Command(None, "env", note, text=text + (f"  # {note}" if note else ""))


def text(line: str) -> Command:
    """A line given as text (not an argument vector): shown, never run by `fix`."""
    return Command(None, "env" if line.lstrip().startswith("export ") else "text",
                   text=line)


def steps(*commands: Any) -> tuple[Command, ...]:
    """Commands that form ONE alternative, run in order (uninstall X, then install Y)."""
    out = [as_command(c) for c in commands]
    return tuple(c.then() if i else c.alone() for i, c in enumerate(out))


def as_command(c: Any) -> Command:
    return c if isinstance(c, Command) else text(str(c))


def _commands(items: Any) -> tuple[Command, ...]:
    """Normalise what a probe passes as `commands`: Commands, plain strings (text, never run)
    and tuples/lists (one alternative made of steps)."""
    out: list[Command] = []
    for item in items or ():
        if isinstance(item, (tuple, list)):
            out.extend(steps(*item))
        elif str(item).strip():
            out.append(as_command(item))
    return tuple(out)


@dataclass(frozen=True)
class Fix:
    """How to repair a finding: a shim the doctor applies itself, or commands to run.

    `commands` are `Command`s (strings shown to the user, carrying an argument vector);
    `tts-doctor fix` runs them only with `--run-commands`, without a shell. They are
    **alternatives**, the first one the recommended: each command starts an alternative unless
    it `follows` the previous one (`steps(uninstall, install)` is one alternative of two
    steps). `fix --run-commands` runs the steps of the recommended (first) alternative only,
    re-probing after each, and never the others: they are shown for the user to choose.
    Plain strings are accepted and kept as text: shown, never run (`export ` lines likewise).
    """

    description: str
    shim: Optional[str] = None
    commands: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "commands", _commands(self.commands))

    @property
    def alternatives(self) -> list[list[Command]]:
        """The commands grouped into alternatives, the recommended one first."""
        groups: list[list[Command]] = []
        for c in self.commands:
            command = as_command(c)
            if command.follows and groups:
                groups[-1].append(command)
            else:
                groups.append([command])
        return groups

    def to_dict(self) -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        for i, group in enumerate(self.alternatives):
            out.extend(c.to_dict(i) for c in group)
        return {"description": self.description, "shim": self.shim,
                "commands": [str(c) for c in self.commands], "steps": out}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fix:
        lines = [str(c) for c in d.get("commands") or ()]
        meta = d.get("steps")
        if not isinstance(meta, list) or len(meta) != len(lines):
            return cls(d["description"], d.get("shim"), tuple(text(x) for x in lines))
        commands: list[Command] = []
        last = None
        for line, m in zip(lines, meta):
            argv, kind = m.get("argv"), m.get("kind", "text")
            follows = last is not None and m.get("alternative") == last
            last = m.get("alternative")
            if argv is not None and kind in KINDS:
                note = line.split("  # ", 1)[1] if "  # " in line else ""
                c = Command(argv, kind, note, follows)
                if str(c) != line:  # not what was shown: keep the text, do not run it
                    c = Command(None, "text", follows=follows, text=line)
            else:
                c = Command(None, kind if kind in ("env", "text") else "text", follows=follows,
                            text=line)
            commands.append(c)
        return cls(d["description"], d.get("shim"), tuple(commands))


@dataclass(frozen=True)
class Finding:
    """One probe's verdict: what was checked, what was found, and how to fix it."""

    id: str
    category: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    fix: Optional[Fix] = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "status": self.status.value,
            "summary": self.summary,
            "details": self.details,
            "fix": self.fix.to_dict() if self.fix else None,
            "duration_s": round(self.duration_s, 4),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(
            id=d["id"],
            category=d["category"],
            status=Status(d["status"]),
            summary=d["summary"],
            details=dict(d.get("details") or {}),
            fix=Fix.from_dict(d["fix"]) if d.get("fix") else None,
            duration_s=float(d.get("duration_s") or 0.0),
        )


@dataclass(frozen=True)
class Result:
    """What a probe function returns; the runner adds id, category and duration."""

    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    fix: Optional[Fix] = None


def ok(summary: str, **details: Any) -> Result:
    return Result(Status.OK, summary, details)


def skip(summary: str, **details: Any) -> Result:
    return Result(Status.SKIP, summary, details)


def warn(summary: str, fix: Fix, **details: Any) -> Result:
    return Result(Status.WARN, summary, details, fix)


def fail(summary: str, fix: Fix, **details: Any) -> Result:
    return Result(Status.FAIL, summary, details, fix)
