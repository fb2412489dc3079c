"""torch.load's `weights_only` default (A6) against packages that load full pickles.

torch 2.6 changed the default of `torch.load(weights_only=...)` from False to True: a
checkpoint that pickles anything beyond tensors and plain containers (coqui TTS's XTTS
checkpoints pickle their config classes) then fails with "Weights only load failed ...
Unsupported global: GLOBAL TTS.tts.configs.xtts_config.XttsConfig" (coqui TTS#4121). The old
`TTS` distribution (coqui-ai, abandoned at 0.22.0) calls torch.load without weights_only; its
maintained fork `coqui-tts` registers safe globals and passes the argument.

The probe does what a checkpoint load does: it pickles an instance of a class of its own with
torch.save and loads it back with the default arguments, in the worker, under the process's
environment (TORCH_FORCE_WEIGHTS_ONLY_LOAD, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD). Which
installed code calls torch.load without the argument is read from the old TTS's files (AST).
"""

from __future__ import annotations

import ast
import io
import os
import re
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix, Result, export, fail, ok, skip, steps, warn
from tts_doctor.registry import Context, probe

FORCE = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
FORCE_NO = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
# Distributions known to pickle classes into their checkpoints and to call torch.load without
# weights_only: name -> the maintained replacement.
BREAKERS = {"tts": "coqui-tts"}


class WeightsOnlyMarker:
    """A custom global, like the config objects coqui TTS pickles into XTTS checkpoints."""

    def __init__(self) -> None:
        self.sample_rate = 24000


def load_behaviour() -> dict[str, Any]:
    """What torch.load does here with a checkpoint holding a custom class: with the default
    arguments, and with weights_only=False (the environment variables can override both)."""
    import torch

    buf = io.BytesIO()
    torch.save({"config": WeightsOnlyMarker(), "weight": torch.zeros(2)}, buf)
    out: dict[str, Any] = {}
    for label, kwargs in (("default", {}), ("explicit_false", {"weights_only": False})):
        buf.seek(0)
        try:
            loaded = torch.load(buf, **kwargs)
            out[label] = {"loads": isinstance(loaded.get("config"), WeightsOnlyMarker),
                          "error": None}
        except TypeError as exc:  # torch < 1.13 has no weights_only argument
            out[label] = {"loads": None, "error": f"TypeError: {exc}"[:300]}
        except Exception as exc:
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # torch bolds part of it
            line = next((x.strip() for x in text.splitlines() if "Unsupported global" in x), "")
            out[label] = {"loads": False,
                          "error": f"{type(exc).__name__}: {text.splitlines()[0][:200]}"
                                   + (f" ... {line[:200]}" if line else "")}
    return out


def load_calls(dist_name: str) -> list[dict[str, Any]]:
    """torch.load calls in a distribution's files, with the weights_only they pass (None: not
    passed, so the default applies)."""
    from tts_doctor.scan import Pattern, scan_source

    dist = dists.distribution(dist_name)
    if dist is None:
        return []
    pattern = [Pattern("torch", "load")]
    root = str(dist.locate_file(""))
    out = []
    files = [str(dist.locate_file(f)) for f in dist.files or [] if str(f).endswith(".py")]
    for path in files:
        try:
            with open(path, "rb") as fh:
                source = fh.read()
        except OSError:
            continue
        lines = {line for line, _ in scan_source(source, pattern)}
        if not lines:
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.lineno in lines
                    and isinstance(node.func, ast.Attribute) and node.func.attr == "load"):
                continue
            kw = next((k for k in node.keywords if k.arg == "weights_only"), None)
            passes_kwargs = any(k.arg is None for k in node.keywords)
            value = None if kw is None else ast.unparse(kw.value)
            out.append({"where": f"{os.path.relpath(path, root)}:{node.lineno}",
                        "weights_only": value, "forwards_kwargs": passes_kwargs})
    return out


