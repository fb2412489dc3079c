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

CACHE_VERSION = 8


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
    reached: Optional[bool] = None  # in the deployment's closure; None: no entry point known
    origin: str = "distribution"  # or "editable", "unowned", "project"

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, "version": self.version, "file": self.file,
                "line": self.line, "name": self.key, "guarded": self.guarded,
                "reached": self.reached, "origin": self.origin}


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

    def visit(self, node: ast.AST) -> None:
        """`ast.NodeVisitor`'s walk (the same order: aliases take effect where their import
        stands) without recursion and without a call per node."""
        stack: list[Any] = [node]
        pop, push = stack.pop, stack.append
        AST, Name, Attribute, Constant = ast.AST, ast.Name, ast.Attribute, ast.Constant
        Import, ImportFrom = ast.Import, ast.ImportFrom
        wanted, hits = self.wanted, self.hits
        while stack:
            item = pop()
            kind = type(item)
            if kind is Name or kind is Constant:
                continue
            if kind is Attribute:
                dotted = self.dotted(item)
                if dotted in wanted:
                    hits.append((item.lineno, dotted))
                    continue
            elif kind is Import:
                self.visit_Import(item)
                continue
            elif kind is ImportFrom:
                self.visit_ImportFrom(item)
                continue
            for name in _child_fields(kind):
                value = getattr(item, name, None)
                if type(value) is list:
                    for child in reversed(value):
                        if isinstance(child, AST):
                            push(child)
                elif isinstance(value, AST):
                    push(value)


@functools.lru_cache(maxsize=64)
def _prefilter_parts(patterns: tuple[Pattern, ...]
                     ) -> tuple[tuple[bytes, ...], tuple[bytes, ...], Callable[[bytes], bool]]:
    """The parts of `_prefilter_for`: the top packages, the modules' last parts, and the test
    of a use-shaped name (`x.name`, or `import ... name`)."""
    tops = tuple(sorted({p.module.split(".")[0].encode() for p in patterns}))
    lasts = tuple(sorted({p.module.split(".")[-1].encode() for p in patterns}))
    names = sorted({re.escape(p.name) for p in patterns}, key=len, reverse=True)
    alt = "|".join(names)
    # two regexes that each start with a literal ('.', 'import'): the regex engine then skips
    # to the literal's occurrences instead of trying an alternation at every position
    attr = re.compile(rf"\.[ \t]*(?:{alt})\b".encode()).search
    imported = re.compile(rf"import[ \t]*\(?[\w\s,\\]*?\b(?:{alt})\b".encode()).search

    def shaped(source: bytes) -> bool:
        return attr(source) is not None or imported(source) is not None

    return tops, lasts, shaped


@functools.lru_cache(maxsize=64)
def _prefilter_for(patterns: tuple[Pattern, ...]) -> Callable[[bytes], bool]:
    """One cheap byte test for a whole pattern set: a top package, a module's last part, and
    any of the names in a use-shaped position (`x.name`, or `import ... name`)."""
    tops, lasts, shaped = _prefilter_parts(patterns)

    def test(source: bytes) -> bool:
        return (any(t in source for t in tops) and any(m in source for m in lasts)
                and shaped(source))

    return test


def scan_source(source: bytes, patterns: list[Pattern]) -> list[tuple[int, str]]:
    """Uses of the patterns in one file: (line, dotted name). Unparseable files give none."""
    if not _prefilter_for(tuple(patterns))(source):
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    visitor = _Visitor(patterns)
    visitor.visit(tree)
    return sorted(set(visitor.hits))


# --- what every usage detector watches: one parse per file for all of them -----------------

