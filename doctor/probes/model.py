"""The model's files in the local hub cache (offline readiness) and the disk they need.

A recipe's `[cache]` table names the hub (`modelscope`, `huggingface` or `local`), the repo and
the files the pipeline opens. The probes read the cache layouts the hubs' own clients write,
without importing them and without any network access:

- Hugging Face: `$HF_HUB_CACHE` (or `$HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`,
  `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`) /
  `models--ORG--NAME/snapshots/<refs/main>/FILE`, each a link into `blobs/` (a dangling link or
  a `*.incomplete` blob is a download that did not finish);
- ModelScope: `$MODELSCOPE_CACHE` (old clients: the hub folder itself) or
  `~/.cache/modelscope/hub`, then `[models/]ORG/NAME/FILE`;
- a local folder: the recipe's `model.checkpoint_dir` / `model.model_dir` / `model.local_dir`,
  or `--set model.dir=PATH`, checked as well for every hub (IndexTTS-2 and CosyVoice download
  into such folders).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional

from tts_doctor.finding import Fix, Result, cmd, export, fail, manual, ok, steps, warn
from tts_doctor.registry import Context, probe

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MODELSCOPE_OFFLINE")
LOCAL_KEYS = ("checkpoint_dir", "model_dir", "local_dir")


def hf_hub_root() -> Path:
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def modelscope_root() -> Path:
    env = os.environ.get("MODELSCOPE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "modelscope" / "hub"


def _hf_snapshots(repo: str) -> tuple[list[tuple[Path, str]], Path]:
    base = hf_hub_root() / ("models--" + repo.replace("/", "--"))
    out: list[tuple[Path, str]] = []
    ref = base / "refs" / "main"
    try:
        commit = ref.read_text().strip() if ref.is_file() else ""
    except OSError:
        commit = ""
    if commit:
        out.append((base / "snapshots" / commit, f"Hugging Face cache ({repo}@{commit[:8]})"))
    snaps = base / "snapshots"
    if snaps.is_dir():
        for d in sorted(snaps.iterdir()):
            if d.is_dir() and d.name != commit:
                out.append((d, f"Hugging Face cache ({repo}@{d.name[:8]})"))
    return out, base


def _candidates(ctx: Context) -> tuple[list[tuple[Path, str]], Optional[Path]]:
    """Folders that may hold the model's files, and the hub's per-repo folder (for blobs)."""
    from tts_doctor.facts.model_cache import modelscope_model_dirs

    table = (ctx.recipe or {}).get("cache") or {}
    hub = table.get("hub", "modelscope")
    repo = str(table.get("repo") or "")
    out: list[tuple[Path, str]] = []
    hf_base = None
    if hub == "huggingface" and repo:
        snaps, hf_base = _hf_snapshots(repo)
        out += snaps
    elif hub == "modelscope" and repo:
        out += [(d, f"ModelScope cache ({repo})") for d in modelscope_model_dirs(repo)]
    elif hub == "local" and repo:
        out.append((Path(repo).expanduser(), "local folder (cache.repo)"))
    model = (ctx.recipe or {}).get("model") or {}
    local = [ctx.options.get("model.dir")] + [model.get(k) for k in LOCAL_KEYS]
    for value in filter(None, local):
        out.append((Path(str(value)).expanduser(), f"local folder {value}"))
    return out, hf_base


def _present(folder: Path, name: str) -> tuple[bool, Optional[str]]:
    path = folder / name
    if path.is_symlink() and not path.exists():
        return False, "dangling link: the blob was not downloaded"
    if path.is_file():
        return True, None
    if path.is_dir() and any(path.iterdir()):
        return True, None
    return False, None


def _not_models(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The listed files that are there but are not what their names say (an LFS pointer, an
    HTML page, a truncated download): name -> what modelfile.check found."""
    from tts_doctor import modelfile

    out = {}
    for name in names:
        path = folder / name
        if path.is_file():
            found = modelfile.check(path)
            if not found.ok:
                out[name] = found.to_dict()
    return out


