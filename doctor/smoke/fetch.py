"""Model files that should be on disk, and the exact command that downloads them.

A model missing from the local cache (or an interrupted download) is the environment's
defect, not bad input: the engines report it as a failed `smoke.load` that names each missing
file and gives the one command to run where the network is allowed. The commands are built
as argument vectors, with `json.dumps` for the Python string literals (a JSON string is a
valid Python one), shown with `shlex.quote` for each word, so no value (a model id, a folder)
can inject anything into either. Runs in the smoke child: standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from tts_doctor.finding import Command, manual


def python_command(code: str) -> Command:
    """`python -c CODE`: an argument vector, shown quoted for a POSIX shell. A manual
    command: it runs where the network is allowed, which may be another machine."""
    return manual("python", "-c", code)


def literal(value: Any) -> str:
    """A Python string literal for `value` (double-quoted, so it reads well in the shell)."""
    return json.dumps(str(value), ensure_ascii=False)


def download_command(hub: str, repo: str, local_dir: Optional[str] = None,
                     cache_dir: Optional[str] = None) -> Command:
    """The command that fetches `repo` from `hub` ('modelscope' or 'huggingface')."""
    kwargs = ""
    if local_dir:
        kwargs += f", local_dir={literal(local_dir)}"
    if cache_dir:
        kwargs += f", cache_dir={literal(cache_dir)}"
    module = "huggingface_hub" if hub == "huggingface" else "modelscope"
    return python_command(f"from {module} import snapshot_download; "
                          f"snapshot_download({literal(repo)}{kwargs})")


def missing(folder: Path, required: Any) -> list[str]:
    """The entries of `required` not under `folder`; an entry is a path or a tuple of
    alternatives (any one present satisfies it), named 'a or b'."""
    out = []
    for alternatives in required:
        if isinstance(alternatives, str):
            alternatives = (alternatives,)
        if not any((folder / a).exists() for a in alternatives):
            out.append(" or ".join(alternatives))
    return out


def cache_spec(recipe: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The recipe's [cache] table ({} without one)."""
    return dict((recipe or {}).get("cache") or {})
