"""Library compatibility: version pairs that break TTS front ends and models at run time.

- `compat.gradio` (O3): pydantic 2.11 writes `"additionalProperties": true` into JSON schemas;
  gradio_client before 1.8.0 then crashes building the API page with
  `TypeError: argument of type 'bool' is not iterable` (gradio#10792, fixed by gradio#10798 in
  gradio_client 1.8.0, first pinned by gradio 5.22.0; F5-TTS#930 pinned pydantic<=2.10.6).
- `compat.transformers` (O4): from transformers 4.50 `PreTrainedModel` no longer inherits
  `GenerationMixin`; a model class that defines `prepare_inputs_for_generation` on a
  `*PreTrainedModel` base without `GenerationMixin` loses `.generate()` (coqui TTS#4290:
  `'GPT2InferenceModel' object has no attribute 'generate'`). Such classes are found in the
  installed code (doctor.scan, then the class definitions), so tortoise-style copies in other
  packages are named too, not only the old coqui `TTS` distribution.

Both read metadata and source files only: in-process, no imports of the libraries.
"""

from __future__ import annotations

import ast
from typing import Any, Optional

from tts_doctor import dists, scan, upgrades
from tts_doctor.finding import Fix, Result, fail, ok, steps, warn
from tts_doctor.registry import Context, probe

PYDANTIC_BREAKS = (2, 11)
GRADIO_CLIENT_FIXED = (1, 8, 0)
GRADIO_FIXED = (5, 22, 0)
TRANSFORMERS_BREAKS = (4, 50)


def _v(release: Optional[tuple[int, ...]]) -> str:
    return ".".join(map(str, release or ()))


def _release(version: str) -> tuple[int, ...]:
    """A version's release numbers by `packaging` (the release regex of dists when it is not
    a valid version)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return dists.release(version) or ()


def collect_gradio(ctx: Context) -> dict[str, Any]:
    """gradio's, gradio_client's and pydantic's versions (metadata)."""
    return {n: dists.version(n) for n in ("gradio", "gradio-client", "pydantic")}


@probe("compat.gradio", title="pydantic >= 2.11 with a gradio_client that cannot read its "
       "schemas", families=("O3",), collect=collect_gradio)
def gradio(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks for pydantic >= 2.11 installed with a gradio_client older than 1.8.0.

    No finding when neither gradio nor gradio_client is installed. Reads versions from metadata
    only: the client is too old when gradio_client < 1.8.0, or, without gradio_client, when gradio <
    5.22.0. Too old with pydantic >= 2.11 fails (the app crashes building its API schema); anything
    else is `ok`, noting the risk when only pydantic is still older. The fix upgrades gradio to >=
    5.22.0 (or gradio_client to >= 1.8.0), or pins `pydantic<2.11`.
    """
    g, client, pyd = (facts.get(n) for n in ("gradio", "gradio-client", "pydantic"))
    if g is None and client is None:
        return None
    details: dict[str, Any] = {"gradio": g, "gradio_client": client, "pydantic": pyd,
                               "fixed_in": {"gradio_client": _v(GRADIO_CLIENT_FIXED),
                                            "gradio": _v(GRADIO_FIXED)}}
    names = f"gradio {g}" + (f" (gradio_client {client})" if client else "") if g \
        else f"gradio_client {client}"
    old_client = client is not None and _release(client) < GRADIO_CLIENT_FIXED
    old_gradio = client is None and g is not None and _release(g) < GRADIO_FIXED
    old = old_client or old_gradio
    new_pydantic = pyd is not None and _release(pyd) >= PYDANTIC_BREAKS
    if not (old and new_pydantic):
        why = "pydantic is not installed" if pyd is None else \
            f"pydantic {pyd}" + (" (before 2.11)" if not new_pydantic else "")
        risk = (f"; upgrading pydantic to 2.11 would break it (pin pydantic<2.11 or upgrade "
                f"to gradio>={_v(GRADIO_FIXED)})") if old and not new_pydantic else ""
        return ok(f"{names} with {why}: compatible{risk}", **details)
    fix = Fix(f"gradio_client {_v(GRADIO_CLIENT_FIXED)} handles pydantic 2.11's boolean "
              f"schemas; gradio {_v(GRADIO_FIXED)} is the first gradio that pins it. Upgrade "
              "gradio (first command), or keep this gradio and pin pydantic below 2.11 "
              "(second command).",
              commands=(upgrades.Upgrade("gradio", g, _v(GRADIO_FIXED)).command() if g
                        else upgrades.Upgrade("gradio_client", client,
                                              _v(GRADIO_CLIENT_FIXED)).command(),
                        dists.pip_install("pydantic<2.11")))
    return fail(f"pydantic {pyd} with {names}: the app crashes on launch building its API "
                "schema (TypeError: argument of type 'bool' is not iterable, in "
                "gradio_client.utils.get_type)", fix, **details)


# --- transformers >= 4.50 and GenerationMixin -----------------------------------------------



def _base_names(node: ast.ClassDef) -> list[str]:
    out = []
    for b in node.bases:
        while isinstance(b, ast.Subscript):
            b = b.value
        if isinstance(b, ast.Attribute):
            out.append(b.attr)
        elif isinstance(b, ast.Name):
            out.append(b.id)
    return out


def classes_without_generation_mixin(source: bytes) -> list[tuple[str, int]]:
    """(class, line) of classes that define `prepare_inputs_for_generation`, derive from a
    `*PreTrainedModel`, and have no `GenerationMixin` among their bases (directly or through
    a class of the same file)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}

    def has_mixin(node: ast.ClassDef, seen: frozenset[str] = frozenset()) -> bool:
        for base in _base_names(node):
            if base.endswith("GenerationMixin"):
                return True
            if base in classes and base not in seen and has_mixin(classes[base],
                                                                   seen | {node.name}):
                return True
        return False

    out = []
    for node in classes.values():
        defines = any(isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and b.name == "prepare_inputs_for_generation" for b in node.body)
        pretrained = any(b.endswith("PreTrainedModel") for b in _base_names(node))
        if defines and pretrained and not has_mixin(node):
            out.append((node.name, node.lineno))
    return sorted(out, key=lambda x: x[1])