def cache_state(ctx: Context) -> dict[str, Any]:
    """Which candidate folder holds most of the recipe's files, and what is missing there."""
    table = (ctx.recipe or {}).get("cache") or {}
    files = [str(f) for f in (table.get("files") or [])]
    candidates, hf_base = _candidates(ctx)
    best: Optional[dict[str, Any]] = None
    for folder, source in candidates:
        if not folder.is_dir():
            continue
        present, missing, notes = [], [], {}
        for f in files:
            here, note = _present(folder, f)
            (present if here else missing).append(f)
            if note:
                notes[f] = note
        if not files:
            entries = [e for e in os.listdir(folder) if not e.startswith(".")]
            present = entries[:20]
        bad = _not_models(folder, present if files else [])
        row = {"folder": str(folder), "source": source, "present": present,
               "missing": missing, "notes": notes, "not_models": bad}
        if best is None or len(present) > len(best["present"]):
            best = row
    state: dict[str, Any] = {
        "hub": table.get("hub", "modelscope"), "repo": table.get("repo"), "files": files,
        "searched": [str(p) for p, _ in candidates][:12], "found": best,
        "missing": best["missing"] if best else list(files),
    }
    if hf_base is not None and (hf_base / "blobs").is_dir():
        partial = [p.name for p in (hf_base / "blobs").glob("*.incomplete")]
        if partial:
            state["incomplete_blobs"] = partial[:10]
    if best is not None and not files and not best["present"]:
        state["empty"] = True
    return state


def _download_commands(ctx: Context, missing: list[str]) -> tuple[str, ...]:
    table = (ctx.recipe or {}).get("cache") or {}
    hub = table.get("hub", "modelscope")
    repo = str(table.get("repo") or "")
    model = (ctx.recipe or {}).get("model") or {}
    local = next((model.get(k) for k in LOCAL_KEYS if model.get(k)), None)
    names = [str(f) for f in missing]
    # a value the hub client could read as an option (a repo or file name starting with "-")
    # makes the command one for the user to check, never one fix runs
    make = cmd if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", repo) and not any(
        n.startswith("-") for n in names) else manual
    if hub == "huggingface" and repo:
        dest = ("--local-dir", str(local)) if local else ()
        return (make("hf", "download", repo, *names, *dest),)
    if hub == "modelscope" and repo:
        dest = ("--local_dir", str(local)) if local else ()
        return (make("modelscope", "download", "--model", repo, *names, *dest),)
    return ()


def _offline() -> list[str]:
    return [v for v in OFFLINE_VARS if os.environ.get(v, "").lower() in ("1", "true", "yes")]


def _git_root(folder: Path) -> Optional[str]:
    """The nearest folder at or above `folder` that holds a `.git` (a clone of the model)."""
    found = next((d for d in (folder, *folder.parents) if (d / ".git").exists()), None)
    return str(found) if found is not None else None


def collect_cache(ctx: Context) -> dict[str, Any]:
    """What the caches hold of the recipe's `[cache]` files (`cache_state`: the folders
    searched, the one holding most of them with what is present, missing, a dangling link or
    not a model file, unfinished Hugging Face blobs), the hub offline variables that are on,
    and the git clone a folder with LFS pointers belongs to."""
    if not (ctx.recipe or {}).get("cache"):
        return {}
    state = cache_state(ctx)
    facts: dict[str, Any] = {"state": state, "offline_vars": _offline()}
    if state["found"] is not None and state["found"].get("not_models"):
        facts["git_root"] = _git_root(Path(state["found"]["folder"]))
    return facts


@probe("model.cache", title="The recipe's model files are in the local hub cache (offline "
       "readiness)", collect=collect_cache)
