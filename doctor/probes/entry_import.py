"""Do the deployment's entry modules import? (the closure import's own outcome)

`check` imports the deployment's entry modules in a process of their own (doctor/reach.py):
the recipe's `entry` list, or the entry modules of every installed TTS stack the doctor knows,
the packages of editable installs, and what the application's code imports. An entry whose
import raised is a deployment that cannot start: `from TTS.api import TTS` with torchaudio
missing, ModelScope's Sambert pipeline without its `audio-tts` extra (`No module named
'addict'`). The collector reads the outcome from the usage index and, for a module that was not
found, which installed distribution declares it (its requirement, in which extra); the judge
(`judge_entry_import`) is pure, so `check --facts` re-judges it.

The verdict weighs why each module is an entry (its role in the index) against what the
failure can prove:

- `fail` only for an ImportError (or an OSError of the dynamic loader: a compiled library
  that does not load) of code an installed distribution owns, imported because the
  recipe names it, because it is an installed TTS stack whose whole purpose is synthesis, or
  because it is a package of an editable install; and where the ImportError names a missing
  module, only if that module is nowhere on the interpreter's path nor in the application
  folder (else the code extends sys.path at run time, as GPT-SoVITS and CosyVoice's
  Matcha-TTS do, and the sandbox's failure proves nothing).
- `warn` for everything else that failed: ModelScope's TTS pipeline without a recipe (the hub
  library is installed for its downloads as often as for Sambert), single-file modules of
  editable installs (scripts), the libraries the application imports (the import may be
  guarded), code no distribution owns, other exceptions (SystemExit from an argument parser,
  a relative config file), and an import that did not finish.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Command, Fix, Result, fail, manual, ok, skip, warn
from tts_doctor.registry import Context, probe

# Import names whose distribution is named otherwise, for the lookup of a missing module's
# requirement (the distribution's own top_level.txt is not there to ask: it is not installed).
ALIASES: dict[str, tuple[str, ...]] = {
    "yaml": ("pyyaml",), "cv2": ("opencv-python", "opencv-python-headless",
                                 "opencv-contrib-python"),
    "sklearn": ("scikit-learn",), "skimage": ("scikit-image",), "PIL": ("pillow",),
    "attr": ("attrs",), "bs4": ("beautifulsoup4",), "dateutil": ("python-dateutil",),
    "google": ("protobuf",), "Crypto": ("pycryptodome",), "fitz": ("pymupdf",),
    "jwt": ("pyjwt",), "zmq": ("pyzmq",), "git": ("gitpython",), "serial": ("pyserial",),
    "magic": ("python-magic",), "docx": ("python-docx",), "mpl_toolkits": ("matplotlib",),
    "tn": ("wetextprocessing",), "itn": ("wetextprocessing",), "pkg_resources": ("setuptools",),
    "lightning": ("lightning", "pytorch-lightning"), "sox": ("sox",),
    "hyperpyyaml": ("hyperpyyaml",), "jamo": ("jamo",), "g2p_en": ("g2p-en",),
}
# TTS stacks (doctor/usage.py KNOWN_STACKS) that are general libraries: installed for their
# other uses (ModelScope: hub downloads, CV and NLP models) as often as for synthesis, so an
# entry of theirs that fails without a recipe is a warning.
GENERAL_STACKS = frozenset({"modelscope"})
# Missing modules whose install is not a plain `pip install` (a wheel index matching the
# driver, ModelScope's find-links, PyPI's placeholders): the finding that knows says how.
ELSEWHERE = {"torch": "torch.build", "torchaudio": "torchaudio.pair",
             "torchvision": "torch.build", "ttsfrd": "ttsfrd.origin", "kantts": "ttsfrd.kantts"}
FAIL_ROLES = ("recipe", "editable")
SHOWN = 3
# an OSError of the dynamic loader (ctypes.CDLL, torch.ops.load_library), and the package
# under site-packages whose library it names
_NATIVE = re.compile(r"\.so\b|\.dylib\b|\.dll\b|shared object|undefined symbol|"
                     r"[Cc]ould not load (this |the )?library")
_SITE_TOP = re.compile(r"(?:site|dist)-packages/([A-Za-z_]\w*)/")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _extra_rank(extra: Optional[str]) -> tuple[int, str]:
    """A hard requirement first, then the extras a TTS deployment installs."""
    if extra is None:
        return (0, "")
    name = extra.lower()
    return (1 if "tts" in name else 2 if "audio" in name or "speech" in name else 3, name)


def _requirement(missing: str, owner: Optional[str]) -> Optional[dict[str, Any]]:
    """The installed distribution that declares the missing module's distribution (the
    entry's owner first, then the others by name): its name and version, the requirement
    (name, extras, specifier; no marker) where it is most likely meant for a TTS deployment
    (a hard requirement, else an extra named for TTS or audio), and the extras that hold it."""
    from packaging.requirements import InvalidRequirement, Requirement

    top = missing.split(".")[0]
    wanted = {dists.canonical(top), *(dists.canonical(a) for a in ALIASES.get(top, ()))}
    everything = dists.all_distributions()
    order = ([owner] if owner in everything else []) + \
        sorted(k for k in everything if k != owner)
    for key in order:
        try:
            requires = list(everything[key].requires or ())
        except Exception:
            continue
        found: list[tuple[tuple[int, str], str, Optional[str]]] = []
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if dists.canonical(req.name) not in wanted:
                continue
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            match = _EXTRA.search(str(req.marker or ""))
            extra = match.group(1) if match else None
            found.append((_extra_rank(extra), f"{req.name}{extras}{req.specifier}", extra))
        if found:
            found.sort()
            return {"by": key, "by_version": dists.version(key), "requirement": found[0][1],
                    "hard": found[0][2] is None,
                    "extras": sorted({e for _, _, e in found if e}, key=_extra_rank)}
    return None


def _in_folder(top: str, folder: Optional[str], limit: int = 20000) -> Optional[str]:
    """Where a package or module named `top` sits under the application folder (bounded walk,
    no hidden or virtual-environment folders), or None."""
    if not folder or not os.path.isdir(folder):
        return None
    seen = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in
                         ("site-packages", "node_modules", "__pycache__", "venv"))
        if top in dirs:
            return os.path.join(root, top)
        if f"{top}.py" in files:
            return os.path.join(root, f"{top}.py")
        seen += len(files) + len(dirs)
        if seen > limit:
            return None
    return None


def collect_entry_import(ctx: Context) -> dict[str, Any]:
    """The closure import's outcome as the usage index of this run holds it (entries, their
    roles and owners, the failures and their causes), and for each module that was not found:
    whether its top-level name is on the diagnosed interpreter's path or in the application
    folder, and which installed distribution declares it."""
    from tts_doctor import scan

    index = scan.index()
    reach = dict(index.get("reach") or {})
    keep = ("known", "why", "entries", "absent_entries", "from", "roles", "owners", "failed",
            "causes", "import_error")
    facts: dict[str, Any] = {"reach": {k: reach[k] for k in keep if k in reach},
                             "owner_versions": {}, "missing": {}}
    owners = reach.get("owners") or {}
    for owner in sorted(set(owners.values())):
        facts["owner_versions"][owner] = dists.version(owner)
    # entries that miss the same module (every package of a repo without torch) share the
    # lookup: the walk of the application folder and the read of every requirement
    looked: dict[tuple[str, Optional[str]], dict[str, Any]] = {}
    for entry, cause in sorted((reach.get("causes") or {}).items()):
        module = (cause or {}).get("missing")
        if not isinstance(module, str) or not module:
            continue
        key = (module, owners.get(entry))
        if key not in looked:
            top = module.split(".")[0]
            found = dists.find_spec(top)
            where = None
            if found is not None:
                where = found.origin if found.origin not in (None, "namespace") else \
                    next(iter(found.submodule_search_locations or []), None)
            looked[key] = {
                "module": module, "top": top, "top_installed": found is not None,
                "top_path": where, "in_project": _in_folder(top, index.get("project")),
                "declared": _requirement(module, owners.get(entry)),
            }
        facts["missing"][entry] = looked[key]
    return facts


def _role_text(role: str, owner: Optional[str]) -> str:
    if role == "recipe":
        return "the recipe's entry"
    if role.startswith("stack:"):
        return f"the entry of the installed TTS stack {owner or role[6:]}"
    if role == "editable":
        return "a package of an editable install"
    if role == "editable-module":
        return "a module of an editable install"
    return "a library your code imports"


def _by(declared: dict[str, Any]) -> str:
    """The declaring distribution with its version ("modelscope 1.40.2")."""
    return " ".join(x for x in (declared["by"], declared.get("by_version")) if x)


def _one(entry: str, why: str, role: str, owner: Optional[str], cause: dict[str, Any],
         missing: Optional[dict[str, Any]], timed_out: bool) -> tuple[str, str, Optional[str]]:
    """(status, text, requirement to install) for one entry that did not import."""
    stack = role[6:] if role.startswith("stack:") else None
    can_fail = owner is not None and not timed_out and (
        role in FAIL_ROLES or (stack is not None and stack not in GENERAL_STACKS))
    status = "fail" if can_fail else "warn"  # where the failure proves the deployment broken
    said = " ".join(why.split())  # messages that start with a newline (coqui-tts's) read whole
    text = f"{entry} ({_role_text(role, owner)}): {said[:240]}{'...' if len(said) > 240 else ''}"
    if timed_out:
        return "warn", text, None
    if owner is None:
        return "warn", text + " (no installed distribution owns this code: it may extend " \
            "sys.path at run time)", None
    native = _NATIVE.search(why) if cause.get("type") == "OSError" else None
    if native:
        # a compiled library that does not load (torchaudio built for another torch, a
        # missing libsndfile): the code cannot start in this environment, like an ImportError
        lib = _SITE_TOP.search(why)
        top = lib.group(1) if lib else None
        see = ELSEWHERE.get(str(top))
        detail = "a compiled library does not load" + (f": {top}" if top else "") + \
            (f"; see {see}" if see else "; the extensions and audio findings name it")
        return status, f"{text} ({detail})", None
    if not cause.get("import_error") and not (missing or {}).get("module"):
        # (a RuntimeError raised from a ModuleNotFoundError, as ModelScope's lazy modules do,
        # is an import failure)
        return "warn", text + " (not an ImportError: it may need the arguments, files or " \
            "network of a real run)", None
    if missing is None:
        return status, text, None
    module, top = missing.get("module"), missing.get("top")
    declared = missing.get("declared")
    see = ELSEWHERE.get(str(top))
    if stack is not None and isinstance(module, str) and (entry + ".").startswith(module + "."):
        # the doctor's own guess of the stack's entry module is not in this release of it
        return "warn", text + f" (this release of {owner} has no {module}: the doctor's " \
            "entry for the stack; name yours with a recipe's `entry`)", None
    if missing.get("in_project") or (missing.get("top_installed") and module == top):
        place = missing.get("in_project") or missing.get("top_path")
        return "warn", text + f" ({top} is at {place}: the code extends sys.path at run " \
            "time, or runs from its own folder)", None
    if missing.get("top_installed"):
        detail = f"the installed {top} has no module {module}"
        if declared:
            detail += f"; {_by(declared)} declares {declared['requirement']}"
        if see:
            detail += f"; see {see}"
        return status, f"{text} ({detail})", None
    if declared:
        extras = list(declared.get("extras") or [])
        extra = "" if declared.get("hard") or not extras else (
            " in its extra" + ("s " if len(extras) > 1 else " ")
            + ", ".join(f"'{e}'" for e in extras[:SHOWN])
            + (" ..." if len(extras) > SHOWN else ""))
        detail = f"{top} is not installed; {_by(declared)} declares " \
            f"{declared['requirement']}{extra}"
        if see:  # installed from elsewhere than PyPI's default index: that finding says how
            return status, f"{text} ({detail}; see {see})", None
        return status, f"{text} ({detail})", declared["requirement"]
    tail = f"; see {see}" if see else ""
    return status, \
        f"{text} ({top} is not installed, and no installed distribution declares it{tail})", None


def judge_entry_import(facts: dict[str, Any], python: str) -> Result:
    """The verdict on the entry modules' imports (pure: facts in, result out); the rules are
    in the module's docstring."""
    reach = facts.get("reach") or {}
    entries = list(reach.get("entries") or [])
    roles = reach.get("roles") or {}
    absent = [e for e in reach.get("absent_entries") or [] if roles.get(e) == "recipe"]
    if not reach.get("known") or (not entries and not absent):
        return skip("no entry module of the deployment to import: "
                    + str(reach.get("why") or "no installed module to import"))
    failed = reach.get("failed") or {}
    causes = reach.get("causes") or {}
    owners = reach.get("owners") or {}
    timed_out = bool(reach.get("import_error"))
    rows: list[tuple[str, str, Optional[str], str]] = []  # status, text, requirement, entry
    for entry in entries:
        if entry in failed:
            owner = owners.get(entry)
            if owner and owner.startswith("("):
                owner = None  # "(your code)", "(no distribution)": no installed distribution
            rows.append((*_one(entry, str(failed[entry]), roles.get(entry, "import"), owner,
                               causes.get(entry) or {},
                               (facts.get("missing") or {}).get(entry), timed_out), entry))
    for entry in absent:
        rows.append(("fail", f"{entry} (the recipe's entry): no such module is installed",
                     None, entry))
    details: dict[str, Any] = {"entries": entries, "roles": roles, "owners": owners,
                               "owner_versions": facts.get("owner_versions") or {}}
    if failed:
        details["failed"] = failed
    if absent:
        details["absent_recipe_entries"] = absent
    if facts.get("missing"):
        details["missing"] = facts["missing"]
    if reach.get("import_error"):
        details["import_error"] = reach["import_error"]
    if not rows:
        shown = ", ".join(entries[:SHOWN]) + (" ..." if len(entries) > SHOWN else "")
        return ok(f"the {len(entries)} entry module(s) import: {shown}", **details)
    failing = [r for r in rows if r[0] == "fail"]
    worst = failing or rows
    listed = "; ".join(r[1] for r in worst[:SHOWN]) + \
        (f"; and {len(worst) - SHOWN} more (details.failed)" if len(worst) > SHOWN else "")
    if failing and len(failing) < len(rows):
        others = [r[3] for r in rows if r[0] != "fail"]
        listed += (f"; {len(others)} more did not import in the doctor's sandbox, which "
                   f"proves less (warnings, details.failed): {', '.join(others[:SHOWN])}"
                   + (" ..." if len(others) > SHOWN else ""))
    reqs = sorted({r[2] for r in worst if r[2]})
    # (only dotted names: an editable finder's MAPPING is a file anyone could have written)
    repro = [manual(python, "-c", f"import {r[3]}") for r in worst
             if r[3] in failed and _DOTTED.fullmatch(r[3])][:SHOWN]
    if timed_out:
        return warn(f"the import of the entry modules did not finish: {listed}",
                    Fix("Import the entry module yourself to see where it hangs or dies "
                        "(the doctor gave it 120 s with the network blocked).",
                        commands=tuple(repro)), **details)
    text = ("Install what the entry modules import but the environment lacks (the "
            "requirements their distributions declare), then import them again. A module "
            "an installed library lacks is a version mismatch: the packages.consistency and "
            "compat findings name the version to install.")
    commands = ((Command((python, "-m", "pip", "install", *reqs), "run"),) if reqs else ()) \
        + tuple(repro)
    if failing:
        return fail(f"{len(failing)} entry module(s) do not import: {listed}",
                    Fix(text, commands=commands), **details)
    return warn(f"{len(rows)} entry module(s) did not import in the doctor's sandbox: "
                f"{listed}", Fix(text, commands=commands), **details)


@probe("model.entry-import", title="The deployment's entry modules import", families=("T8", "O1"),
       timeout=120, collect=collect_entry_import)
def entry_import(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Judges whether the deployment's entry modules import, from `check`'s closure import
    (doctor/reach.py: the recipe's `entry`, the installed TTS stacks, editable packages, what
    the application imports, each imported in a process of the diagnosed interpreter with the
    network blocked). `fail` when code an installed distribution owns, named by the recipe, an
    installed TTS stack's entry or an editable package, raises ImportError or cannot load a
    compiled library (torchaudio built for another torch: the finding that knows is named):
    a module that is not installed (with the requirement that an installed distribution
    declares for it, often in an extra: `pip install` it), or a name or symbol an installed
    library lacks. `warn` when the failure cannot prove the deployment broken: ModelScope's
    TTS pipeline without a recipe, editable scripts, the application's own imports, code no
    distribution owns, a missing module that is on the path or in the application folder,
    other exceptions, an import that did not finish. `skip` when there is no entry module."""
    return judge_entry_import(facts, dists.executable())
