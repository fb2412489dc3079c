"""Installed distributions, read from metadata without importing them.

Probes that only need a version use these helpers (`importlib.metadata`, no import of the
package itself), and build their fix commands with the exact interpreter they diagnose.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
from typing import Any, Optional

from tts_doctor.finding import Command

try:  # CPython 3.8+; on 3.7 the backport if the environment has it, else a small reader
    import importlib.metadata as md
except ImportError:  # pragma: no cover - exercised by the Python 3.7 target tests
    try:
        import importlib_metadata as md  # type: ignore[no-redef]
    except ImportError:
        md = None  # type: ignore[assignment]

# This module runs in the doctor's process and inside the diagnosed interpreter (isolated
# probes): standard library only there, so `packaging` is imported lazily, where available.


def canonical(name: str) -> str:
    """PEP 503 normalised name: `Torch_Audio` -> `torch-audio`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _bound() -> Any:
    """The interpreter the doctor's process judges (tts_doctor.target), if one is bound."""
    target = sys.modules.get("tts_doctor.target")
    if target is not None and target._CURRENT:
        return target._CURRENT[-1]
    return None


def search_path() -> list[str]:
    """The diagnosed interpreter's sys.path, without the current folder that `python -m` and
    `-c` put first.

    The environment is what is installed, not whatever folder the doctor was started from;
    the worker drops that entry too, so both halves of a run see the same distributions.
    In the doctor's process judging another interpreter, that interpreter's path.
    """
    bound = _bound()
    if bound is not None:
        return list(bound.sys_path)
    return [p for p in sys.path if p not in ("", ".")
            and not (p == sys.path[0] and os.path.abspath(p) == os.getcwd())]


class _CachedDistribution(md.PathDistribution if md else object):  # type: ignore[misc]
    """A distribution whose METADATA is parsed once.

    importlib.metadata parses the file again for every `.metadata`, `.version`, `.name` and
    `.requires`; over a whole environment and several probes that was 586 parses of 54
    files, most of the in-process probes' time.
    """

    @property
    def metadata(self) -> Any:  # type: ignore[override]
        cached = self.__dict__.get("_meta")
        if cached is None:
            cached = self.__dict__["_meta"] = super().metadata
        return cached

    @property
    def requires(self) -> Optional[list[str]]:  # type: ignore[override]
        if "_requires" not in self.__dict__:
            self.__dict__["_requires"] = super().requires
        return self.__dict__["_requires"]

    @property
    def files(self) -> Optional[list[Any]]:  # type: ignore[override]
        """RECORD, parsed once (a new list each call: callers may change theirs). Four
        probes read every distribution's RECORD; in a big environment (50,000 files) each
        parse of them all cost 0.3 s of CPU, and building the paths as much again."""
        if "_files" not in self.__dict__:
            files = super().files
            self.__dict__["_files"] = None if files is None else tuple(files)
        files = self.__dict__["_files"]
        return None if files is None else list(files)


def _cached(dist: Any) -> Any:
    path = getattr(dist, "_path", None)
    if isinstance(dist, md.PathDistribution) and path is not None:
        return _CachedDistribution(path)
    return dist


