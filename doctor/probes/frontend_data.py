"""Data the English and Japanese text frontends load at first use (FAILURES.md F6, F7, F8).

Each of these works on the developer's machine, which downloaded the data once, and fails in
an image built without it, or offline: g2p_en's NLTK tagger and CMUdict (`LookupError:
Resource averaged_perceptron_tagger_eng not found`), phonemizer's espeak-ng library and data
(`espeak not installed on your system`), the spaCy model misaki pip-installs at first use,
pyopenjtalk's dictionary (downloaded from GitHub at first use). The probes ask the libraries
themselves (NLTK's loaders, phonemizer's backend, the file layout pyopenjtalk reads), never
trigger a download, and give the exact command that fetches the data into the image at build
time. Standard library only in the probe bodies: they run inside the diagnosed interpreter.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists, footprint, scan
from tts_doctor.finding import Fix, Result, export, fail, ok, steps, system, warn
from tts_doctor.registry import Context, probe

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MODELSCOPE_OFFLINE")
OPENJTALK_DIC = "open_jtalk_dic_utf_8-1.11"


def _offline_env() -> dict[str, Optional[str]]:
    """The offline switches of the hubs as set where the probe runs (collected)."""
    return {v: os.environ.get(v) for v in OFFLINE_VARS}


def _offline(ctx: Context, facts: dict[str, Any]) -> bool:
    """Whether offline mode is on: `--set model.offline`, or a hub's offline variable as
    recorded in `facts["offline_env"]`."""
    env = facts.get("offline_env") or {}
    return bool(ctx.options.get("model.offline")) or any(
        str(env.get(v) or "").lower() in ("1", "true", "yes") for v in OFFLINE_VARS)


def _module_dir(name: str) -> Optional[Path]:
    """The folder of an installed package, found without importing it."""
    spec = dists.find_spec(name)  # the diagnosed interpreter's path, no import
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# --- F6: NLTK data for g2p_en -----------------------------------------------------------------

def nltk_state() -> dict[str, Any]:
    """Load what g2p_en loads, the way NLTK loads it: the averaged perceptron tagger (named
    `averaged_perceptron_tagger_eng` since NLTK 3.9) and CMUdict. A missing resource raises
    LookupError naming it; nothing is downloaded."""
    import nltk

    state: dict[str, Any] = {"nltk": getattr(nltk, "__version__", None),
                             "search_path": list(nltk.data.path)[:8], "missing": []}
    for folder in nltk.data.path:  # what is found there decides (tts_doctor.memo)
        footprint.depends(str(folder), depth=2)
    try:
        from nltk.tag.perceptron import PerceptronTagger

        PerceptronTagger()
        state["tagger"] = True
    except LookupError as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # NLTK colours the resource name
        m = re.search(r"Resource (\w*averaged_perceptron_tagger\w*)", text)
        state["missing"].append(m.group(1) if m else "averaged_perceptron_tagger_eng")
    try:
        from nltk.corpus import cmudict

        cmudict.ensure_loaded()
        state["cmudict"] = True
    except LookupError:
        state["missing"].append("cmudict")
    return state


def collect_nltk_data(ctx: Context) -> dict[str, Any]:
    """g2p_en's and NLTK's versions, the offline switches, and (with both installed) what
    NLTK's loaders find of the tagger and CMUdict (`nltk_state`)."""
    facts: dict[str, Any] = {"g2p_en": dists.version("g2p-en"), "nltk": dists.version("nltk"),
                             "offline_env": _offline_env()}
    if facts["g2p_en"] is not None and facts["nltk"] is not None:
        facts["state"] = nltk_state()
    return facts


@probe("frontend.nltk-data", title="The NLTK data g2p_en loads is in the image",
       memo=True, isolated=True, families=("F6",), collect=collect_nltk_data)
