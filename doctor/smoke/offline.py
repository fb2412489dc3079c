"""`smoke --offline`: the air-gap audit's verdicts, from what `tts_doctor.airgap` recorded.

One question: will this image work without a network? `smoke.offline` answers it (ok: the
synthesis completed and nothing tried to reach the network; fail: every attempted connection
with host, port and the Python frame that made it), and `smoke.download` lists each runtime
download (hub downloads, `nltk.download`, spaCy model installs, pip at runtime) with the
command that pre-fetches it into the image at build time. Runs in the smoke child: standard
library only.
"""

from __future__ import annotations

from typing import Any

from tts_doctor.finding import Command, Finding, Fix, Status, export, fail, manual, ok, warn
from tts_doctor.finding import Result as Verdict

_WHY = {"huggingface": "a Hugging Face Hub download", "modelscope": "a ModelScope hub download",
        "nltk": "an NLTK data download", "spacy": "a spaCy model install",
        "pip": "pip run at runtime"}


def section(audit: dict[str, Any]) -> dict[str, Any]:
    """The `smoke.offline` object of the JSON report."""
    return {"env": audit.get("env") or {}, "connections": audit.get("connections") or [],
            "downloads": audit.get("downloads") or []}


def _where(item: dict[str, Any]) -> str:
    return str(item.get("frame") or "?")


def _endpoint(c: dict[str, Any]) -> str:
    return f"{c.get('host')}:{c.get('port')}" if c.get("port") is not None else str(c["host"])


def verdicts(audit: dict[str, Any], findings: list[Finding]) -> list[tuple[str, Verdict]]:
    """(name, verdict) for smoke.offline and, when anything downloaded, smoke.download."""
    conns = audit.get("connections") or []
    downloads = audit.get("downloads") or []
    out: list[tuple[str, Verdict]] = []
    synthesized = any(f.id == "smoke.synthesis" and f.status is Status.OK for f in findings)
    needed = [d for d in downloads if d.get("outcome") != "returned"]
    commands: list[Command] = []
    for d in downloads:
        argv = d.get("argv")
        if argv and all(str(c) != d.get("command") for c in commands):
            commands.append(manual(*argv))  # at image build time: never run by `fix`
    if downloads:
        listed = "; ".join(f"{_WHY.get(d['kind'], d['kind'])} of {d.get('what')} "
                           f"({d.get('outcome')}) from {_where(d)}" for d in downloads[:6])
        more = f" and {len(downloads) - 6} more" if len(downloads) > 6 else ""
        if needed:
            out.append(("download", fail(
                f"{len(downloads)} runtime download(s): {listed}{more}",
                Fix("Fetch these into the image at build time (a RUN line in the "
                    "Dockerfile), then point the code at the local copy",
                    commands=tuple(commands)),
                downloads=downloads)))
        else:
            out.append(("download", ok(
                f"{len(downloads)} download call(s) at runtime, each answered from the local "
                f"cache with the network blocked: {listed}{more}", downloads=downloads)))
    if conns:
        groups: dict[tuple[str, str], int] = {}  # retries of one call site count once
        for c in conns:
            key = (f"{_endpoint(c)} ({c.get('via')})", _where(c))
            groups[key] = groups.get(key, 0) + 1
        shown = "; ".join(f"{what} from {where}" + (f" ({n} times)" if n > 1 else "")
                          for (what, where), n in list(groups.items())[:6])
        more = f" and {len(groups) - 6} more call sites" if len(groups) > 6 else ""
        out.append(("offline", fail(
            f"not air-gap safe: {len(conns)} attempted network connection(s): {shown}{more}",
            Fix("Each frame named is code that reaches the network at runtime: pre-fetch what "
                "it downloads into the image (the smoke.download commands), pass local paths, "
                "and keep HF_HUB_OFFLINE=1 / TRANSFORMERS_OFFLINE=1 set in the image",
                commands=(*commands, export("HF_HUB_OFFLINE", "1"),
                          export("TRANSFORMERS_OFFLINE", "1"))),
            connections=conns, synthesized=synthesized)))
    elif needed:
        out.append(("offline", fail(
            "not air-gap safe: the code downloads at runtime (see smoke.download)",
            Fix("Pre-fetch the downloads into the image at build time",
                commands=tuple(commands)), synthesized=synthesized)))
    elif not synthesized:
        out.append(("offline", warn(
            "no network use seen, but the synthesis did not complete: the audit covers only "
            "the code that ran",
            Fix("Fix the failures above, then run the audit again",
                commands=("tts-doctor smoke --offline",)), synthesized=False)))
    else:
        out.append(("offline", ok(
            "air-gap safe: the synthesis completed with the network blocked at the socket "
            "level and the hubs' offline switches set; no connection was attempted",
            env=audit.get("env") or {}, synthesized=True)))
    return out