@dataclass(frozen=True)
class Watch:
    """One detector's patterns, and the byte test a file must pass to be parsed for them."""

    group: str
    patterns: tuple[Pattern, ...]
    prefilter: Optional[tuple[bytes, ...]] = None  # stricter regexes, any must match (numpy)
    exclude: tuple[str, ...] = ()      # owners not scanned for it (the library itself)

    def lines(self, source: bytes) -> list[list[Any]]:
        """Approximate uses without parsing, for code outside the closure (listed, never
        judged): `module.name` spelled out on a line, or `from module import ... name`."""
        out = []
        for line_no, text in _matching_lines(_line_regex(self.patterns), source,
                                             _line_candidates(self.patterns)):
            for p in self.patterns:
                if p.name not in text:
                    continue
                spelled, imported = _pattern_regexes(p)
                if spelled.search(text) or imported.search(text):
                    out.append([line_no, p.key, False])
                    break
        return out

    def test(self) -> Callable[[bytes], bool]:
        tops, rest = self.parts()
        return lambda source: any(t in source for t in tops) and rest(source)

    def parts(self) -> tuple[tuple[bytes, ...], Callable[[bytes], bool]]:
        """`test()` as (top packages, rest): a file passes when it holds one of the tops and
        passes the rest. `FileScan` looks for the tops of every group at once, then runs
        the rest of the groups whose top it found."""
        tops, lasts, shaped = _prefilter_parts(self.patterns)
        if self.prefilter is None:
            return tops, lambda source: any(m in source for m in lasts) and shaped(source)
        strict = tuple(re.compile(x).search for x in self.prefilter)
        return tops, lambda source: any(r(source) is not None for r in strict)


WATCHED: dict[str, Watch] = {}


@functools.lru_cache(maxsize=64)
def _line_regex(patterns: tuple[Pattern, ...]) -> re.Pattern[bytes]:
    lasts = sorted({re.escape(p.module.split(".")[-1]) for p in patterns}, key=len, reverse=True)
    names = sorted({re.escape(p.name) for p in patterns}, key=len, reverse=True)
    return re.compile((rf"\b(?:{'|'.join(lasts)})[ \t]*\.[ \t]*(?:{'|'.join(names)})\b"
                       rf"|^[ \t]*from[ \t]+[\w.]+[ \t]+import\b[^\n]*\b(?:{'|'.join(names)})\b")
                      .encode(), re.M)


@functools.lru_cache(maxsize=None)
def _pattern_regexes(p: Pattern) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """For one pattern, compiled once when first needed (compiling those of every pattern
    costs more than the search): `last.name` spelled out, and `from module import ... name`."""
    last = re.escape(p.module.split(".")[-1])
    name = re.escape(p.name)
    return (re.compile(rf"\b{last}[ \t]*\.[ \t]*{name}\b"),
            re.compile(rf"from[ \t]+{re.escape(p.module)}[ \t]+import\b.*\b{name}\b"))


@functools.lru_cache(maxsize=64)
def _line_candidates(patterns: tuple[Pattern, ...]) -> tuple[re.Pattern[bytes], ...]:
    """Two regexes that each start with a literal ('.', 'import'), so that the regex engine
    skips to the literal's occurrences (`_line_regex` starts with `\b` or `^` and is tried at
    every position: most of the time of this search in big files). Every line `_line_regex`
    matches holds a match of one of them: its first alternative needs `.name`, its second
    `import ... name`, both within the line."""
    alt = "|".join(sorted({re.escape(p.name) for p in patterns}, key=len, reverse=True))
    return (re.compile(rf"\.[ \t]*(?:{alt})\b".encode()),
            re.compile(rf"import\b[^\n]*\b(?:{alt})\b".encode()))


def _matching_lines(regex: re.Pattern[bytes], source: bytes,
                    candidates: tuple[re.Pattern[bytes], ...] = ()) -> list[tuple[int, str]]:
    """(line number, text) of the lines where `regex` (multiline, never across lines)
    matches; with `candidates`, only the lines where one of them matches are tried."""
    if not candidates:
        starts = sorted({source.rfind(b"\n", 0, m.start()) + 1 for m in regex.finditer(source)})
    else:
        starts = sorted({source.rfind(b"\n", 0, m.start()) + 1
                         for c in candidates for m in c.finditer(source)})
    out = []
    counted, line_no = 0, 1  # lines are counted from the previous line on, not from the top
    for start in starts:
        line_no += source.count(b"\n", counted, start)
        counted = start
        end = source.find(b"\n", start)
        text = source[start:end if end >= 0 else None]
        if candidates and regex.search(text) is None:
            continue
        out.append((line_no, text.decode("utf-8", "replace")))
    return out


