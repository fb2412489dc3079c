"""The facts file: `check --save-facts FILE` keeps what a run observed; `check --facts FILE`
judges it again, later, anywhere, with whichever doctor version reads it.

A maintainer asks a user for one file and re-judges it with today's knowledge; a CI job
collects on the GPU runner and judges on a cheap one. What the file holds:

- `target`: the diagnosed interpreter's facts (tts_doctor.target.Target), so fix commands
  name the user's interpreter, not the maintainer's;
- `interpreter`, `host`, `variables`: the report header as the live run saw it;
- `context`: the recipe and `--set` options the probes were given;
- `probes`: per probe id, either `facts` (a split probe, `@probe(..., collect=...)`: its
  collector's JSON answer, judged again by the reading doctor's judge) or `finding` (a probe
  that is not split, or whose collection crashed or timed out: replayed as recorded, marked
  `replayed` in its details).

Everything is redacted like a report before it is written (tts_doctor.redact); the file is
written atomically (tts_doctor.atomic). `FORMAT_VERSION` changes its major part when an older
doctor could misread a newer file: such a file is refused with exit 2, never misjudged.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

from tts_doctor.errors import UserError
from tts_doctor.finding import Finding, Fix, Status, manual
from tts_doctor.registry import Context, ProbeSpec

FORMAT = "tts-doctor-facts"
FORMAT_VERSION = "1.0"
MAX_BYTES = 64 * 1024 * 1024


class FactsFileError(UserError):
    """A facts file that cannot be judged (not one, damaged, or from an incompatible doctor)."""


@dataclass(frozen=True)
class Facts:
    """A facts file, read back."""

    target: dict[str, Any]
    interpreter: dict[str, Any]
    context: dict[str, Any]
    probes: dict[str, dict[str, Any]]
    doctor_version: str
    created: str
    host: str
    variables: dict[str, str]


def build(*, target: dict[str, Any], interpreter: dict[str, Any], context: Context,
          probes: dict[str, dict[str, Any]], host: str, variables: dict[str, str]
          ) -> dict[str, Any]:
    """The file's content, redacted (a secret in a collected fact never reaches the file)."""
    from tts_doctor import __version__
    from tts_doctor.redact import Redactor

    data = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": {"name": "tts-doctor", "version": __version__},
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "host": host,
        "target": target,
        "interpreter": interpreter,
        "variables": variables,
        "context": context.to_dict(),
        "probes": probes,
    }
    return Redactor().data(data)


def write(path: str, data: dict[str, Any]) -> None:
    from tts_doctor import atomic

    atomic.write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def _want(data: dict[str, Any], key: str, kind: type, label: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise FactsFileError(f"{label}: not a tts-doctor facts file (`{key}` is missing or "
                             f"not a{'n' if kind.__name__[0] in 'aeio' else ''} "
                             f"{kind.__name__})")
    return value


def read(path: str) -> Facts:
    """Read and check a facts file; FactsFileError (exit 2, one line) when it is unusable."""
    from tts_doctor import inputs

    label = f"--facts {path}"
    text = inputs.read_text(path, "--facts", MAX_BYTES)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FactsFileError(f"{label}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FactsFileError(f"{label}: not a tts-doctor facts file (write one with "
                             "`tts-doctor check --save-facts FILE`)")
    version = str(data.get("format_version") or "")
    major = version.split(".")[0]
    if major != FORMAT_VERSION.split(".")[0]:
        raise FactsFileError(f"{label}: facts format {version or '?'} is not readable by this "
                             f"doctor (it reads {FORMAT_VERSION.split('.')[0]}.x); use the "
                             "doctor version that wrote it or a newer one")
    probes = _want(data, "probes", dict, label)
    for pid, entry in probes.items():
        if not isinstance(entry, dict) or not ("facts" in entry or "finding" in entry):
            raise FactsFileError(f"{label}: probe {pid!r} has neither facts nor a finding")
        finding = entry.get("finding")
        if "facts" not in entry and finding is not None and not isinstance(finding, dict):
            raise FactsFileError(f"{label}: probe {pid!r}: its finding is not an object")
    target = _want(data, "target", dict, label)
    for key in ("executable", "version"):
        if not isinstance(target.get(key), str):
            raise FactsFileError(f"{label}: the target has no {key}")
    context = data.get("context") or {}
    if not isinstance(context, dict):
        raise FactsFileError(f"{label}: `context` is not an object")
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    return Facts(target, dict(data.get("interpreter") or {}), context, probes,
                 str(tool.get("version") or "?"), str(data.get("created") or "?"),
                 str(data.get("host") or "unknown"),
                 {str(k): str(v) for k, v in (data.get("variables") or {}).items()})


def _not_collected(spec: ProbeSpec, facts: Facts) -> Finding:
    return Finding(
        spec.id, spec.category, Status.SKIP,
        f"not in the facts file (collected by tts-doctor {facts.doctor_version}, which did "
        "not run this probe)",
        {"facts_file": {"collected_by": facts.doctor_version, "created": facts.created}},
        Fix("Collect again with this doctor to judge it: `tts-doctor check --save-facts "
            "FILE` on the machine, then `tts-doctor check --facts FILE`.",
            commands=(manual("tts-doctor", "check", "--save-facts", "facts.json"),)),
        0.0)


def judge(specs: list[ProbeSpec], facts: Facts,
          on_finding: Optional[Callable[[Finding], None]] = None) -> list[Finding]:
    """The findings of `specs` from a facts file, without touching this machine: split
    probes are judged again by this doctor; the others are replayed as recorded."""
    from tts_doctor import applicability
    from tts_doctor import target as targets
    from tts_doctor.runner import Collected, judge_collected

    ctx = Context.from_dict(facts.context)
    recorded = targets.Target.from_dict(facts.target)
    findings: list[Finding] = []
    with targets.use(recorded):
        for spec in specs:
            if applicability.decide(spec.components, ctx) == applicability.SKIP:
                continue  # not run there either: the recipe marks its component absent
            entry = facts.probes.get(spec.id)
            finding: Optional[Finding]
            if entry is None:
                finding = _not_collected(spec, facts)
            elif "facts" in entry and spec.collect is not None:
                finding = judge_collected(spec, ctx, Collected(
                    entry["facts"], float(entry.get("collect_s") or 0.0),
                    str(entry.get("output") or "")))
            elif entry.get("finding") is None:
                if "facts" in entry:  # collected as facts, but this doctor's probe is not split
                    finding = _not_collected(spec, facts)
                else:
                    finding = None  # the probe did not apply there
            else:
                try:
                    finding = Finding.from_dict(entry["finding"])
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise FactsFileError(f"the facts file's finding of {spec.id} is damaged "
                                         f"({type(exc).__name__}: {exc})") from None
                finding.details.setdefault("replayed", {
                    "collected_by": facts.doctor_version,
                    "why": "this probe is judged where it runs: its finding is replayed as "
                           "recorded"})
            if finding is not None:
                findings.append(finding)
                if on_finding:
                    on_finding(finding)
    return findings