def cache(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that the model files the recipe's `[cache]` table lists are in the local cache.

    No finding without a `[cache]` table. Reads, without network access, the Hugging Face snapshots
    (refs/main first), the ModelScope cache or a local folder, plus the recipe's model folders and
    `--set model.dir`, and keeps the folder holding the most files (a dangling link is missing). All
    present: `ok`. Missing files fail when HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE, MODELSCOPE_OFFLINE
    or `--set model.offline` is on, else warn; the fix is an `hf download` or `modelscope download`
    of them, or, for a local folder with no hub to download from, a description without commands.
    """
    table = (ctx.recipe or {}).get("cache")
    if not table:
        return None
    state = dict(facts["state"])
    if state["found"] is not None:  # the notes in the recipe's file order (a facts file
        notes = state["found"].get("notes") or {}  # keeps keys sorted)
        state["found"] = dict(state["found"], notes={f: notes[f] for f in state["files"]
                                                     if f in notes})
    repo = state["repo"] or "(local)"
    offline = list(facts.get("offline_vars") or []) or (
        ["--set model.offline"] if ctx.options.get("model.offline") else [])
    state["offline"] = offline
    missing = state["missing"]
    found = state["found"]
    if found is not None and found.get("not_models"):
        return _not_models_result(ctx, repo, found, state, facts.get("git_root"))
    if found is not None and not missing and not state.get("empty"):
        extra = ""
        if state.get("incomplete_blobs"):
            extra = f" ({len(state['incomplete_blobs'])} unfinished download(s) in blobs/)"
        return ok(f"{repo}: all {len(state['files']) or len(found['present'])} file(s) are in "
                  f"the {found['source']} at {found['folder']}{extra}", **state)
    where = (f"the {found['source']} at {found['folder']}" if found is not None
             else "no cache folder for it exists")
    commands = _download_commands(ctx, missing)
    notes = (found or {}).get("notes") or {}
    note = f" ({'; '.join(f'{k}: {v}' for k, v in notes.items())})" if notes else ""
    if commands:
        fix = Fix(f"Download the missing files before going offline (the hub client puts them "
                  f"in its cache); or point the doctor at your copy with --set model.dir=PATH."
                  f"{note}", commands=commands)
    else:  # a local folder: no hub to download from, and nothing a command could repair
        folder = found["folder"] if found is not None else (
            state["searched"][0] if state["searched"] else "the model folder")
        fix = Fix(f"No hub to download from: copy the model's files into {folder}, or point "
                  f"the doctor at the folder that holds them with --set model.dir=PATH.{note}")
    if state["files"]:
        summary = (f"{repo}: {len(missing)} of {len(state['files'])} file(s) missing from the "
                   f"local cache ({', '.join(missing)}); {where}")
    elif found is not None:
        summary = f"{repo}: {where} is empty"
    else:
        summary = f"{repo}: {where}"
    if offline:
        return fail(summary + f"; offline mode is on ({', '.join(offline)}): loading fails",
                    fix, **state)
    if not commands:  # a local folder: nothing will fetch the files
        return warn(summary + "; loading fails until the files are there (no hub to download "
                    "them from)", fix, **state)
    return warn(summary + "; the first run downloads them (network and time needed)", fix,
                **state)


def _not_models_result(ctx: Context, repo: str, found: dict[str, Any],
                       state: dict[str, Any], git_root: Optional[str]) -> Result:
    """model.cache's verdict when files are there under the model's names but are not models:
    loading them fails whatever the network (`invalid load key, 'v'`). `git_root`: the clone
    the folder belongs to, if any."""
    bad = found["not_models"]
    folder = Path(found["folder"])
    names = sorted(bad)
    what = "; ".join(f"{n}: {bad[n]['reason']}" for n in names[:3])
    commands: list[Any] = []
    lfs = [n for n in names if bad[n]["kind"] == "lfs-pointer"]
    if lfs and git_root is not None:
        include = ",".join(str((folder / n).relative_to(git_root)) for n in lfs)
        commands += [cmd("git", "-C", git_root, "lfs", "install", "--local"),
                     cmd("git", "-C", git_root, "lfs", "pull", "--include", include)]
    rest = [n for n in names if n not in lfs or git_root is None]
    if rest:
        download = _download_commands(ctx, rest)
        if download:
            commands += [manual("rm", "-f", *(str(folder / n) for n in rest)), *download]
    fix = Fix("These files are not the model: fetch the real ones (a clone needs git-lfs; a "
              "browser or wget may have saved a login or error page; a download that stopped "
              "leaves a truncated file). Loading them fails with \"invalid load key, 'v'\" "
              "(an LFS pointer), \"invalid load key, '<'\" (HTML) or \"failed reading zip "
              "archive\"." + ("" if commands else
                              " No hub to download from: copy the real files into " + str(folder)
                              + "."), commands=steps(*commands) if commands else ())
    return fail(f"{repo}: {len(names)} file(s) in {folder} are not model files ({what})", fix,
                **state)


def hub_variable(hub: str, environ: Optional[dict[str, Optional[str]]] = None
                 ) -> Optional[str]:
    """The environment variable that decides where a hub's cache is, as hf_hub_root and
    modelscope_root read them: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE when one is set (then
    HF_HOME changes nothing), else HF_HOME; MODELSCOPE_CACHE. None for a local folder.
    `environ`: the variables as recorded (this process's by default)."""
    env = os.environ if environ is None else environ
    if hub == "huggingface":
        return next((v for v in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
                     if env.get(v)), "HF_HOME")
    if hub == "modelscope":
        return "MODELSCOPE_CACHE"
    return None


def disk_fix(hub: str, found: Optional[dict[str, Any]], folder: Path, need: Any,
             environ: Optional[dict[str, Optional[str]]] = None) -> Fix:
    """How to get `need` GiB free where the model lives: move the hub's cache with the
    variable that decides it, or, for a local folder (cache.hub = "local", the recipe's model
    folder, --set model.dir), free space or move the folder itself (no variable moves it)."""
    local = hub == "local" or (found is not None
                               and str(found.get("source", "")).startswith("local folder"))
    var = None if local else hub_variable(hub, environ)
    if var is None:
        return Fix(f"Free space on that disk, or move the model folder {folder} to a disk with "
                   f"at least {need} GiB free and point the recipe (cache.repo, "
                   "model.checkpoint_dir) or --set model.dir=PATH at its new place.")
    return Fix(f"Free space on that disk, or move the cache to a disk with at least {need} GiB "
               f"free: {var} decides where the {hub} cache is (set it for every process that "
               "loads the model).", commands=(export(var, "/path/with/space"),))


def _gib(n: float) -> float:
    return round(n / 2**30, 2)


HUB_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")


def collect_disk(ctx: Context) -> dict[str, Any]:
    """Where the model lives (the folder model.cache finds, else the hub's cache root or the
    local repo folder), the nearest existing folder at or above it, the free and total bytes
    there, the files still missing, and the cache variables set."""
    table = (ctx.recipe or {}).get("cache")
    if not table:
        return {}
    hub = table.get("hub", "modelscope")
    state = cache_state(ctx)
    if state["found"] is not None:
        folder = Path(state["found"]["folder"])
    elif hub == "huggingface":
        folder = hf_hub_root()
    elif hub == "modelscope":
        folder = modelscope_root()
    else:
        folder = Path(str(table.get("repo") or "."))
    probe_at = folder
    while not probe_at.exists() and probe_at != probe_at.parent:
        probe_at = probe_at.parent
    usage = shutil.disk_usage(probe_at)
    return {"found": state["found"], "missing": state["missing"], "folder": str(folder),
            "measured_at": str(probe_at), "free": usage.free, "total": usage.total,
            "environ": {v: os.environ.get(v) for v in HUB_VARS}}


@probe("model.disk", title="Free disk space where the model cache lives", collect=collect_disk)
def disk(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks the free disk space where the model cache lives against the recipe's minimum.

    No finding without a `[cache]` table. Measures `shutil.disk_usage` at the folder model.cache
    found, else the hub's cache root (or the local repo folder), walking up to the nearest folder
    that exists. Without `cache.min_free_gib`: `ok` with the free space. Less free than that fails
    while files are still to be downloaded, else warns. The fix frees space or moves the cache with
    the variable that decides where it is (`export HF_HUB_CACHE=...` or `HUGGINGFACE_HUB_CACHE`
    when set, else `HF_HOME`; `MODELSCOPE_CACHE`); a local model folder is moved by hand (no
    command).
    """
    table = (ctx.recipe or {}).get("cache")
    if not table:
        return None
    hub = table.get("hub", "modelscope")
    folder, probe_at = Path(facts["folder"]), facts["measured_at"]
    free, total, missing = int(facts["free"]), int(facts["total"]), list(facts["missing"])
    need = table.get("min_free_gib")
    details: dict[str, Any] = {"folder": str(folder), "measured_at": probe_at,
                               "free_gib": _gib(free), "total_gib": _gib(total),
                               "min_free_gib": need, "missing_files": missing}
    if need is None:
        return ok(f"{_gib(free)} GiB free at {probe_at} (the recipe names no minimum)",
                  **details)
    if free >= float(need) * 2**30:
        return ok(f"{_gib(free)} GiB free at {probe_at} (the recipe needs {need} GiB)",
                  **details)
    fix = disk_fix(hub, facts.get("found"), folder, need, dict(facts.get("environ") or {}))
    summary = (f"only {_gib(free)} GiB free at {probe_at}; the recipe needs {need} GiB")
    if missing:
        return fail(summary + f" and {len(missing)} file(s) still to download", fix,
                    **details)
    return warn(summary + " (the files are already there; updates and caches need room)",
                fix, **details)