PATTERNS = [scan.Pattern("transformers", "PreTrainedModel"),
            scan.Pattern("transformers", "GPT2PreTrainedModel"),
            scan.Pattern("transformers.modeling_utils", "PreTrainedModel")]
scan.watch("transformers.pretrained", PATTERNS, exclude=("transformers",))


def generation_classes() -> list[dict[str, Any]]:
    """Installed model classes that lose `.generate()` under transformers >= 4.50, each
    marked reached or not (doctor/usage.py)."""
    out = []
    seen: set[str] = set()
    for u in scan.find_usages(PATTERNS, exclude=("transformers",)):
        if u.file in seen:
            continue
        seen.add(u.file)
        if u.reached is False:  # outside the closure: listed by file, not parsed for classes
            out.append({"distribution": u.distribution, "version": u.version, "file": u.file,
                        "line": u.line, "class": None, "reached": False, "origin": u.origin})
            continue
        try:
            with open(u.file, "rb") as fh:
                found = classes_without_generation_mixin(fh.read())
        except OSError:
            continue
        out += [{"distribution": u.distribution, "version": u.version, "file": u.file,
                 "line": line, "class": name, "reached": u.reached, "origin": u.origin}
                for name, line in found]
    return out


def collect_transformers(ctx: Context) -> dict[str, Any]:
    """transformers', the old coqui TTS's and coqui-tts's versions, and (with transformers)
    the installed model classes that define prepare_inputs_for_generation on a
    *PreTrainedModel base without GenerationMixin (file, line, reached, origin; files
    outside the deployment's closure are listed unparsed), with what the usage index knows of
    the closure (its entry modules, whether any is known)."""
    facts: dict[str, Any] = {"transformers": dists.version("transformers"),
                             "TTS": dists.version("TTS"), "coqui-tts": dists.version("coqui-tts")}
    if all(v is None for v in facts.values()):
        return facts
    facts["classes"] = generation_classes() if facts["transformers"] is not None else []
    reach = scan.reach_facts()
    facts["reach"] = {"known": bool(reach.get("known")), "entries": reach.get("entries") or []}
    return facts