def nltk_data(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """No finding without g2p_en. Otherwise imports NLTK (not g2p_en, whose import downloads)
    and loads what g2p_en uses, the way NLTK loads it: `PerceptronTagger()` (the
    `averaged_perceptron_tagger_eng` resource since NLTK 3.9) and CMUdict. A resource that
    raises LookupError warns (fails when offline mode is on: g2p_en's own download cannot
    run); the fix is `python -m nltk.downloader -d DIR ...` with those names, run at image build
    time, and NLTK_DATA pointing at DIR."""
    if facts.get("g2p_en") is None:
        return None
    if facts.get("nltk") is None:
        return fail("g2p_en is installed but nltk is not", Fix(
            "Install NLTK (g2p_en imports it).", commands=(dists.pip_install("nltk"),)))
    state = dict(facts["state"])
    if not state["missing"]:
        return ok(f"NLTK {state['nltk']}: the tagger and CMUdict g2p_en uses load", **state)
    target = "/usr/local/share/nltk_data"
    fix = Fix(f"Fetch the data into the image at build time (g2p_en otherwise downloads it at "
              f"first import, which fails offline); {target} is on NLTK's default search path, "
              "NLTK_DATA names another folder.",
              commands=steps(dists.command("-m", "nltk.downloader", "-d", target,
                                           *state["missing"]), export("NLTK_DATA", target)))
    summary = (f"NLTK {state['nltk']} cannot find {', '.join(state['missing'])}: g2p_en "
               f"raises \"LookupError: Resource {state['missing'][0]} not found\" (or downloads "
               "it at first use)")
    return (fail if _offline(ctx, facts) else warn)(summary, fix, **state)


# --- F7: espeak-ng for phonemizer -------------------------------------------------------------

def _espeakng_loader() -> Optional[dict[str, str]]:
    """The espeak-ng library and data espeakng-loader bundles (kokoro's way), if installed."""
    if dists.version("espeakng-loader") is None:
        return None
    try:
        import espeakng_loader

        return {"library": str(espeakng_loader.get_library_path()),
                "data": str(espeakng_loader.get_data_path())}
    except Exception:
        return None


# code that points phonemizer at a bundled espeak-ng (misaki/espeak.py, kokoro's way):
# `EspeakWrapper.set_library(espeakng_loader.get_library_path())` when it is imported
ESPEAK_SETUP = [scan.Pattern("phonemizer.backend.espeak.wrapper.EspeakWrapper", "set_library")]
scan.watch("phonemizer.espeak-setup", ESPEAK_SETUP, exclude=("phonemizer", "phonemizer-fork"))


def _via_loader(loader: dict[str, str]) -> dict[str, Any]:
    """Set phonemizer's library (and data) to espeakng-loader's copy, as the code that calls
    EspeakWrapper.set_library does, and phonemize 'hello' that way."""
    out: dict[str, Any] = {}
    try:
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper

        EspeakWrapper.set_library(loader["library"])
        if hasattr(EspeakWrapper, "set_data_path"):  # phonemizer-fork
            EspeakWrapper.set_data_path(loader["data"])
        out["available"] = bool(EspeakBackend.is_available())
        if out["available"]:
            out["espeak"] = ".".join(map(str, EspeakBackend.version()))
            out["sample"] = [str(x) for x in EspeakBackend("en-us").phonemize(["hello"],
                                                                              strip=True)]
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def collect_espeak(ctx: Context) -> dict[str, Any]:
    """phonemizer's (and phonemizer-fork's) version, what importing its espeak backend
    raised, espeakng-loader's bundled library and data, the PHONEMIZER_ESPEAK_LIBRARY and
    ESPEAK_DATA_PATH variables, what `EspeakBackend.is_available()` answered (or raised), and
    then espeak-ng's version and what phonemizing 'hello' with en-us gave (or raised)."""
    facts: dict[str, Any] = {"phonemizer": dists.version("phonemizer"),
                             "phonemizer_fork": dists.version("phonemizer-fork")}
    if facts["phonemizer"] is None and facts["phonemizer_fork"] is None:
        return facts
    try:
        from phonemizer.backend import EspeakBackend
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    facts.update(espeakng_loader=_espeakng_loader(),
                 PHONEMIZER_ESPEAK_LIBRARY=os.environ.get("PHONEMIZER_ESPEAK_LIBRARY"),
                 ESPEAK_DATA_PATH=os.environ.get("ESPEAK_DATA_PATH"))
    try:
        facts["available"] = bool(EspeakBackend.is_available())
    except Exception as exc:
        facts["available"] = False
        facts["available_error"] = f"{type(exc).__name__}: {exc}"[:300]
    if not facts["available"]:
        if facts["espeakng_loader"]:
            facts["setters"] = [u.to_dict() for u in scan.find_usages(
                ESPEAK_SETUP, exclude=("phonemizer", "phonemizer-fork"))]
            facts["via_loader"] = _via_loader(facts["espeakng_loader"])
        return facts
    try:
        facts["espeak"] = ".".join(map(str, EspeakBackend.version()))
        facts["sample"] = [str(x) for x in EspeakBackend("en-us").phonemize(["hello"],
                                                                             strip=True)]
    except Exception as exc:
        facts["phonemize_error"] = f"{type(exc).__name__}: {exc}"
    return facts


@probe("frontend.espeak", title="phonemizer finds espeak-ng and its data, and phonemizes",
       memo=True,
       reads_index=True, isolated=True, families=("F7",), timeout=120, collect=collect_espeak)
def espeak(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """No finding without phonemizer. Otherwise asks phonemizer's own espeak backend:
    `EspeakBackend.is_available()` (the library, found through PHONEMIZER_ESPEAK_LIBRARY or the
    loader's search), then phonemizes a word with `en-us` (the data: `phontab`). Not available
    fails with "espeak not installed on your system"; the fix installs espeak-ng, or, when
    espeakng-loader is installed (kokoro), exports PHONEMIZER_ESPEAK_LIBRARY and
    ESPEAK_DATA_PATH to its bundled copy. Two distributions installing `phonemizer` are
    packages.shared-names' finding."""
    if facts.get("phonemizer") is None and facts.get("phonemizer_fork") is None:
        return None
    if facts.get("import_error"):
        return fail(f"phonemizer does not import: {facts['import_error']}"[:300], Fix(
            "Reinstall phonemizer with its requirements.",
            commands=(dists.pip_install("--force-reinstall", "phonemizer-fork"
                                        if facts.get("phonemizer_fork") else "phonemizer"),)))
    loader = facts.get("espeakng_loader")
    details: dict[str, Any] = {
        "PHONEMIZER_ESPEAK_LIBRARY": facts.get("PHONEMIZER_ESPEAK_LIBRARY"),
        "ESPEAK_DATA_PATH": facts.get("ESPEAK_DATA_PATH"), "espeakng_loader": loader}
    commands: list[Any] = []
    if loader:
        commands = [steps(export("PHONEMIZER_ESPEAK_LIBRARY", loader["library"]),
                          export("ESPEAK_DATA_PATH", loader["data"]))]
    commands.append(system("apt-get", "install", "-y", "espeak-ng"))
    fix = Fix("phonemizer needs the espeak-ng library and its data: install espeak-ng in the "
              "image" + (", or point phonemizer at the copy espeakng-loader bundles" if loader
                         else "") + ".", commands=tuple(commands))
    if "available_error" in facts:
        details["error"] = facts["available_error"]
    if not facts.get("available"):
        verdict = _set_up_by_the_deployment(facts, fix, details)
        if verdict is not None:
            return verdict
        return fail("phonemizer's espeak backend finds no espeak-ng library: \"espeak not "
                    "installed on your system\"", fix, **details)
    if "espeak" in facts:
        details["espeak"] = facts["espeak"]
    if "sample" in facts:
        details["sample"] = facts["sample"]
    if facts.get("phonemize_error"):
        return fail(f"espeak-ng loads but cannot phonemize (its data: "
                    f"{facts['phonemize_error']})"[:400], fix, **details)
    out, version = facts.get("sample") or [], facts.get("espeak")
    if not out or not str(out[0]).strip():
        return fail("espeak-ng loads but phonemizes 'hello' to nothing", fix, **details)
    return ok(f"espeak-ng {version} phonemizes 'hello' as {out[0]!r}", **details)


def _set_up_by_the_deployment(facts: dict[str, Any], fix: Fix,
                              details: dict[str, Any]) -> Optional[Result]:
    """phonemizer alone finds no espeak-ng, but the deployment's own code points it at
    espeakng-loader's copy when imported (misaki/espeak.py: kokoro): judged by doing the
    same. ok when such a call is in the code the deployment reaches and espeak-ng then
    phonemizes; a warn when no entry point is known (the call may never run)."""
    via = facts.get("via_loader") or {}
    sample = via.get("sample") or []
    setters = [u for u in facts.get("setters") or [] if u.get("reached") is not False]
    if not setters or not via.get("available") or not sample or not str(sample[0]).strip():
        if facts.get("setters") is not None:
            details["set_library_calls"] = facts.get("setters")
            details["via_loader"] = via
        return None
    where = f"{setters[0]['file']}:{setters[0]['line']} ({setters[0]['distribution']})"
    details.update(set_library_calls=setters, via_loader=via, espeak=via.get("espeak"),
                   sample=sample)
    summary = (f"phonemizer finds espeak-ng through espeakng-loader: {where} sets "
               f"EspeakWrapper's library to the bundled copy, and espeak-ng "
               f"{via.get('espeak')} then phonemizes 'hello' as {sample[0]!r}")
    if any(u.get("reached") for u in setters):
        return ok(summary, **details)
    return warn(summary + "; no entry point is known, so nothing shows that this code runs "
                "before phonemizer is used", fix, **details)


# --- F8: the spaCy model misaki installs at first use -------------------------------------------

def collect_spacy_model(ctx: Context) -> dict[str, Any]:
    """misaki's and spaCy's versions, whether `en_core_web_sm` is importable (found, not
    imported) and its version, and the offline switches."""
    model = "en_core_web_sm"
    return {"misaki": dists.version("misaki"), "spacy": dists.version("spacy"),
            "model": model, "model_found": dists.has_module(model),
            "model_version": dists.version(model.replace("_", "-")),
            "offline_env": _offline_env()}


@probe("frontend.spacy-model", title="The spaCy model misaki loads is installed",
       families=("F8",), collect=collect_spacy_model)
def spacy_model(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """No finding without misaki. misaki's English G2P loads `en_core_web_sm` and, when it is
    not installed, runs `spacy.cli.download` (pip) at first use: that fails offline, without
    pip, or on a read-only image. Checks the model package is installed (found without importing
    spaCy); missing warns (fails offline), with the command that installs it at build time."""
    if facts.get("misaki") is None:
        return None
    model = str(facts["model"])
    if facts.get("model_found"):
        return ok(f"{model} {facts.get('model_version') or ''} is installed".replace(
            "  ", " "), model=model)
    spacy_version = facts.get("spacy")
    # spaCy's models are not on PyPI: `spacy download` installs the release of the model that
    # matches the installed spaCy, from spaCy's own model releases
    commands = [] if spacy_version else [dists.pip_install("spacy")]
    commands.append(dists.command("-m", "spacy", "download", model))
    fix = Fix("Install the spaCy model in the image at build time (misaki otherwise "
              "pip-installs it at first use, which needs network and a writable "
              "environment).", commands=steps(*commands))
    summary = (f"{model} is not installed: misaki downloads it at first use (pip, network)"
               + ("" if spacy_version else "; spaCy itself is not installed either"))
    return (fail if _offline(ctx, facts) else warn)(summary, fix, model=model,
                                                    spacy=spacy_version)


# --- pyopenjtalk's dictionary ------------------------------------------------------------------

def collect_openjtalk_dict(ctx: Context) -> dict[str, Any]:
    """Which pyopenjtalk distribution is installed, the dictionary folder it reads
    (OPEN_JTALK_DICT_DIR, else the one in its package folder, found without importing it),
    whether that folder holds `sys.dic`, and the offline switches."""
    name = next((n for n in ("pyopenjtalk", "pyopenjtalk-plus", "pyopenjtalk-prebuilt")
                 if dists.version(n) is not None), None)
    facts: dict[str, Any] = {"distribution": name, "offline_env": _offline_env()}
    if name is None:
        return facts
    where = _module_dir("pyopenjtalk")
    env = os.environ.get("OPEN_JTALK_DICT_DIR")
    folder = Path(env) if env else (where / OPENJTALK_DIC if where else None)
    facts.update(folder=str(folder) if folder else None, OPEN_JTALK_DICT_DIR=env,
                 sys_dic=folder is not None and (folder / "sys.dic").is_file())
    return facts


@probe("frontend.openjtalk-dict", title="pyopenjtalk's dictionary is in the image",
       families=("F8",), collect=collect_openjtalk_dict)
def openjtalk_dict(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """No finding without pyopenjtalk. pyopenjtalk reads its dictionary from
    OPEN_JTALK_DICT_DIR, else `open_jtalk_dic_utf_8-1.11` in its package folder, and downloads
    it from GitHub at first use when it is not there. Checks that folder holds `sys.dic`
    (without importing pyopenjtalk); missing warns (fails offline), with the command that runs
    pyopenjtalk's own download at image build time."""
    name = facts.get("distribution")
    if name is None:
        return None
    folder = facts.get("folder")
    details = {"distribution": name, "folder": folder,
               "OPEN_JTALK_DICT_DIR": facts.get("OPEN_JTALK_DICT_DIR")}
    if facts.get("sys_dic"):
        return ok(f"{name}: dictionary at {folder}", **details)
    fix = Fix("Fetch the dictionary into the image at build time (pyopenjtalk downloads it "
              "from GitHub at first use otherwise, which fails offline), or point "
              "OPEN_JTALK_DICT_DIR at a copy.",
              commands=(dists.command("-c", "import pyopenjtalk; pyopenjtalk.g2p('a')"),))
    summary = (f"{name}: no dictionary at {folder} (no sys.dic): the first g2p() downloads "
               f"{OPENJTALK_DIC} from GitHub")
    return (fail if _offline(ctx, facts) else warn)(summary, fix, **details)