def watch(group: str, patterns: list[Pattern], prefilter: Optional[tuple[bytes, ...]] = None,
          exclude: tuple[str, ...] = ()) -> None:
    """Declare a detector's patterns (at import time of its probe module). The one scan pass
    (doctor/usage.py) looks for the union of every declared group, so that each file is read
    and parsed once for all detectors, and caches the hits per file."""
    WATCHED[group] = Watch(group, tuple(patterns), prefilter,
                           tuple(dists.canonical(n) for n in exclude))


def watched() -> dict[str, Watch]:
    """Every group: the probe modules declare theirs when imported (cheap: no heavy imports)."""
    from tts_doctor import registry

    registry.load_all()
    return dict(WATCHED)


def watch_key(groups: dict[str, Watch]) -> str:
    blob = json.dumps([CACHE_VERSION, sys.version_info[:2],
                       sorted((g.group, sorted(p.key for p in g.patterns),
                               [x.decode("latin-1") for x in g.prefilter or ()], g.exclude)
                              for g in groups.values())])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class FileScan:
    """What one parse of a file gives every detector: the uses of the watched names (line,
    dotted name, guarded), the modules it imports (for the static import walk), or why it
    could not be parsed (newer syntax than this interpreter's grammar, bad encoding)."""

    def __init__(self, tests: list[tuple[Watch, Callable[[bytes], bool]]]):
        self.tests = tests
        # each group's test split in two (`Watch.parts`): the tops of all groups are looked
        # for once per file (a scan of the bytes each: most of the cost of this filter), and
        # only the groups whose top the file holds run the rest of their test
        self.parts = [(w, *w.parts()) for w, _ in tests]
        self.needles = tuple(sorted({t for _, tops, _ in self.parts for t in tops}))

    def wanted(self, source: bytes, owner: str = "") -> list[Watch]:
        """The groups whose byte test (`Watch.test`) the file passes (its owner not
        excluded)."""
        found = [t for t in self.needles if t in source]
        if not found:
            return []
        return [w for w, tops, rest in self.parts
                if owner not in w.exclude and any(t in found for t in tops) and rest(source)]

    def scan(self, source: bytes, want_imports: bool = False,
             module: str = "", is_package: bool = False, owner: str = "",
             deep: bool = True, wanted: Optional[list[Watch]] = None,
             own_top: Optional[str] = None, tops: Optional[set[str]] = None
             ) -> dict[str, Any]:
        """`deep=False` (code outside the closure): no parse, approximate hits by line.
        `wanted`: the result of `self.wanted(source, owner)` when the caller has it already.
        `own_top` (the file's own top-level package, "" if none) asks for the names the file
        takes from other libraries too (`refs_of`, compat.api-drift), in code that is parsed;
        `tops`: `external_tops(source, own_top)` when the caller has it already."""
        if wanted is None:
            wanted = self.wanted(source, owner)
        out: dict[str, Any] = {"hits": [], "deep": deep}
        if own_top is None or not deep:
            tops = set()
        elif tops is None:
            tops = external_tops(source, own_top)
        if own_top is not None and deep:
            out["refs"] = []
        if not wanted and not want_imports and not tops:
            return out
        if not deep and not want_imports:
            hits = {(h[0], h[1]): h for w in wanted for h in w.lines(source)}
            out["hits"] = [hits[k] for k in sorted(hits)]
            out["approximate"] = True
            return out
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            out["unparsed"] = f"{type(exc).__name__}: {exc}"[:200]
            if want_imports:
                out["imports"] = []
            return out
        if wanted:
            visitor = _Visitor([p for w in wanted for p in w.patterns])
            visitor.visit(tree)
            hits = sorted(set(visitor.hits))
            guards = _guarded_in(tree, {line for line, _ in hits}) if hits else set()
            out["hits"] = [[line, dotted, line in guards] for line, dotted in hits]
        if want_imports:
            out["imports"] = imports_of(tree, module, is_package)
        if tops:
            out["refs"] = refs_of(tree, tops, source)
        return out


