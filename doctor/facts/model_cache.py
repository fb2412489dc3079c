"""Where ModelScope keeps downloaded models (its cache layouts, old and new)."""

from __future__ import annotations

import os
from pathlib import Path


def modelscope_roots() -> list[Path]:
    """Folders under which ModelScope keeps models: $MODELSCOPE_CACHE (old releases: the hub
    folder itself; new: its parent) and ~/.cache/modelscope/hub, each with or without the
    newer `models/` level."""
    bases = []
    env = os.environ.get("MODELSCOPE_CACHE")
    if env:
        bases += [Path(env).expanduser(), Path(env).expanduser() / "hub"]
    bases.append(Path.home() / ".cache" / "modelscope" / "hub")
    out: list[Path] = []
    for b in bases:
        for p in (b / "models", b):
            if p not in out:
                out.append(p)
    return out


def modelscope_model_dirs(repo: str) -> list[Path]:
    """Where a ModelScope model may sit in the cache (dots in names become `___` in new
    releases)."""
    owner, _, name = repo.partition("/")
    names = [name] + ([name.replace(".", "___")] if "." in name else [])
    return [root / owner / n for root in modelscope_roots() for n in names]