def judge(torch_version: str, behaviour: dict[str, Any], environ: dict[str, str],
          breakers: dict[str, dict[str, Any]]) -> Result:
    """The verdict from what torch.load did and which known breakers are installed."""
    default_ok = behaviour["default"]["loads"]
    explicit_ok = behaviour["explicit_false"]["loads"]
    env = {k: environ.get(k) for k in (FORCE, FORCE_NO) if environ.get(k) is not None}
    details: dict[str, Any] = {"torch": torch_version, "behaviour": behaviour,
                               "environment": env, "breakers": breakers,
                               "default_weights_only": default_ok is False}
    said_env = f" ({', '.join(f'{k}={v}' for k, v in env.items())})" if env else ""
    if not breakers:
        state = ("refuses a custom class (weights_only=True: \"Unsupported global\")"
                 if default_ok is False else "loads full pickles (weights_only=False)")
        return ok(f"torch {torch_version}: torch.load's default {state}{said_env}; no installed "
                  "package known to need full pickles", **details)
    names = ", ".join(f"{b['distribution']} {b['version']}" for b in breakers.values())
    unflagged = [c for b in breakers.values() for c in b["calls"] if c["weights_only"] is None]
    sites = ", ".join(c["where"] for c in unflagged[:3]) + (", ..." if len(unflagged) > 3
                                                            else "")
    commands = steps(dists.pip_uninstall(*(b["distribution"] for b in breakers.values())),
                     dists.pip_install(*sorted({BREAKERS[k] for k in breakers})))
    trust = export(FORCE_NO, "1", note="only for checkpoints you trust: it allows any pickle")
    fix = Fix("Replace the abandoned coqui `TTS` with its maintained fork `coqui-tts` (the same "
              "`TTS` module; it registers its config classes as safe globals). Or, for "
              f"checkpoints you trust, set {FORCE_NO}=1 to restore the old default.",
              commands=(*commands, trust))
    if default_ok is False:
        return fail(f"torch {torch_version} defaults to torch.load(weights_only=True){said_env} "
                    f"and {names} loads checkpoints that pickle classes without passing "
                    f"weights_only ({len(unflagged)} call(s): {sites}): loading a model fails "
                    "with \"Weights only load failed ... Unsupported global\"", fix, **details)
    if env.get(FORCE_NO):
        return warn(f"{names} works with torch {torch_version} only because {FORCE_NO} is set: "
                    "every torch.load in the process accepts arbitrary pickles", fix, **details)
    if explicit_ok is False:
        return fail(f"{FORCE} forces weights_only=True even where code passes False: {names} "
                    "cannot load its checkpoints", fix, **details)
    return warn(f"torch {torch_version} still defaults to weights_only=False, but {names} "
                "breaks from torch 2.6 on (\"Weights only load failed ... Unsupported global\")",
                fix, **details)


def collect_weights_only(ctx: Context) -> dict[str, Any]:
    """torch's metadata and runtime versions, what `import torch` raised, what torch.load did
    with a checkpoint holding a custom class (`load_behaviour`), the two environment
    variables that override its default, and each known breaker the deployment reaches with
    its torch.load calls (file:line, the weights_only they pass)."""
    facts: dict[str, Any] = {"version": dists.version("torch")}
    if facts["version"] is None:
        return facts
    try:
        import torch
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    from tts_doctor import scan

    facts.update(runtime=str(torch.__version__), behaviour=load_behaviour(),
                 environment={k: os.environ[k] for k in (FORCE, FORCE_NO) if k in os.environ})
    breakers = {}
    reach = scan.reach_facts()
    # a breaker counts only when the deployment reaches its code (doctor/usage.py)
    reached = {dists.canonical(n) for n in reach.get("reached_owners") or []} \
        if reach.get("known") else None
    for name in BREAKERS:
        dist = dists.distribution(name)
        if dist is not None and (reached is None or dists.canonical(name) in reached):
            breakers[name] = {"distribution": dist.metadata["Name"], "version": dist.version,
                              "calls": load_calls(name)[:40]}
    facts["breakers"] = breakers
    return facts


@probe("torch.weights-only", title="torch.load's weights_only default against packages that "
       "load full pickles (the old coqui TTS)", isolated=True, families=("A6",),
       timeout=120, collect=collect_weights_only, component="torch", memo=True, reads_index=True)
def weights_only(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Saves a checkpoint holding a custom class and loads it back with torch.load's default
    arguments, in the worker: torch >= 2.6 refuses it ("Weights only load failed ... Unsupported
    global"). Fails when the abandoned coqui `TTS` distribution (which calls torch.load without
    weights_only) is installed under that default; reports TORCH_FORCE_WEIGHTS_ONLY_LOAD and
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD."""
    if facts.get("version") is None:
        return skip("torch is not installed")
    if facts.get("import_error"):
        return skip(f"torch does not import ({facts['import_error']}); see torch.build"[:300])
    return judge(str(facts["runtime"]), facts["behaviour"], dict(facts.get("environment") or {}),
                 dict(facts.get("breakers") or {}))
