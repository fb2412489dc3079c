"""Recipes: one TOML file per model, saying how to load it and what it needs.

A recipe is found by name among the recipes shipped with the doctor (recipes/*.toml), those
registered by other packages through the `tts_doctor.recipes` entry point group, or by path.
It is validated against the schema below; a malformed recipe is a `RecipeError` naming the
file, the key and what was expected.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional, Union

from tts_doctor.errors import InputError, UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

ENTRY_POINT_GROUP = "tts_doctor.recipes"
MAX_RECIPE_BYTES = 1024 * 1024  # the largest shipped recipe is ~3 KiB
ENGINES = ("reference", "piper", "modelscope", "indextts2", "callable")
NEEDS = ("required", "optional", "absent", "shim")
COMPONENTS = (
    "torch", "torchaudio", "cuda", "scipy", "numba", "resampy", "librosa", "onnxruntime",
    "ttsfrd", "kantts", "pynini", "wetextprocessing", "modelscope", "soundfile", "ffmpeg",
    "sox", "cuda-toolchain", "transformers",
)


class RecipeError(UserError, ValueError):
    """A recipe that cannot be found or does not follow the schema."""

    def __init__(self, source: str, key: Optional[str], message: str):
        where = f"{source}: " + (f"key '{key}': " if key else "")
        super().__init__(where + message)
        self.source = source
        self.key = key


def _type_name(t: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "a table", list: "a list"}
    if isinstance(t, tuple):
        return " or ".join(names.get(x, x.__name__) for x in t)
    return names.get(t, t.__name__)


Check = Callable[[Any], Optional[str]]


def _positive(v: Any) -> Optional[str]:
    return None if v > 0 else "a positive number"


def _specifier(v: Any) -> Optional[str]:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        SpecifierSet(v)
    except InvalidSpecifier:
        return "a version specifier such as '>=1.10,<1.13'"
    return None


def _need(v: Any) -> Optional[str]:
    if isinstance(v, bool):
        return None
    if v in NEEDS:
        return None
    if isinstance(v, str) and _specifier(v) is None:
        return None
    return f"one of {', '.join(NEEDS)}, true/false, or a version specifier"


# key -> (type, required, extra check). Nested tables are described by their own dicts.
_SCHEMA: dict[str, Any] = {
    "name": (str, True, None),
    "description": (str, False, None),
    "engine": (str, True, lambda v: None if v in ENGINES else f"one of {', '.join(ENGINES)}"),
    "model": {"*": ((str, int, float, bool, list, dict), False, None)},
    "audio": {
        "sample_rate": (int, True, _positive),
        "min_rms": ((int, float), False, _positive),
        "max_clip_ratio": ((int, float), False, _positive),
        "seconds_per_char": ((int, float), False, _positive),
    },
    "smoke": {
        "text": (str, True, None),
        "language": (str, False, None),
        "max_chars": (int, False, _positive),
        "precision": (str, False,
                      lambda v: None if v in ("fp32", "fp16", "bf16", "auto")
                      else "one of fp32, fp16, bf16, auto"),
    },
    "requires": {
        "python": (str, False, _specifier),
        "gpu": ((bool, str), False,
                lambda v: None if v in (True, False, "required", "optional")
                else "true, false, 'required' or 'optional'"),
        "vram_gib": ((int, float), False, _positive),
        "ram_gib": ((int, float), False, _positive),
        "packages": {"*": (str, False, _specifier)},
        **{c: ((str, bool), False, _need) for c in COMPONENTS},
    },
    "cache": {
        "hub": (str, False, lambda v: None if v in ("modelscope", "huggingface", "local")
                else "one of modelscope, huggingface, local"),
        "repo": (str, False, None),
        "files": (list, False, None),
        "min_free_gib": ((int, float), False, _positive),
    },
    "references": (list, False, None),
    # the modules the deployment imports first: the usage scan judges what they reach
    "entry": (list, False, lambda v: None if v and all(
        isinstance(m, str) and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", m) for m in v)
        else "a non-empty list of dotted module names"),
}


def _validate(data: dict[str, Any], schema: dict[str, Any], source: str, prefix: str) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        rule = schema.get(key, schema.get("*"))
        if rule is None:
            known = ", ".join(k for k in schema if k != "*")
            raise RecipeError(source, path, f"unknown key (expected one of: {known})")
        if isinstance(rule, dict):
            if not isinstance(value, dict):
                raise RecipeError(source, path, "expected a table")
            _validate(value, rule, source, path + ".")
            continue
        types, _, check = rule
        ok_type = isinstance(value, types) and not (
            isinstance(value, bool) and bool not in (types if isinstance(types, tuple)
                                                     else (types,)))
        if not ok_type:
            raise RecipeError(source, path, f"expected {_type_name(types)}, "
                              f"got {type(value).__name__} {value!r}"[:200])
        if check is not None:
            problem = check(value)
            if problem:
                raise RecipeError(source, path, f"expected {problem}, got {value!r}"[:200])
    for key, rule in schema.items():
        if key == "*" or isinstance(rule, dict):
            continue
        if rule[1] and key not in data:
            raise RecipeError(source, f"{prefix}{key}", "missing (it is required)")


def validate(data: dict[str, Any], source: str = "<recipe>") -> dict[str, Any]:
    """Check a recipe against the schema; return it with `source` recorded."""
    if not isinstance(data, dict):
        raise RecipeError(source, None, "expected a TOML table at the top level")
    _validate(data, _SCHEMA, source, "")
    for table in ("audio", "smoke"):
        if table not in data:
            raise RecipeError(source, table, "missing (it is required)")
    return {**data, "source": source}


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(source, None, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise RecipeError(source, None, "not valid TOML: nested too deeply") from None
    return validate(data, source)


def builtin_names() -> list[str]:
    files = resources.files("tts_doctor.recipes")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def _entry_points() -> dict[str, Any]:
    try:
        eps = md.entry_points(group=ENTRY_POINT_GROUP)  # type: ignore[call-arg]
    except TypeError:  # Python 3.9
        eps = md.entry_points().get(ENTRY_POINT_GROUP, [])  # type: ignore[attr-defined]
    return {ep.name: ep for ep in eps}


def available() -> dict[str, str]:
    """Every recipe name that can be loaded, mapped to where it comes from."""
    out = {name: "built-in" for name in builtin_names()}
    for name, ep in _entry_points().items():
        out.setdefault(name, f"entry point {ep.value}")
    return out


def _from_entry_point(name: str, ep: Any) -> dict[str, Any]:
    source = f"entry point {ENTRY_POINT_GROUP}:{name} ({ep.value})"
    try:
        obj = ep.load()
    except Exception as exc:
        raise RecipeError(source, None, f"could not load: {type(exc).__name__}: {exc}") from None
    if callable(obj):
        obj = obj()
    if isinstance(obj, (str, os.PathLike)):
        return load_path(obj)
    if isinstance(obj, dict):
        return validate(dict(obj), source)
    raise RecipeError(source, None, "expected a path to a TOML file, a dict, or a callable "
                      "returning one")


def load_path(path: Union[str, os.PathLike[str]]) -> dict[str, Any]:
    """A recipe file: a regular UTF-8 file of at most MAX_RECIPE_BYTES (never a FIFO's
    endless read or a 50 MB blob read whole)."""
    from tts_doctor.inputs import read_text

    p = Path(path)
    try:
        text = read_text(p, limit=MAX_RECIPE_BYTES)
    except InputError as exc:
        raise RecipeError(str(p), None, exc.reason or str(exc)) from None
    return _parse(text, str(p))


def load(name_or_path: str) -> dict[str, Any]:
    """A recipe by built-in name, entry-point name, or path to a TOML file."""
    looks_like_path = (os.sep in name_or_path or name_or_path.endswith(".toml")
                       or os.path.exists(name_or_path))
    if looks_like_path:
        return load_path(name_or_path)
    if name_or_path in builtin_names():
        res = resources.files("tts_doctor.recipes").joinpath(f"{name_or_path}.toml")
        return _parse(res.read_text(encoding="utf-8"), f"recipes/{name_or_path}.toml")
    eps = _entry_points()
    if name_or_path in eps:
        return _from_entry_point(name_or_path, eps[name_or_path])
    names = ", ".join(available()) or "none"
    raise RecipeError(name_or_path, None, f"no such recipe (available: {names}; or give a "
                      "path to a .toml file)")