# the nodes whose statement lists an import may sit in (match cases from Python 3.10)
_BODY_NODES: tuple[type, ...] = (ast.stmt, ast.Module, ast.excepthandler) + \
    ((ast.match_case,) if hasattr(ast, "match_case") else ())


def _type_checking(test: ast.AST) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(tree: ast.AST, module: str = "", is_package: bool = False) -> list[str]:
    """Every module a file imports at run time (`imports_with_lines`), each once, sorted."""
    return sorted({name for name, _ in imports_with_lines(tree, module, is_package)})


def imports_with_lines(tree: ast.AST, module: str = "", is_package: bool = False
                       ) -> list[tuple[str, int]]:
    """(module, line) for every import a file makes at run time, anywhere in it (function
    bodies too: the lazily imported submodules), relative imports resolved against `module`;
    `from X import Y` gives both X and X.Y (Y may be a submodule). Imports under `if
    TYPE_CHECKING:` never run and are left out: ModelScope's `__init__` files list every
    model there."""
    out: list[tuple[str, int]] = []
    package = module if is_package else module.rpartition(".")[0]
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno) for a in node.names)
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts) or not parts:
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name:
                line = node.lineno
                out.append((name, line))
                out.extend((f"{name}.{a.name}", line) for a in node.names if a.name != "*")
            continue
        if isinstance(node, _BODY_NODES):
            for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                value = getattr(node, name, None)
                if isinstance(value, list):
                    stack.extend(value)
    return out


# --- API drift: the names code takes from other libraries (compat.api-drift) ---------------

_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"__future__"}


def external_tops(source: bytes, own: str = "") -> set[str]:
    """The top-level modules a file imports other than the standard library's and its own
    package's (a byte regex over `import`/`from` lines, no parse): only a file that imports
    another library can use a name that library no longer has."""
    out: set[str] = set()
    # the lines that start (after blanks) with `from NAME` or `import NAMES`: two regexes
    # that start with a literal, which the regex engine skips to (one that starts with `^`
    # is tried at every position of the file), kept where the match starts its line; neither
    # crosses a line end, and a line starts with at most one of them
    for m in _FROM_WORD.finditer(source):
        if _at_line_start(source, m.start()):
            out.add(m.group(1).decode("ascii", "replace"))
    for m in _IMPORT_WORD.finditer(source):
        if _at_line_start(source, m.start()):
            for part in m.group(1).split(b","):
                words = part.split()
                if words:
                    out.add(words[0].split(b".")[0].decode("ascii", "replace"))
    return {t for t in out if t not in _STDLIB and t != own and t.isidentifier()}


_FROM_WORD = re.compile(rb"from[ \t]+([A-Za-z_]\w*)")
_IMPORT_WORD = re.compile(rb"import[ \t]+([A-Za-z_][\w \t,.]*)")


def _at_line_start(source: bytes, at: int) -> bool:
    """Whether only blanks stand between the start of the line and `at`."""
    start = source.rfind(b"\n", 0, at) + 1
    return start == at or not source[start:at].strip(b" \t")


