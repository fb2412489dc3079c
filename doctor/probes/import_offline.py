"""Will importing this deployment's code work without a network? (the closure import's
air-gap audit)

`check` imports the deployment's entry modules in a process of their own (doctor/reach.py)
under the air-gap audit of `smoke --offline` (doctor/airgap.py, one implementation for both):
every connection to an address that is not this machine is refused and recorded with host,
port and the Python frame that asked, and every runtime download (hub downloads,
`nltk.download`, spaCy model installs, pip run at runtime) with the command that pre-fetches it
into the image. The audit travels with the closure answer in the usage index (and its cache),
so a warm `check` reports what the cold one saw. The collector reads it from the index; the
judge (`judge_import_offline`) is pure, so `check --facts` re-judges a recorded audit.
"""

from __future__ import annotations

from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Command, Fix, Result, export, fail, manual, ok, skip
from tts_doctor.registry import Context, probe

WHY = {"huggingface": "a Hugging Face Hub download", "modelscope": "a ModelScope hub download",
       "nltk": "an NLTK data download", "spacy": "a spaCy model install",
       "pip": "pip run at runtime"}
SHOWN = 6


def prefetch_argv(argv: list[str], python: str) -> list[str]:
    """The audit's pre-fetch command for the diagnosed interpreter (`python -m ...` and a
    bare `pip install` run with it)."""
    if argv and argv[0] == "python":
        return [python, *argv[1:]]
    if argv and argv[0] == "pip":
        return [python, "-m", "pip", *argv[1:]]
    return list(argv)


def _endpoint(c: dict[str, Any]) -> str:
    return f"{c.get('host')}:{c.get('port')}" if c.get("port") is not None else str(c["host"])


