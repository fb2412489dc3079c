"""Installed distributions, read from metadata without importing them.

Probes that only need a version use these helpers (`importlib.metadata`, no import of the
package itself), and build their fix commands with the exact interpreter they diagnose.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import importlib.util
import os
import re
import shlex
import sys
from functools import cache
from typing import Any, Optional

from packaging.version import InvalidVersion, Version
from tts_doctor.finding import Command


def canonical(name: str) -> str:
    """PEP 503 normalised name: `Torch_Audio` -> `torch-audio`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def search_path() -> list[str]:
    """sys.path without the current folder that `python -m` and `-c` put first.

    The environment is what is installed, not whatever folder the doctor was started from;
    the worker drops that entry too, so both halves of a run see the same distributions.
    """
    return [p for p in sys.path if p not in ("", ".")
            and not (p == sys.path[0] and os.path.abspath(p) == os.getcwd())]


class _CachedDistribution(md.PathDistribution):
    """A distribution whose METADATA is parsed once.

    importlib.metadata parses the file again for every `.metadata`, `.version`, `.name` and
    `.requires`; over a whole environment and several probes that was 586 parses of 54
    files, most of the in-process probes' time.
    """

    @functools.cached_property
    def metadata(self) -> Any:  # type: ignore[override]
        return super().metadata

    @functools.cached_property
    def requires(self) -> Optional[list[str]]:  # type: ignore[override]
        return super().requires


def _cached(dist: md.Distribution) -> md.Distribution:
    path = getattr(dist, "_path", None)
    if isinstance(dist, md.PathDistribution) and path is not None:
        return _CachedDistribution(path)
    return dist


@cache
def _distributions(path: tuple[str, ...]) -> tuple[md.Distribution, ...]:
    return tuple(_cached(d) for d in md.distributions(path=list(path)))


def distributions() -> list[md.Distribution]:
    """Every distribution on the search path, duplicates included, in path order."""
    return list(_distributions(tuple(search_path())))


@cache
def _index() -> dict[str, md.Distribution]:
    """The first distribution of each name on sys.path, as the import system sees it."""
    out: dict[str, md.Distribution] = {}
    for dist in distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        out.setdefault(canonical(name), dist)
    return out


def refresh() -> None:
    """Forget cached metadata (after an install in the same process)."""
    _index.cache_clear()
    _distributions.cache_clear()


def distribution(name: str) -> Optional[md.Distribution]:
    return _index().get(canonical(name))


def version(name: str) -> Optional[str]:
    dist = distribution(name)
    return dist.version if dist is not None else None


def parse(v: Optional[str]) -> Optional[Version]:
    if v is None:
        return None
    try:
        return Version(v)
    except InvalidVersion:
        return None


def release(v: Optional[str]) -> Optional[tuple[int, ...]]:
    """The release numbers of a version string, local tag dropped: '2.13.0+cpu' -> (2, 13, 0)."""
    parsed = parse(v)
    return parsed.release if parsed else None


def local_tag(v: Optional[str]) -> Optional[str]:
    parsed = parse(v)
    return parsed.local if parsed else None


def all_distributions() -> dict[str, md.Distribution]:
    return dict(_index())


def has_module(name: str) -> bool:
    """Whether a top-level module can be found, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def python() -> str:
    """The interpreter being diagnosed, quoted for a shell line (text only: build commands
    with `command`, `pip_install`, `pip_uninstall`)."""
    return shlex.quote(sys.executable)


def command(*args: str, note: str = "") -> Command:
    """`<the diagnosed interpreter> ARGS` as an argument vector (run without a shell)."""
    return Command((sys.executable, *args), "run", note)


def pip_install(*requirements: str, extra: str = "", note: str = "") -> Command:
    """`python -m pip install [EXTRA] REQUIREMENTS...` for the diagnosed interpreter.

    `extra` holds pip options written in code (`--upgrade`, `--index-url URL`): split like a
    shell would; every requirement stays one argument whatever it holds."""
    return command("-m", "pip", "install", *shlex.split(extra), *requirements, note=note)


def pip_uninstall(*names: str, note: str = "") -> Command:
    return command("-m", "pip", "uninstall", "-y", *names, note=note)


def summary(name: str) -> Optional[str]:
    dist = distribution(name)
    return dist.metadata.get("Summary") if dist is not None else None