class RefVisitor(AliasVisitor):
    """Every name a file takes from the libraries in `tops`: `from X import Y` ("from"),
    `import X.Y` ("import") and `X.Y.z` attribute chains through any alias ("attr"), each with
    its line and scope ("module": runs when the module is imported; "function": runs when
    called) and the first line of the function it is in (0 at module level). Left out:
    relative imports (the package's own code), `if TYPE_CHECKING:` blocks
    and annotations (never evaluated at run time), and chains through a local name the file
    also assigns (`np = None` in an except branch: the name is not always the module).

    The tree is walked without recursion, in the order `ast.NodeVisitor` would visit it
    (aliases take effect where their import stands): most of the cost of the names pass is
    this walk over every node of the files the deployment reaches."""

    def __init__(self, tops: set[str]):
        super().__init__()
        self.tops = tops
        self.depth = 0
        self.function = 0  # first line of the innermost function
        self.refs: list[tuple[int, str, str, str, str, int]] = []  # + local name, function
        self.stored: set[str] = set()
        self.assigned: set[str] = set()  # names the file sets on a module: `mod.x = ...`

    def _scope(self) -> str:
        return "function" if self.depth else "module"

    def _add(self, line: int, dotted: str, kind: str, local: str = "") -> None:
        self.refs.append((line, dotted, kind, self._scope(), local, self.function))

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name.split(".")[0] in self.tops:
                self._add(node.lineno, a.name, "import")
        super().visit_Import(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not node.level and node.module and node.module.split(".")[0] in self.tops:
            for a in node.names:
                if a.name != "*":
                    self._add(node.lineno, f"{node.module}.{a.name}", "from")
        super().visit_ImportFrom(node)

    def visit(self, node: ast.AST) -> None:
        """Walk `node` and everything below it (pre-order, fields in their order)."""
        stack: list[Any] = [node]
        pop, push = stack.pop, stack.append
        AST, Name, Attribute, Load = ast.AST, ast.Name, ast.Attribute, ast.Load
        Constant, Call, If, AnnAssign = ast.Constant, ast.Call, ast.If, ast.AnnAssign
        Import, ImportFrom = ast.Import, ast.ImportFrom
        functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        aliases, tops, stored = self.aliases, self.tops, self.stored
        fields_of = _CHILD_FIELDS
        while stack:
            item = pop()
            kind = type(item)
            if kind is Name:
                if not isinstance(item.ctx, Load):
                    stored.add(item.id)
                continue
            if kind is Constant:
                continue
            if kind is Attribute:
                base = item.value
                while type(base) is Attribute:
                    base = base.value
                if type(base) is Name and base.id in aliases and \
                        aliases[base.id].split(".")[0] in tops:
                    self._attribute(item, base.id)
                    continue
            elif kind is tuple:  # leaving a function (True: entering its body)
                if item[0]:
                    self.depth += 1
                else:
                    self.depth -= 1
                self.function = item[1]
                continue
            elif kind is Call:
                self._setattr(item)
            elif kind is Import:
                self.visit_Import(item)
                continue
            elif kind is ImportFrom:
                self.visit_ImportFrom(item)
                continue
            elif kind is If:
                if _type_checking(item.test):
                    stack.extend(reversed(item.orelse))
                    continue
            elif kind in functions:
                self._function(item, stack)
                continue
            elif kind is AnnAssign:
                if item.value is not None:
                    push(item.value)
                push(item.target)
                continue
            fields = fields_of.get(kind) or _child_fields(kind)
            for name in fields:
                value = getattr(item, name, None)
                if type(value) is list:
                    for child in reversed(value):
                        if isinstance(child, AST):
                            push(child)
                elif isinstance(value, AST):
                    push(value)

    def _attribute(self, node: ast.Attribute, local: str) -> None:
        """A chain through an alias of a library in `tops`."""
        if not isinstance(node.ctx, ast.Load):
            # `torch.backends.cudnn.benchmark = True` sets the last name: only the rest is used
            full = self.dotted(node)
            if full:
                self.assigned.add(full)
            dotted = self.dotted(node.value) if isinstance(node.value, ast.Attribute) else None
        else:
            dotted = self.dotted(node)
        if dotted is not None:
            self._add(node.lineno, dotted, "attr", local)

    def _setattr(self, node: ast.Call) -> None:
        # setattr(module, "name", value): the file makes the name itself (a patcher)
        if isinstance(node.func, ast.Name) and node.func.id == "setattr" and \
                len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and \
                isinstance(node.args[1].value, str):
            owner = self.dotted(node.args[0])
            if owner:
                self.assigned.add(f"{owner}.{node.args[1].value}")

    def _function(self, node: Any, stack: list[Any]) -> None:
        """Decorators and defaults run where the function is defined; its body (after the
        arguments are bound) runs in the function's scope; annotations never."""
        args = node.args
        for a in [*getattr(args, "posonlyargs", []), *args.args, *args.kwonlyargs,
                  *(x for x in (args.vararg, args.kwarg) if x is not None)]:
            self.stored.add(a.arg)
        stack.append((False, self.function))
        body = node.body if isinstance(node.body, list) else [node.body]  # a lambda's
        stack.extend(reversed(body))
        stack.append((True, node.lineno))
        defaults = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
        stack.extend(reversed(defaults))
        stack.extend(reversed(getattr(node, "decorator_list", ())))


# fields that never hold a node worth walking: names, numbers, and the nodes without fields
# that no walk here looks at (`ctx`: Load/Store; `op`, `ops`: operators)
_LEAF_FIELDS = frozenset({"ctx", "op", "ops", "id", "attr", "arg", "module", "level", "kind",
                          "type_comment", "conversion", "is_async", "n", "s"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}  # node type -> its fields, reversed


def _child_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node type that may hold nodes, last first (pushed on a stack, they
    come off first field first)."""
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = _CHILD_FIELDS[kind] = tuple(reversed([f for f in kind._fields
                                                       if f not in _LEAF_FIELDS]))
    return fields


def refs_of(tree: ast.AST, tops: set[str], source: Optional[bytes] = None) -> list[list[Any]]:
    """The names a parsed file takes from the libraries in `tops`, one row per (name,
    function, guarded), at its first line: [line, dotted, kind, scope, guarded, function].
    Guarded as for the detectors (`_guarded_in`: try/except ImportError|AttributeError|
    Exception, hasattr and version tests), and also behind availability tests
    (`if is_torch_npu_available():`, `torch.cuda.is_available()`) and `hasattr(...) and`."""
    visitor = RefVisitor(tops)
    visitor.visit(tree)
    made = visitor.assigned
    rows = [r for r in visitor.refs if (not r[4] or r[4] not in visitor.stored)
            and not (made and any(r[1] == m or r[1].startswith(m + ".") for m in made))]
    if not rows:
        return []
    guards = _guarded_in(tree, {r[0] for r in rows}, availability=True,
                         texts=source.split(b"\n") if source else None)
    first: dict[tuple[str, int, bool], list[Any]] = {}
    for line, dotted, kind, scope, _, function in sorted(rows):
        key = (dotted, function, line in guards)
        if key not in first:
            first[key] = [line, dotted, kind, scope, line in guards, function]
    return sorted(first.values())


# --- reading the index the one scan pass wrote --------------------------------------------

INDEX_ENV = "TTS_DOCTOR_USAGE_INDEX"
_INDEX: dict[str, Any] = {}


def index(wait: float = 300.0) -> dict[str, Any]:
    """The usage index of this run: written by the doctor's own process (doctor/usage.py,
    path in $TTS_DOCTOR_USAGE_INDEX, finished when `PATH.done` exists), or built here when
    the probe runs without it (a probe called as a function, the pytest plugin)."""
    if "data" in _INDEX:
        return _INDEX["data"]
    data = written_index(wait)
    if data is None:
        from tts_doctor import usage

        data = usage.build_index(usage.Request.from_environment())
    _INDEX["data"] = data
    return data


def written_index(wait: float = 300.0) -> Optional[dict[str, Any]]:
    """The index the doctor's process writes for this run ($TTS_DOCTOR_USAGE_INDEX), once it
    is finished (waiting up to `wait` seconds); None when there is none or it failed."""
    path = os.environ.get(INDEX_ENV)
    if not path:
        return None
    import time

    deadline = time.monotonic() + wait
    while not os.path.exists(path + ".done") and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("error"):
        return None
    return data


def reach_facts() -> dict[str, Any]:
    """The reachability part of the index: entries, failures, whether any entry was found."""
    return dict(index().get("reach") or {})


def find_usages(patterns: list[Pattern], *, exclude: tuple[str, ...] = (),
                use_cache: bool = True,
                prefilter: Optional[re.Pattern[bytes]] = None) -> list[Usage]:
    """Every use of the patterns in the code of the environment (distributions, editable
    installs, modules no distribution owns, the application folder), minus the distributions
    in `exclude`, each marked guarded or not and reached or not.

    The uses come from the run's one scan pass (`index()`); `use_cache` and `prefilter` are
    kept for callers of the earlier per-probe scans: the pass applies each detector's own
    prefilter (see `watch`).
    """
    keys = {p.key for p in patterns}
    skip = {dists.canonical(n) for n in (*exclude, "tts-doctor")}
    out = []
    for row in index().get("usages") or []:
        owner, version, origin, path, line, key, is_guarded, reached = row
        if key not in keys or dists.canonical(owner) in skip:
            continue
        out.append(Usage(owner, version, path, line, key, bool(is_guarded), reached, origin))
    return out


def split_reached(usages: list[Any]) -> tuple[list[Any], list[Any]]:
    """(uses the deployment reaches or might reach, uses outside the closure)."""
    inside = [u for u in usages if _reached(u) is not False]
    outside = [u for u in usages if _reached(u) is False]
    return inside, outside


def _reached(u: Any) -> Optional[bool]:
    return u.get("reached") if isinstance(u, dict) else getattr(u, "reached", None)


def can_fail() -> bool:
    """Whether a use in installed code may fail a check: only when the closure is known.
    Where no entry point was found at all, uses found in installed code are at most a warn."""
    return bool(reach_facts().get("known"))


NO_ENTRY_NOTE = ("no entry point is known (no recipe entry, TTS stack, editable install or "
                 "application folder), so this code may never run: at most a warning; name "
                 "your application with --project DIR")


def unreached_note(usages: list[Any], entries: Optional[list[str]] = None) -> Optional[str]:
    """'2 uses in modelscope (models/cv, models/multi_modal), not reached from the entry
    modules (modelscope.pipelines.audio.text_to_speech_pipeline)': the uses outside the
    closure, for a summary tail and `details`; they change no status. `entries`: the entry
    modules as recorded (a judge's facts); by default the run's index is asked."""
    outside = [u for u in usages if _reached(u) is False]
    if not outside:
        return None
    groups: dict[str, set[str]] = {}
    for u in outside:
        owner = u["distribution"] if isinstance(u, dict) else u.distribution
        path = u.get("file") or u.get("where", "") if isinstance(u, dict) else u.file
        groups.setdefault(owner, set()).add(_area(str(path), owner))
    what = "; ".join(f"{owner} ({', '.join(sorted(areas)[:3])}"
                     f"{', ...' if len(areas) > 3 else ''})" for owner, areas in groups.items())
    if entries is None:
        entries = reach_facts().get("entries") or []
    named = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return (f"{len(outside)} use(s) in {what}, not reached from the entry modules "
            f"({named or 'none'})")


def _area(path: str, owner: str) -> str:
    """The package folder a file lies in, two levels below its top package: models/cv."""
    parts = path.replace(os.sep, "/").split("/")
    top = dists.canonical(owner).replace("-", "_")
    for i, part in enumerate(parts):
        if dists.canonical(part).replace("-", "_") == top and i + 1 < len(parts):
            return "/".join(parts[i:i + 3]) if len(parts) > i + 3 else "/".join(parts[i:-1] or
                                                                                  parts[i:])
    return "/".join(parts[-3:-1])


def unreached_details(usages: list[Any], limit: int = 20) -> list[dict[str, Any]]:
    rows = []
    for u in usages:
        if _reached(u) is not False:
            continue
        rows.append(u if isinstance(u, dict) else
                    {"distribution": u.distribution, "where": f"{u.file}:{u.line}",
                     "name": u.key})
    return rows[:limit]


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
    except (SyntaxError, ValueError, RecursionError):
        return set()
    return _guarded_in(tree)


def _guard_test(test: ast.AST) -> bool:
    text = ast.dump(test)
    return "hasattr" in text or "version" in text.lower()


def _availability_test(test: ast.AST) -> bool:
    """`_guard_test` plus availability tests (`is_torch_npu_available()`), from the names,
    attributes and strings of the test (no `ast.dump`: this runs for every use)."""
    for node in _nodes(test):
        if isinstance(node, ast.Name):
            word = node.id
        elif isinstance(node, ast.Attribute):
            word = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            word = node.value
        else:
            continue
        word = word.lower()
        if "hasattr" in word or "version" in word or "available" in word:
            return True
    return False


def _nodes(top: ast.AST) -> list[ast.AST]:
    """Every node below `top` and itself, as `ast.walk` gives them (in another order),
    without the `ctx` leaves and without a generator per node."""
    out: list[ast.AST] = []
    stack = [top]
    AST = ast.AST
    fields_of = _CHILD_FIELDS
    while stack:
        node = stack.pop()
        out.append(node)
        kind = type(node)
        fields = fields_of.get(kind) or _child_fields(kind)
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                stack.extend(x for x in value if isinstance(x, AST))
            elif isinstance(value, AST):
                stack.append(value)
    return out


def _guarded_in(tree: ast.AST, lines: Optional[set[int]] = None,
                availability: bool = False, texts: Optional[list[bytes]] = None) -> set[int]:
    """The guarded lines of a parsed file. Statements are walked without descending into
    expressions (the costly part of a full walk); conditional expressions are looked for only
    inside the statements that hold one of `lines` (every statement when not given).
    `availability` (compat.api-drift) also counts `if ...available...:` tests and
    `hasattr(...) and ...` expressions as guards.

    With `lines`, the answer is which of them are guarded (a subset of `lines`), and only
    the statements that hold one of them are looked at: a statement's guards cover lines
    inside it only."""
    import bisect

    test_of = _availability_test if availability else _guard_test
    out: set[int] = set()
    want = sorted(lines) if lines is not None else None

    def holds(first: int, last: int) -> bool:  # one of `lines` in first..last
        if want is None:
            return True
        i = bisect.bisect_left(want, first)
        return i < len(want) and want[i] <= last

    def add(span: range) -> None:
        if want is None:
            out.update(span)
        elif span:
            out.update(want[bisect.bisect_left(want, span.start):
                            bisect.bisect_left(want, span.stop)])

    stack: list[Any] = [tree]
    holders: list[ast.AST] = []
    stmt, handler = ast.stmt, ast.excepthandler
    while stack:
        node = stack.pop()
        if want is not None and isinstance(node, stmt) and \
                getattr(node, "end_lineno", None) is not None:
            decorators = getattr(node, "decorator_list", None)
            if not holds(_first_line(node) if decorators else node.lineno, node.end_lineno):
                continue  # no line asked about in it: nothing it guards is asked about
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            handlers = [h for h in node.handlers if _catches(h)]
            if handlers:
                add(_lines(node.body))
                for h in handlers:
                    add(_lines(h.body))
        elif isinstance(node, ast.If):
            body, orelse = _lines(node.body), _lines(node.orelse)
            if (holds(body.start, body.stop - 1) or holds(orelse.start, orelse.stop - 1)) \
                    and test_of(node.test):
                add(body)
                add(orelse)
        children = []
        kind = type(node)
        names = _BODY_FIELDS.get(kind)
        if names is None:
            names = _BODY_FIELDS[kind] = tuple(f for f in ("body", "orelse", "finalbody",
                                                           "handlers", "cases")
                                               if f in kind._fields)
        for name in names:
            value = getattr(node, name, None)
            if not isinstance(value, list):
                continue
            if name == "cases":
                children += [c for case in value for c in case.body]
            else:
                children += [c for c in value if isinstance(c, (stmt, handler))]
        stack.extend(children)
        if isinstance(node, stmt) and not children:
            start, end = node.lineno, getattr(node, "end_lineno", None) or node.lineno
            if lines is None or holds(start, end):
                holders.append(node)
    for node in holders:
        if texts is not None:  # the source lines: no conditional expression, no and/or
            text = b"\n".join(texts[node.lineno - 1:(getattr(node, "end_lineno", None)
                                                     or node.lineno)])
            if _CONDITIONAL_WORD.search(text) is None:
                continue
        for sub in _nodes(node):
            if (isinstance(sub, ast.IfExp) and test_of(sub.test)) or \
                    (availability and isinstance(sub, ast.BoolOp)
                     and any(test_of(v) for v in sub.values)):
                add(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return out


_BODY_FIELDS: dict[type, tuple[str, ...]] = {}  # node type -> its fields that hold statements
# `if`, `and` or `or` as a word: not after a letter that cannot end a number literal (`1if`,
# `0xfor`, `1jif` are keywords after numbers), not before a letter, digit or underscore
_CONDITIONAL_WORD = re.compile(rb"(?<![G-IK-Zg-ik-z_])(?:if|and|or)(?![A-Za-z0-9_])")

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
