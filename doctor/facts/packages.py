"""An installed package read from its metadata and files, without importing it: version,
compiled module, whether it is PyPI's placeholder (ttsfrd 0.1.0, kantts 0.1.0)."""

from __future__ import annotations

import os
from typing import Any, Optional

from tts_doctor import dists

PLACEHOLDER_SUMMARY = "A minimal example Python package"


def _record_files(dist: Any) -> list[str]:
    try:
        return [str(f) for f in (dist.files or [])]
    except Exception:
        return []


def _spec_origin(module: str) -> Optional[str]:
    spec = dists.find_spec(module)
    return spec.origin if spec is not None and spec.origin not in (None, "namespace") else None


def inspect_package(name: str) -> dict[str, Any]:
    """The installed distribution `name` and its module: version, summary, compiled module,
    and whether it is PyPI's placeholder (its summary, no compiled module, one `__init__.py`).
    """
    from importlib.machinery import EXTENSION_SUFFIXES

    dist = dists.distribution(name)
    origin = _spec_origin(name)
    info: dict[str, Any] = {"installed": dist is not None, "module": origin}
    if dist is None:
        info["real"] = info["placeholder"] = False
        return info
    files = _record_files(dist)
    compiled = None
    for f in files:
        base = os.path.basename(f)
        if base.startswith(name) and any(base.endswith(s) for s in EXTENSION_SUFFIXES):
            compiled = str(dist.locate_file(f))
            break
    if compiled is None and origin and any(origin.endswith(s) for s in EXTENSION_SUFFIXES):
        compiled = origin
    py_files = [f for f in files if f.endswith(".py") and f.split("/")[0] == name]
    summary = dist.metadata.get("Summary") or ""
    placeholder = summary.strip() == PLACEHOLDER_SUMMARY or (
        compiled is None and len(py_files) <= 1 and name == "ttsfrd")
    if name == "kantts":
        placeholder = summary.strip() == PLACEHOLDER_SUMMARY or len(py_files) <= 1
    info.update(version=dist.version, package_summary=summary, compiled=compiled,
                requires_python=dist.metadata.get("Requires-Python"),
                placeholder=placeholder,
                real=not placeholder and (compiled is not None or name == "kantts"),
                installer_url=_direct_url(dist))
    return info


def _direct_url(dist: Any) -> Optional[str]:
    import json

    try:
        text = dist.read_text("direct_url.json")
        return json.loads(text).get("url") if text else None
    except Exception:
        return None
