"""ModelScope against Hugging Face `datasets` (FAILURES.md F4).

`from modelscope.pipelines import pipeline` imports modelscope.msdatasets, which imports
internals of Hugging Face `datasets` that later releases removed: `_datasets_server`
(datasets 2.19.0, modelscope#836), `OfflineModeIsEnabled` (datasets 3.0.2, modelscope#1050),
`get_metadata_patterns`, `get_imports`... A `pip install -U datasets` for another project
breaks every ModelScope pipeline. The probe runs the user's import in the worker and, when it
fails inside `datasets`, names the pair and the datasets release to pin.
"""

from __future__ import annotations

import re
import traceback
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix, Result, Status, fail, ok, warn
from tts_doctor.registry import Context, probe

# name modelscope imports from datasets -> (the datasets release that removed it, the last
# release that has it), from the modelscope reports and datasets' changelogs
REMOVED_FROM_DATASETS: dict[str, tuple[str, str]] = {
    "_datasets_server": ("2.19.0", "2.18.0"),
    "OfflineModeIsEnabled": ("3.0.2", "3.0.1"),
}


def datasets_requirement(modelscope: Any) -> Optional[str]:
    """The datasets range the installed modelscope declares (its `datasets` extra)."""
    for line in modelscope.requires or ():
        m = re.match(r"datasets\s*\(?([^;)]*)\)?\s*(;.*)?$", line.strip())
        if m and (not m.group(2) or "datasets" in m.group(2) or "framework" in m.group(2)):
            return m.group(1).strip() or None
    return None


def judge_import(error: Optional[str], where: Optional[str], ms_version: str,
                 ds_version: Optional[str], declared: Optional[str]) -> Result:
    """The verdict from what `from modelscope.pipelines import pipeline` raised."""
    details: dict[str, Any] = {"modelscope": ms_version, "datasets": ds_version,
                               "declared": declared, "error": error, "where": where}
    if error is None:
        return ok(f"from modelscope.pipelines import pipeline works (modelscope {ms_version}, "
                  f"datasets {ds_version})", **details)
    from_datasets = bool(re.search(r"from '?datasets[.']", error)) or bool(
        where and "msdatasets" in where) or "No module named 'datasets" in error
    if not from_datasets:
        return fail(f"from modelscope.pipelines import pipeline fails: {error}"[:400], Fix(
            "Install what modelscope's pipelines import (its `framework` extra, and torch).",
            commands=(dists.pip_install(f"modelscope[framework]=={ms_version}"),)), **details)
    if ds_version is None:
        install = dists.pip_install(f"datasets{declared or ''}")
        return fail(f"modelscope {ms_version}'s pipelines need Hugging Face datasets, which is "
                    "not installed", Fix("Install the datasets range modelscope declares.",
                                         commands=(install,)), **details)
    name = re.search(r"cannot import name '(\w+)'", error)
    known = REMOVED_FROM_DATASETS.get(name.group(1)) if name else None
    if known:
        removed, last = known
        pin = f"datasets=={last}"
        why = (f"datasets {removed} removed {name.group(1)}, "  # type: ignore[union-attr]
               f"which modelscope {ms_version} imports; {last} is the last release that has it")
    else:
        pin = f"datasets{declared}" if declared else None
        why = (f"modelscope {ms_version} imports a datasets internal that datasets "
               f"{ds_version} no longer has" + (f"; modelscope declares datasets{declared}"
                                               if declared else ""))
    commands = (dists.pip_install(pin),) if pin else ()
    fix = Fix(f"{why}. Pin datasets to a release modelscope {ms_version} works with (no "
              f"modelscope release known here that works with datasets {ds_version}: pin, "
              "or patch)" + ("" if pin else ": no fixed pair known here, pin datasets to the "
                             "release before yours"),
              commands=commands)
    details["pin"] = pin
    return fail(f"from modelscope.pipelines import pipeline fails with modelscope {ms_version} "
                f"and datasets {ds_version}: {error}"[:500], fix, **details)


def collect_modelscope_datasets(ctx: Context) -> dict[str, Any]:
    """modelscope's and datasets' versions, the datasets range modelscope declares, and what
    `from modelscope.pipelines import pipeline` raised (None: it imports) with the innermost
    modelscope frame it raised from."""
    ms = dists.distribution("modelscope")
    if ms is None:
        return {"modelscope": None}
    facts: dict[str, Any] = {"modelscope": ms.version, "datasets": dists.version("datasets"),
                             "declared": datasets_requirement(ms), "error": None,
                             "where": None}
    try:
        from modelscope.pipelines import pipeline  # noqa: F401
    except Exception as exc:
        facts["error"] = f"{type(exc).__name__}: {exc}"[:600]
        frames = traceback.extract_tb(exc.__traceback__)
        facts["where"] = next((f"{fr.filename}:{fr.lineno}" for fr in reversed(frames)
                               if "modelscope" in fr.filename), None)
    return facts


@probe("compat.modelscope-datasets", title="ModelScope's pipelines import with the installed "
       "Hugging Face datasets", isolated=True, families=("F4",), timeout=120,
       collect=collect_modelscope_datasets, component="modelscope", memo=True)
def modelscope_datasets(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """No finding without modelscope (or when the recipe marks it absent). Runs
    `from modelscope.pipelines import pipeline` in the worker. An error raised from
    modelscope.msdatasets or from a `datasets` module fails, naming the modelscope/datasets
    pair and, for the internals datasets is known to have removed (`_datasets_server` in
    2.19.0, `OfflineModeIsEnabled` in 3.0.2), the last datasets release that has them; other
    missing names get the range modelscope declares. Any other import error fails with the
    modelscope extra that brings its requirements. Each fail is a warn unless the deployment
    runs the pipelines (a modelscope recipe: engine, requires or entry modules)."""
    if facts.get("modelscope") is None:
        return None
    result = judge_import(facts.get("error"), facts.get("where"), facts["modelscope"],
                          facts.get("datasets"), facts.get("declared"))
    return at_most_warn(result) if not uses_pipelines(ctx) else result


def uses_pipelines(ctx: Context) -> bool:
    """Whether the deployment runs ModelScope's pipelines: a recipe whose engine is
    modelscope, that requires modelscope, or whose entry modules are modelscope.pipelines.
    Without one, modelscope may be there for its hub client alone (IndexTTS-2 and CosyVoice
    only call snapshot_download), and a pipelines import that fails is not their failure."""
    recipe = ctx.recipe or {}
    entries = [str(e) for e in recipe.get("entry") or ()]
    return (recipe.get("engine") == "modelscope" or ctx.needs("modelscope") == "required"
            or any(e.startswith("modelscope.pipelines") for e in entries))


def at_most_warn(result: Result) -> Result:
    """A fail of the pipelines import, as a warning: nothing says the deployment uses them."""
    if result.status is not Status.FAIL:
        return result
    assert result.fix is not None
    return warn(result.summary + " (a warning: nothing says this deployment runs ModelScope's "
                "pipelines; --recipe sambert-hifigan-16k judges them)", result.fix,
                **dict(result.details))
