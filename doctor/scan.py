"""Which installed distributions use a name: `scipy.signal.hann`, `torchaudio.set_audio_backend`.

A removed name only breaks the packages that use it, so a finding must say which. This scans
the Python files of every installed distribution, cheaply:

1. a byte pre-filter: a file is parsed only if it contains both the module's last component and
   the attribute (`signal` and `hann`);
2. an AST pass that resolves imports and aliases (`import scipy.signal as sps`,
   `from scipy import signal`, `from scipy.signal import hann as h`) and reports real uses
   with their line numbers, not strings or comments;
3. a cache per distribution, keyed by name, version, the RECORD file's mtime and size, and the
   patterns asked for, in $TTS_DOCTOR_CACHE (default ~/.cache/tts-doctor). A second scan of an
   unchanged environment reads one small JSON file per distribution.

The cache lives outside the diagnosed environment: scanning changes nothing in it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from tts_doctor import dists

CACHE_VERSION = 2


@dataclass(frozen=True)
class Pattern:
    """A dotted name to look for: module `scipy.signal`, attribute `hann`."""

    module: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class Usage:
    distribution: str
    version: str
    file: str
    line: int
    key: str
    guarded: bool = False  # in a try/except ImportError, under hasattr() or a version test

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, "version": self.version, "file": self.file,
                "line": self.line, "name": self.key, "guarded": self.guarded}


def cache_dir() -> Optional[Path]:
    base = os.environ.get("TTS_DOCTOR_CACHE")
    if base:
        root = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = Path(xdg) / "tts-doctor"
    try:
        (root / "scan").mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root / "scan" if os.access(root / "scan", os.W_OK) else None


class AliasVisitor(ast.NodeVisitor):
    """Tracks what each local name stands for (`sps` -> `scipy.signal`) so that `dotted()` can
    resolve an expression such as `sps.windows.hann` to its full dotted path."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> dotted path

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.aliases[a.asname] = a.name
            else:
                top = a.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for a in node.names:
            self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def dotted(self, node: ast.AST) -> Optional[str]:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            parts.append(self.aliases[node.id])
            return ".".join(reversed(parts))
        return None