def judge_import_offline(audit: Optional[dict[str, Any]], reach: dict[str, Any],
                         python: str) -> Result:
    """The verdict on the closure import's audit (pure: facts in, result out).

    - no entry module imported, or the import gave no audit (it timed out or died): `skip`;
    - an attempted connection to the network: `fail` (in an air-gapped image the import
      fails or waits on it; the frame is the code that asked);
    - a runtime download that did not come back from the local cache: `fail`, with the
      command that pre-fetches it at image build time;
    - download calls all answered from the local cache with the network blocked, and no
      connection: `ok`, listing them;
    - nothing attempted: `ok`.

    An entry whose import failed for another reason (a missing library) was audited as far
    as it loaded; the summary says so (its import is the other probes' subject).
    """
    entries = list(reach.get("entries") or [])
    if not reach.get("known") or not entries:
        return skip("no entry module of the deployment was imported: "
                    + str(reach.get("why") or "no installed module to import"))
    if audit is None:
        return skip("the closure import gave no air-gap audit (it did not finish: see "
                    "details.failed)", failed=reach.get("failed") or {})
    conns = list(audit.get("connections") or [])
    downloads = list(audit.get("downloads") or [])
    failed = reach.get("failed") or {}
    details: dict[str, Any] = {"entries": entries, "connections": conns,
                               "downloads": downloads, "env": audit.get("env") or {}}
    if failed:
        details["failed"] = failed
    commands: list[Command] = []
    for d in downloads:
        argv = prefetch_argv(list(d.get("argv") or []), python)
        if argv and all(list(c.argv or ()) != argv for c in commands):
            commands.append(manual(*argv))  # at image build time: never run by `fix`
    needed = [d for d in downloads if d.get("outcome") != "returned"]
    what = f"importing {', '.join(entries[:3])}{' ...' if len(entries) > 3 else ''}"
    parts = []
    if conns:
        groups: dict[tuple[str, str], int] = {}  # retries of one call site count once
        for c in conns:
            key = (f"{_endpoint(c)} ({c.get('via')})", str(c.get("frame") or "?"))
            groups[key] = groups.get(key, 0) + 1
        shown = "; ".join(f"{where_to} from {frame}" + (f" ({n} times)" if n > 1 else "")
                          for (where_to, frame), n in list(groups.items())[:SHOWN])
        more = f" and {len(groups) - SHOWN} more call sites" if len(groups) > SHOWN else ""
        parts.append(f"{len(conns)} attempted network connection(s): {shown}{more}")
    if needed:
        listed = "; ".join(f"{WHY.get(d.get('kind'), d.get('kind'))} of {d.get('what')} "
                           f"({d.get('outcome')}) from {d.get('frame') or '?'}"
                           for d in needed[:SHOWN])
        more = f" and {len(needed) - SHOWN} more" if len(needed) > SHOWN else ""
        parts.append(f"{len(needed)} runtime download(s): {listed}{more}")
    if parts:
        broke = [e for e in entries if e in failed]
        tail = f" (the import of {', '.join(broke[:3])} failed)" if broke else ""
        fix = Fix("Importing this code reaches the network: in an air-gapped image it fails "
                  "or waits. Pre-fetch what it downloads at image build time (the commands, "
                  "a RUN line in the Dockerfile), pass local paths to the code named in each "
                  "frame, and keep the hubs' offline switches set in the image "
                  "(docs/troubleshooting.md, F6/F8)",
                  commands=(*commands, export("HF_HUB_OFFLINE", "1"),
                            export("TRANSFORMERS_OFFLINE", "1")))
        return fail(f"not air-gap safe: {what} with the network blocked: "
                    + "; ".join(parts) + tail, fix, **details)
    broke = [e for e in entries if e in failed]
    # an entry that failed to import for another reason was audited as far as it loaded
    partial = (f" ({len(broke)} of {len(entries)} entry module(s) failed to import for "
               f"another reason, {', '.join(broke[:3])}: the audit covers what loaded before "
               "the failure, see details.failed)") if broke else ""
    if downloads:
        listed = "; ".join(f"{WHY.get(d.get('kind'), d.get('kind'))} of {d.get('what')} from "
                           f"{d.get('frame') or '?'}" for d in downloads[:SHOWN])
        return ok(f"air-gap safe: {what} with the network blocked; its {len(downloads)} "
                  f"download call(s) were answered from the local cache: {listed}{partial}",
                  **details)
    return ok(f"air-gap safe: {what} attempted no network connection and no runtime download "
              f"with the network blocked at the socket level{partial}", **details)


REACH_KEYS = ("known", "entries", "absent_entries", "from", "failed", "why", "import_s")


def collect_offline_import(ctx: Context) -> dict[str, Any]:
    """The closure import's air-gap audit and the reach facts it was taken under, as the
    usage index of this run holds them (plain JSON: connections and downloads with their
    frames and stacks; no verdict)."""
    from tts_doctor import scan

    reach = scan.reach_facts()
    return {"reach": {k: reach[k] for k in REACH_KEYS if k in reach},
            "airgap": reach.get("airgap")}


@probe("model.offline-import", title="Importing the deployment's code works without a "
       "network (air-gap audit of the closure import)", families=("F6", "F8"), timeout=120,
       collect=collect_offline_import)
def offline_import(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Judges the air-gap audit of `check`'s closure import: the entry modules (the recipe's
    `entry`, the installed TTS stacks, editable packages, what the application folder
    imports) imported in a process of the diagnosed interpreter with the network blocked at
    the socket level and the hubs' offline switches set (doctor/reach.py with doctor/airgap.py,
    the recording of `smoke --offline`). `ok` when nothing tried the network (download calls
    answered from the local cache count as offline); `fail` on any attempted connection to an
    address that is not this machine (host, port and the Python frame that made it) and on any
    runtime download that needed the network (hub downloads, `nltk.download`, spaCy model
    installs, pip at runtime), with the command that pre-fetches it at image build time;
    `skip` when no entry module was imported. It covers import time only: what the model
    does when it loads and synthesizes is `tts-doctor smoke --offline`'s audit."""
    return judge_import_offline(facts.get("airgap"), facts.get("reach") or {},
                                dists.executable())