class _MiniDistribution:
    """A *.dist-info folder read with the standard library alone (Python 3.7 without the
    importlib_metadata backport): name, version, METADATA fields, RECORD and other files."""

    def __init__(self, path: str):
        self._path = path

    def read_text(self, filename: str) -> Optional[str]:
        try:
            with open(os.path.join(self._path, filename), encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None

    @property
    def metadata(self) -> Any:
        if "_meta" not in self.__dict__:
            import email

            text = self.read_text("METADATA") or self.read_text("PKG-INFO") or ""
            self.__dict__["_meta"] = email.message_from_string(text)
        return self.__dict__["_meta"]

    @property
    def version(self) -> str:
        return self.metadata.get("Version") or ""

    @property
    def requires(self) -> Optional[list[str]]:
        return self.metadata.get_all("Requires-Dist")

    @property
    def files(self) -> Optional[list[Any]]:
        text = self.read_text("RECORD")
        if text is None:
            return None
        from pathlib import PurePosixPath

        return [PurePosixPath(line.split(",")[0]) for line in text.splitlines() if line]

    def locate_file(self, path: Any) -> Any:
        from pathlib import Path

        return Path(self._path).parent / str(path)


def _mini_distributions(path: list[str]) -> list[Any]:
    out = []
    for entry in path:
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        out += [_MiniDistribution(os.path.join(entry, n)) for n in names
                if n.endswith((".dist-info", ".egg-info"))]
    return out


@functools.lru_cache(maxsize=None)
def _distributions(path: tuple[str, ...]) -> tuple[Any, ...]:
    if md is None:
        return tuple(_mini_distributions(list(path)))
    return tuple(_cached(d) for d in md.distributions(path=list(path)))


def distributions() -> list[Any]:
    """Every distribution on the search path, duplicates included, in path order."""
    return list(_distributions(tuple(search_path())))


def _index() -> dict[str, Any]:
    """The first distribution of each name on the search path, as the import system sees it."""
    return _index_of(tuple(search_path()))


@functools.lru_cache(maxsize=None)
def _index_of(path: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dist in _distributions(path):
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        out.setdefault(canonical(name), dist)
    return out


def refresh() -> None:
    """Forget cached metadata (after an install in the same process)."""
    _index_of.cache_clear()
    _distributions.cache_clear()


def distribution(name: str) -> Optional[Any]:
    return _index().get(canonical(name))


def version(name: str) -> Optional[str]:
    dist = distribution(name)
    return dist.version if dist is not None else None


def parse(v: Optional[str]) -> Optional[Any]:
    """A `packaging` Version for comparisons in the doctor's process; None if unparseable.

    Inside a diagnosed interpreter without `packaging`, versions compare by their release
    numbers (pre-releases are not told apart there; verdicts that need it run at home)."""
    if v is None:
        return None
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        rel = release(v)
        return _Release(rel) if rel else None
    try:
        return Version(v)
    except InvalidVersion:
        return None


@functools.total_ordering
class _Release:
    """Release numbers that compare like versions (the fallback of `parse`)."""

    def __init__(self, numbers: tuple[int, ...]):
        self.release = numbers
        self.local = None

    def _key(self, other: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        theirs = other.release if hasattr(other, "release") else release(str(other)) or ()
        width = max(len(self.release), len(theirs))
        pad = lambda t: tuple(t) + (0,) * (width - len(t))  # noqa: E731
        return pad(self.release), pad(theirs)

    def __eq__(self, other: object) -> bool:
        a, b = self._key(other)
        return a == b

    def __lt__(self, other: object) -> bool:
        a, b = self._key(other)
        return a < b

    def __hash__(self) -> int:
        return hash(self.release)

    def __str__(self) -> str:
        return ".".join(map(str, self.release))


# PEP 440's release segment (after an optional epoch), which is all the probes compare
_RELEASE = re.compile(r"^\s*v?(?:\d+!)?(\d+(?:\.\d+)*)")


def release(v: Optional[str]) -> Optional[tuple[int, ...]]:
    """The release numbers of a version string, local tag dropped: '2.13.0+cpu' -> (2, 13, 0)."""
    m = _RELEASE.match(v) if v else None
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


_CLAUSE = re.compile(r"^\s*(~=|===|==|!=|<=|>=|<|>)\s*([0-9][0-9a-zA-Z.*+!-]*)\s*$")


def spec_contains(spec: str, version: str) -> Optional[bool]:
    """Whether `version` is inside the PEP 440 range `spec` (pre-releases allowed); None when
    the range does not parse.

    `packaging` decides in the doctor's process. Inside a diagnosed interpreter without it,
    release numbers decide: enough for the Python ranges recipes state (">=3.8,<3.9")."""
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
    except ImportError:
        return _release_spec_contains(spec, version)
    try:
        return SpecifierSet(spec).contains(version, prereleases=True)
    except InvalidSpecifier:
        return None


def _release_spec_contains(spec: str, version: str) -> Optional[bool]:
    have = release(version)
    if have is None:
        return None
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = _CLAUSE.match(clause)
        if not m:
            return None
        op, text = m.groups()
        if text.endswith(".*") and op in ("==", "!="):
            prefix = release(text[:-2]) or ()
            inside = have[:len(prefix)] == prefix
            if inside != (op == "=="):
                return False
            continue
        want = release(text)
        if want is None:
            return None
        width = max(len(have), len(want))
        a = have + (0,) * (width - len(have))
        b = want + (0,) * (width - len(want))
        if op == "~=":
            ok = a >= b and have[:len(want) - 1] == want[:len(want) - 1]
        else:
            ok = {"==": a == b, "===": a == b, "!=": a != b, "<=": a <= b, ">=": a >= b,
                  "<": a < b, ">": a > b}[op]
        if not ok:
            return False
    return True


def local_tag(v: Optional[str]) -> Optional[str]:
    """The local version label: '2.13.0+cu128' -> 'cu128' (normalised to lower case)."""
    if not v or "+" not in v:
        return None
    label = v.split("+", 1)[1].strip().lower().replace("-", ".").replace("_", ".")
    return label or None


def all_distributions() -> dict[str, Any]:
    return dict(_index())


def find_spec(name: str) -> Optional[Any]:
    """The import spec of a module on the diagnosed path, without importing anything (a dotted
    name is looked up package by package through the parents' search locations)."""
    from importlib.machinery import PathFinder

    try:
        if _bound() is None:
            import importlib.util

            return importlib.util.find_spec(name)
        spec, path = None, search_path()
        for part in name.split("."):
            spec = PathFinder.find_spec(part, path)
            if spec is None:
                return None
            path = list(spec.submodule_search_locations or [])
        return spec
    except (ImportError, ValueError):
        return None


def has_module(name: str) -> bool:
    """Whether a module can be found on the diagnosed path, without importing it."""
    return find_spec(name) is not None


def executable() -> str:
    """The interpreter being diagnosed (a path)."""
    bound = _bound()
    return bound.executable if bound is not None else sys.executable


def python() -> str:
    """The interpreter being diagnosed, quoted for a shell line (text only: build commands
    with `command`, `pip_install`, `pip_uninstall`)."""
    return shlex.quote(executable())


def command(*args: str, note: str = "") -> Command:
    """`<the diagnosed interpreter> ARGS` as an argument vector (run without a shell)."""
    return Command((executable(), *args), "run", note)


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