class _Visitor(AliasVisitor):
    def __init__(self, patterns: list[Pattern]):
        super().__init__()
        self.wanted = {p.key: p for p in patterns}
        self.hits: list[tuple[int, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name in self.wanted:  # `import torchaudio.sox_effects`
                self.hits.append((node.lineno, a.name))
        super().visit_Import(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        if node.module in self.wanted:  # `from torchaudio.sox_effects import apply_effects`
            self.hits.append((node.lineno, node.module))
        for a in node.names:
            if f"{node.module}.{a.name}" in self.wanted:
                self.hits.append((node.lineno, f"{node.module}.{a.name}"))
        super().visit_ImportFrom(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self.dotted(node)
        if dotted in self.wanted:
            self.hits.append((node.lineno, dotted))
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        # `from scipy.signal import hann` then `hann(...)`: the import line is already a hit
        return


@functools.lru_cache(maxsize=64)
def _prefilter_for(patterns: tuple[Pattern, ...]) -> Callable[[bytes], bool]:
    """One cheap byte test for a whole pattern set: a top package, a module's last part, and
    any of the names in a use-shaped position (`x.name`, or `import ... name`)."""
    tops = {p.module.split(".")[0].encode() for p in patterns}
    lasts = {p.module.split(".")[-1].encode() for p in patterns}
    names = sorted({re.escape(p.name) for p in patterns}, key=len, reverse=True)
    uses = re.compile(r"(?:\.[ \t]*|import[ \t]*\(?[\w\s,\\]*?)\b(?:"
                      + "|".join(names) + r")\b")
    uses_b = re.compile(uses.pattern.encode())

    def test(source: bytes) -> bool:
        return (any(t in source for t in tops) and any(m in source for m in lasts)
                and uses_b.search(source) is not None)

    return test


def scan_source(source: bytes, patterns: list[Pattern]) -> list[tuple[int, str]]:
    """Uses of the patterns in one file: (line, dotted name). Unparseable files give none."""
    if not _prefilter_for(tuple(patterns))(source):
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    visitor = _Visitor(patterns)
    visitor.visit(tree)
    return sorted(set(visitor.hits))


def _files(dist: Any) -> list[str]:
    """The .py files a distribution installed, read from RECORD without pathlib's cost."""
    base = getattr(dist, "_path", None)
    record = base / "RECORD" if base is not None else None
    if record is None or not record.exists():
        out = []
        for f in dist.files or []:
            if str(f).endswith(".py"):
                try:
                    out.append(str(dist.locate_file(f)))
                except Exception:
                    continue
        return out
    root = os.path.dirname(str(base))
    out = []
    with open(record, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name = line.split(",", 1)[0]
            if name.endswith(".py"):
                out.append(os.path.normpath(os.path.join(root, name)))
    return out


def _dist_key(dist: Any, patterns: list[Pattern], extra: str = "") -> Optional[str]:
    record = None
    for name in ("RECORD", "SOURCES.txt", "installed-files.txt"):
        try:
            path = dist._path / name  # type: ignore[attr-defined]
        except AttributeError:
            return None
        if path.exists():
            record = path
            break
    if record is None:
        return None
    st = record.stat()
    blob = json.dumps([CACHE_VERSION, dist.metadata["Name"], dist.version, str(record),
                       st.st_mtime_ns, st.st_size, sys.version_info[:2],
                       sorted(p.key for p in patterns), extra])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def find_usages(patterns: list[Pattern], *, exclude: tuple[str, ...] = (),
                use_cache: bool = True,
                prefilter: Optional[re.Pattern[bytes]] = None) -> list[Usage]:
    """Every use of the patterns in the installed distributions (minus `exclude`), each
    marked guarded or not.

    `prefilter` is a stricter byte regex a file must also match before it is parsed, for
    names so common that the generic test lets too many files through (`np.float`: every
    file with `.float` in it would be parsed otherwise).
    """
    skip = {dists.canonical(n) for n in (*exclude, "tts-doctor")}
    cache = cache_dir() if use_cache else None
    out: list[Usage] = []
    for key, dist in sorted(dists.all_distributions().items()):
        if key in skip:
            continue
        name, version = dist.metadata["Name"], dist.version
        ckey = _dist_key(dist, patterns, prefilter.pattern.decode("latin-1")
                         if prefilter is not None else "") if cache else None
        cached = None
        if ckey and cache:
            try:
                cached = json.loads((cache / f"{ckey}.json").read_text())
            except (OSError, ValueError):
                cached = None
        if cached is None:
            cached = []
            for path in _files(dist):
                try:
                    with open(path, "rb") as fh:
                        source = fh.read()
                except OSError:
                    continue
                if prefilter is not None and not prefilter.search(source):
                    continue
                found = scan_source(source, patterns)
                guards = guarded_lines(source) if found else set()
                for line, dotted in found:
                    cached.append([path, line, dotted, line in guards])
            if ckey and cache:
                tmp = cache / f".{ckey}.{os.getpid()}.tmp"
                try:
                    tmp.write_text(json.dumps(cached))
                    os.replace(tmp, cache / f"{ckey}.json")
                except OSError:
                    pass
        out += [Usage(name, version, f, line, dotted, bool(g)) for f, line, dotted, g in cached]
    return out


# --- guarded uses --------------------------------------------------------------------------

GUARD_EXCEPTIONS = frozenset({"AttributeError", "ImportError", "ModuleNotFoundError",
                              "Exception", "BaseException"})


def _first_line(node: ast.stmt) -> int:
    """First line of a statement, its decorators included."""
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _lines(nodes: list[Any]) -> range:
    if not nodes:
        return range(0)
    end = max(getattr(n, "end_lineno", None) or n.lineno for n in nodes)
    return range(min(_first_line(n) for n in nodes), end + 1)


def _catches(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", ""))
               in GUARD_EXCEPTIONS for n in names)


def guarded_lines(source: bytes) -> set[int]:
    """Lines where a missing name cannot break anything: the body and handlers of a `try`
    that catches ImportError/AttributeError (or everything), and both branches of an `if`
    (or conditional expression) that tests `hasattr(...)` or a version. Uses there are
    deliberate fallbacks, not breakage."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            handlers = [h for h in node.handlers if _catches(h)]  # type: ignore[attr-defined]
            if handlers:
                out.update(_lines(node.body))  # type: ignore[attr-defined]
                for h in handlers:
                    out.update(_lines(h.body))
        elif isinstance(node, (ast.If, ast.IfExp)):
            test = ast.dump(node.test)
            if "hasattr" in test or "version" in test.lower():
                if isinstance(node, ast.If):
                    out.update(_lines(node.body))
                    out.update(_lines(node.orelse))
                else:
                    out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return out


_GUARDED: dict[str, set[int]] = {}


def guarded(path: str, line: int) -> bool:
    """Whether the use at `path:line` is guarded (see `guarded_lines`); files parsed once."""
    if path not in _GUARDED:
        try:
            with open(path, "rb") as fh:
                _GUARDED[path] = guarded_lines(fh.read())
        except OSError:
            _GUARDED[path] = set()
    return line in _GUARDED[path]