@probe("compat.transformers", title="transformers >= 4.50 with model classes that relied on "
       "PreTrainedModel's GenerationMixin (old coqui TTS)", families=("O4",), timeout=120,
       collect=collect_transformers)
def transformers(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks for model classes that lose `.generate()` under transformers >= 4.50.

    No finding when none of transformers, TTS (old coqui) and coqui-tts is installed; without
    transformers, `ok`. Scans installed code that uses PreTrainedModel (AST, in-process) for classes
    that define `prepare_inputs_for_generation` on a `*PreTrainedModel` base without
    GenerationMixin; the old coqui `TTS` distribution counts as one under >= 4.50 even when the scan
    misses it. Such classes fail with transformers >= 4.50 and are named in an `ok` below it. The
    fix pins `transformers<4.50`, or replaces `TTS` with `coqui-tts`. Only classes in code the
    deployment reaches are judged (docs/reachability.md); the others are listed.
    """
    tv = facts.get("transformers")
    coqui_old = facts.get("TTS")
    coqui_new = facts.get("coqui-tts")
    if tv is None and coqui_old is None and coqui_new is None:
        return None
    reach = facts.get("reach") or {}
    found, outside = scan.split_reached(list(facts.get("classes") or []))
    unreached = scan.unreached_note(outside, list(reach.get("entries") or []))
    breaks = tv is not None and _release(tv) >= TRANSFORMERS_BREAKS
    # The old coqui distribution (last release 0.22.0) is a known pair even if its files
    # were not scanned (no RECORD, a zipped install).
    if breaks and coqui_old and not any(f["distribution"].lower() == "tts" for f in found):
        found.append({"distribution": "TTS", "version": coqui_old, "file": None, "line": None,
                      "class": "GPT2InferenceModel"})
    details: dict[str, Any] = {"transformers": tv, "TTS": coqui_old, "coqui-tts": coqui_new,
                               "classes": found[:20],
                               "unreached_classes": outside[:20]}
    tail = f"; {unreached}" if unreached else ""
    if unreached:
        details["unreached"] = unreached
    if tv is None:
        return ok("transformers is not installed: nothing to pair with "
                  + ", ".join(f"{n} {v}" for n, v in (("TTS", coqui_old),
                                                       ("coqui-tts", coqui_new)) if v),
                  **details)
    if not found:
        return ok(f"transformers {tv}: no model class the deployment reaches relies on "
                  f"PreTrainedModel inheriting GenerationMixin{tail}", **details)
    listed = ", ".join(sorted({f"{f['class']} ({f['distribution']} {f['version']})"
                               for f in found}))
    if not breaks:
        return ok(f"transformers {tv} still gives PreTrainedModel GenerationMixin; "
                  f"{listed} would lose .generate() from transformers 4.50 (keep "
                  "transformers<4.50 pinned)", **details)
    commands: list[Any] = [dists.pip_install("transformers<4.50")]
    if coqui_old:
        commands.append(steps(dists.pip_uninstall("TTS"), dists.pip_install("coqui-tts")))
    fix = Fix("Keep transformers below 4.50 for these models (first command)"
              + ("; or replace the unmaintained coqui `TTS` with its maintained fork "
                 "`coqui-tts` (same `TTS` module, fixed classes; last commands)"
                 if coqui_old else "; for the packages that define these classes: "
                 + upgrades.NO_FIXED_RELEASE)
              + ". In your own code, add GenerationMixin to the class bases.",
              commands=tuple(commands))
    names = sorted({f["class"] for f in found})
    verb = "defines" if len(names) == 1 else "define"
    error = f"AttributeError: '{names[0]}' object has no attribute 'generate'"
    if len(names) > 1:
        error += "; likewise " + ", ".join(f"'{n}'" for n in names[1:4]) + \
            (", ..." if len(names) > 4 else "")
    # no entry point known: a class in installed code may never be used, so at most a warn
    report = fail if coqui_old or reach.get("known") or any(
        f.get("origin") in ("editable", "project") for f in found) else warn
    return report(f"transformers {tv} no longer gives PreTrainedModel GenerationMixin: {listed} "
                  f"{verb} prepare_inputs_for_generation without it, so .generate() fails "
                  f"({error})" + (f" ({scan.NO_ENTRY_NOTE})" if report is warn else ""), fix,
                  **details)
