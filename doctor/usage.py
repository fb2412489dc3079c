"""The one scan pass: every file of code that can run, parsed once, judged by reachability.

Runs in the doctor's own process (started by `check` beside the probes, see `start`), reading
the diagnosed environment's files; only two small things come from the target interpreter:
its sys.path (`python -c`) and the closure import (doctor/reach.py, in a process of its own).
The answer is the usage index, a JSON file the probes read through `scan.index()`.

1. **Which code exists** (`sources`): the `.py` files in each distribution's RECORD; the code of
   editable installs, which RECORD does not list (PEP 660 `.pth` path entries and
   `__editable___*_finder.py` import finders, legacy `.egg-link` files, `direct_url.json`);
   top-level modules in site-packages that no distribution owns; the application folder
   (`--project DIR`, default the current folder when it holds Python code).
2. **Which code the deployment reaches** (`closure`): the entry modules are the recipe's
   `entry` list, or without a recipe those of every installed TTS stack the doctor knows
   (`KNOWN_STACKS`), plus always the top-level packages of editable installs. They are
   imported in a separate process of the target interpreter with the network blocked
   (doctor/reach.py; how ModelScope's lazy registry is handled is explained there), and the
   modules that really loaded are the closure. A static import walk adds what the import
   could not show: the imports of an entry that failed to import, and the modules imported
   inside functions (lazily imported submodules) of the entry packages, the editable
   packages and the application. Editable code and the application folder count as reached
   as a whole: they are the code being worked on and run.
3. **One parse per file** (`scan_files`): each file passes the byte prefilters of every
   detector declared with `scan.watch`; a file any of them wants is parsed once and the
   hits of all detectors are kept, with the modules it imports when the walk needs them.
   The byte test looks for the top packages of all detectors once per file (a scan of the
   bytes each, most of the cost of reading 18,000 files) and runs the rest of a detector's
   test only where its top package is. A reached file is parsed for the names it takes
   from other libraries (compat.api-drift) only when it imports an installed library of
   another distribution, or when it is not known to parse (no valid .pyc of this
   interpreter's version): the index keeps no other names, and lists unparsed files.
   Results are cached per file by (path, size, mtime) in $TTS_DOCTOR_CACHE (outside the
   diagnosed environment). A file this interpreter cannot parse (newer syntax) is listed as
   unparsed, never an error.

Without any entry module (no recipe, no known stack, nothing editable, no application folder)
reachability is unknown: the index says so and the probes report uses in installed code as
`warn` at most (`scan.can_fail`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tts_doctor import scan

INDEX_VERSION = 3
CLOSURE_TIMEOUT = 120.0

# Top-level module of a TTS stack -> the modules its deployments import first.
KNOWN_STACKS: dict[str, tuple[str, ...]] = {
    "modelscope": ("modelscope.pipelines.audio.text_to_speech_pipeline",
                   "modelscope.models.audio.tts.sambert_hifi"),
    "kantts": ("kantts",),
    "indextts": ("indextts.infer_v2",),
    "cosyvoice": ("cosyvoice.cli.cosyvoice",),
    "piper": ("piper",),
    "TTS": ("TTS.api",),
    "f5_tts": ("f5_tts.api",),
    "kokoro": ("kokoro",),
    "melo": ("melo.api",),
    "ChatTTS": ("ChatTTS",),
    "GPT_SoVITS": ("GPT_SoVITS.TTS_infer_pack.TTS",),
    "kokoro_onnx": ("kokoro_onnx",),
    "styletts2": ("styletts2.tts",),
    "bark": ("bark.api",),
    "tortoise": ("tortoise.api",),
    "parler_tts": ("parler_tts",),
}

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv",
                       "site-packages", "dist-packages", ".tox", ".nox", ".mypy_cache",
                       ".pytest_cache", "build", "dist", ".eggs"})
MAX_TREE_FILES = 20000
SELF = frozenset({"tts-doctor", "tts_doctor"})


@dataclass(frozen=True)
class Source:
    """A file of code that can run, and who owns it."""

    path: str
    owner: str       # distribution name, "(no distribution)" or "(your code)"
    version: str
    origin: str      # "distribution", "editable", "unowned", "project"


@dataclass(frozen=True)
class Request:
    """What to index: the interpreter (None: this one), the recipe's entry modules (None: the
    known stacks), the application folder (None: the current folder if it holds code)."""

    python: Optional[str] = None
    entries: Optional[tuple[str, ...]] = None
    project: Optional[str] = None
    use_cache: bool = True
    refs: bool = True  # the names reached code takes from other libraries (compat.api-drift)

    @classmethod
    def from_environment(cls) -> Request:
        raw = os.environ.get(REQUEST_ENV)
        if raw:
            try:
                d = json.loads(raw)
                return cls(d.get("python"), tuple(d["entries"]) if d.get("entries") else None,
                           d.get("project"), refs=bool(d.get("refs", True)))
            except (ValueError, KeyError, TypeError):
                pass
        return cls()


REQUEST_ENV = "TTS_DOCTOR_USAGE_REQUEST"


# --- the target's search path and code ----------------------------------------------------

def target_sys_path(python: Optional[str]) -> list[str]:
    if python is None:
        from tts_doctor import dists

        return dists.search_path()
    proc = subprocess.run([python, "-c", "import sys, json; print(json.dumps(sys.path))"],
                          capture_output=True, text=True, timeout=60)
    paths = json.loads(proc.stdout.strip().splitlines()[-1])
    return [p for p in paths if p not in ("", ".")]


def _walk(root: str, limit: int = MAX_TREE_FILES) -> list[str]:
    if os.path.isfile(root):
        return [root] if root.endswith(".py") else []
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                       and not d.endswith((".dist-info", ".egg-info"))]
        out += [os.path.join(dirpath, f) for f in filenames if f.endswith(".py")]
        if len(out) > limit:
            break
    return out[:limit]


def finder_mapping(path: str) -> dict[str, str]:
    """MAPPING of a setuptools `__editable___*_finder.py`: top-level name -> source path."""
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and node.targets else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == "MAPPING" and node.value is not None:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    return {}


def _pth_paths(path: str) -> list[str]:
    """The folders a .pth file adds (lines that are paths, not `import` lines)."""
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    base = os.path.dirname(path)
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", "import ", "import\t")):
            continue
        full = os.path.normpath(os.path.join(base, line))
        if os.path.isdir(full):
            out.append(full)
    return out


@dataclass
class Code:
    """Every source file, the editable roots, and the top-level name -> path mappings."""

    sources: list[Source] = field(default_factory=list)
    editable: dict[str, list[str]] = field(default_factory=dict)   # owner -> roots
    mappings: dict[str, str] = field(default_factory=dict)         # finder MAPPING entries
    unowned: list[str] = field(default_factory=list)
    project: Optional[str] = None


def _is_editable(dist_path: Path) -> bool:
    try:
        data = json.loads((dist_path / "direct_url.json").read_text())
    except (OSError, ValueError):
        return False
    return bool((data.get("dir_info") or {}).get("editable"))


def _name_version(base: Path) -> tuple[Optional[str], str]:
    """Name and Version from the head of METADATA, without the e-mail parser (which costs a
    millisecond a distribution: most of the warm pass over a hundred of them)."""
    name, version = None, ""
    try:
        with open(base / "METADATA", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if (name and version) or not line.strip():
                    break
    except OSError:
        return None, ""
    return name, version


def discover(sys_path: list[str], project: Optional[str]) -> Code:
    """All the code that can run under this search path (see the module docstring, 1.)."""
    import importlib.metadata as md

    from tts_doctor import dists

    code = Code()
    seen: set[str] = set()
    owned: dict[str, set[str]] = {}   # site dir -> top-level names some RECORD lists
    site_dirs: list[str] = []
    for dist in md.distributions(path=sys_path):
        base = getattr(dist, "_path", None)
        if base is None:
            continue
        name, version = _name_version(base)
        if name is None:
            try:
                name, version = dist.metadata["Name"], dist.version or ""
            except Exception:
                continue
        if not name or dists.canonical(name) in seen:
            continue
        seen.add(dists.canonical(name))
        mine = dists.canonical(name) in SELF
        root = os.path.dirname(str(base))
        if root not in owned:
            owned[root] = set()
            site_dirs.append(root)
        files, roots = [], []
        record = base / "RECORD"
        names: list[str] = []
        if record.exists():
            with open(record, encoding="utf-8", errors="replace") as fh:
                names = [line.split(",", 1)[0] for line in fh if line.strip()]
        else:
            names = [str(f) for f in (dist.files or [])]
        # the top-level names this RECORD lists (a few, over thousands of lines)
        owned[root].update(top[:-3] if top.endswith(".py") else top
                           for top in {rel.partition("/")[0] for rel in names})
        prefix = root + os.sep
        for rel in names:
            if rel.endswith(".py"):
                full = prefix + rel if ".." not in rel and "\\" not in rel else \
                    os.path.normpath(os.path.join(root, rel))
                if "__editable__" in rel and rel.endswith("finder.py") and \
                        os.path.basename(rel).startswith("__editable__"):
                    mapping = {} if mine else finder_mapping(full)
                    code.mappings.update(mapping)
                    roots += list(mapping.values())
                    continue
                files.append(full)
            elif rel.endswith(".pth") and "/" not in rel and not mine:
                roots += _pth_paths(prefix + rel)
        editable = bool(roots) or _is_editable(base)
        if dists.canonical(name) in SELF:
            continue
        code.sources += [Source(f, name, version, "editable" if editable else "distribution")
                         for f in files]
        if roots:
            code.editable[name] = sorted(set(roots))
            for r in sorted(set(roots)):
                code.sources += [Source(f, name, version, "editable") for f in _walk(r)]
    for p in sys_path:
        if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages") and \
                p not in owned and os.path.isdir(p):
            owned[p] = set()
            site_dirs.append(p)
    # legacy editable installs: site-packages/NAME.egg-link holds the project folder
    for site in site_dirs:
        try:
            entries = os.listdir(site)
        except OSError:
            continue
        for entry in entries:
            full = os.path.join(site, entry)
            if entry.endswith(".egg-link"):
                try:
                    target = Path(full).read_text().splitlines()[0].strip()
                except (OSError, IndexError):
                    continue
                owner = entry[:-len(".egg-link")]
                if dists.canonical(owner) in SELF or not os.path.isdir(target):
                    continue
                code.editable.setdefault(owner, []).append(target)
                # `setup.py develop` leaves NAME.egg-info in the project folder, which is on
                # sys.path (easy-install.pth): its files were found above as a plain
                # distribution's; they are the editable project's code
                inside = target.rstrip(os.sep) + os.sep
                version = ""
                for i, src in enumerate(code.sources):
                    if src.path.startswith(inside) and src.origin == "distribution":
                        code.sources[i] = Source(src.path, src.owner, src.version, "editable")
                        version = version or src.version
                known = {s.path for s in code.sources}
                code.sources += [Source(f, owner, version, "editable") for f in _walk(target)
                                 if f not in known]
                continue
            if entry in owned[site] or entry.startswith((".", "_distutils")) or \
                    entry.endswith((".dist-info", ".egg-info", ".pth", ".egg-link")) or \
                    entry == "__pycache__":
                continue
            name = entry[:-3] if entry.endswith(".py") else entry
            if name in owned[site] or not name.isidentifier():
                continue
            files = _walk(full, 5000)
            if files:
                code.unowned.append(full)
                code.sources += [Source(f, "(no distribution)", "", "unowned") for f in files]
    if project:
        code.project = project
        known = {s.path for s in code.sources}
        code.sources += [Source(f, "(your code)", "", "project") for f in _walk(project)
                         if f not in known]
    return code


MAX_IMPLICIT_PROJECT_FILES = 2000


def default_project(explicit: Optional[str]) -> Optional[str]:
    """`--project DIR`, else the current folder when it looks like an application: Python
    code at its top (a `.py` file or a package), not the home folder, the root, a temporary
    folder or the doctor's own source checkout, and at most MAX_IMPLICIT_PROJECT_FILES files
    (a bigger tree is named with --project, not guessed)."""
    if explicit:
        return os.path.abspath(explicit)
    cwd = os.path.abspath(os.getcwd())
    here = Path(__file__).resolve().parent
    real = Path(cwd).resolve()
    never = {here.parent, here, Path("/"), Path(os.path.expanduser("~")).resolve(),
             Path(tempfile.gettempdir()).resolve(), Path("/tmp").resolve()}
    if real in never:
        return None
    try:
        entries = os.listdir(cwd)
    except OSError:
        return None
    if not any(e.endswith(".py") or os.path.isfile(os.path.join(cwd, e, "__init__.py"))
               for e in entries):
        return None
    if len(_walk(cwd, MAX_IMPLICIT_PROJECT_FILES + 1)) > MAX_IMPLICIT_PROJECT_FILES:
        return None
    return cwd


# --- module -> file, over the target's search path ----------------------------------------

class Locator:
    """Finds the source file of a module name under the target's sys.path, as the import
    system would (first folder that has the top-level name; editable finder mappings)."""

    def __init__(self, sys_path: list[str], mappings: dict[str, str], extra: list[str]):
        self.dirs = [p for p in [*extra, *sys_path] if os.path.isdir(p)]
        self.mappings = mappings
        self.tops: dict[str, Optional[str]] = {}
        self.found: dict[str, Optional[tuple[str, bool]]] = {}

    def _top(self, top: str) -> Optional[str]:
        if top not in self.tops:
            where = None
            if top in self.mappings:
                where = self.mappings[top]
            else:
                for d in self.dirs:
                    cand = os.path.join(d, top)
                    if os.path.isdir(cand) or os.path.isfile(cand + ".py"):
                        where = cand if os.path.isdir(cand) else cand + ".py"
                        break
            self.tops[top] = where
        return self.tops[top]

    def has(self, module: str) -> bool:
        return self._top(module.split(".")[0]) is not None

    def find(self, module: str) -> Optional[tuple[str, bool]]:
        """(file, is_package) or None (not found, a namespace package, an extension)."""
        if module in self.found:
            return self.found[module]
        parts = module.split(".")
        base = self._top(parts[0])
        out = None
        if base is not None:
            if base.endswith(".py"):
                out = (base, False) if len(parts) == 1 else None
            else:
                cand = os.path.join(base, *parts[1:])
                if os.path.isfile(os.path.join(cand, "__init__.py")):
                    out = (os.path.join(cand, "__init__.py"), True)
                elif os.path.isfile(cand + ".py"):
                    out = (cand + ".py", False)
        self.found[module] = out
        return out


# --- the per-file cache and the one pass ---------------------------------------------------

_NOTHING: dict[str, Any] = {"hits": [], "deep": True}  # the scan of most files


class FileCache:
    """Per-file scan results keyed by (path, size, mtime), one JSON file per watch set.
    The scan of a file no detector wants (most of them) is stored as 0: a smaller file to
    read on every warm pass."""

    def __init__(self, key: str, enabled: bool = True):
        folder = scan.cache_dir() if enabled else None
        self.path = folder / f"files-{key}.json" if folder else None
        self.data: dict[str, list[Any]] = {}
        self.dirty = False
        if self.path is not None:
            try:
                self.data = json.loads(self.path.read_bytes())
            except (OSError, ValueError):
                self.data = {}

    def get(self, path: str, st: os.stat_result) -> Optional[dict[str, Any]]:
        row = self.data.get(path)
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2] or {"hits": [], "deep": True}
        return None

    def put(self, path: str, st: os.stat_result, value: dict[str, Any]) -> None:
        self.data[path] = [st.st_size, st.st_mtime_ns, 0 if value == _NOTHING else value]
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.data, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError:
            pass


def _read(path: str, size: int) -> Optional[bytes]:
    """The bytes of a file (None: unreadable), without the buffered file object's costs."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, size + 1)  # a regular file reads whole, up to its end
        if len(data) <= size:
            return data
        chunks = [data]  # it grew since its stat
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


class Scanner:
    """One parse per file for every watched group, through the cache."""

    def __init__(self, use_cache: bool = True):
        groups = scan.watched()
        self.file_scan = scan.FileScan([(w, w.test()) for w in groups.values()])
        self.cache = FileCache(scan.watch_key(groups), use_cache)
        self.parsed = 0
        self.owners: dict[str, str] = {}  # path -> canonical owner (groups exclude owners)
        # read by `prefetch`: stat, bytes and the groups whose byte test the file passed
        self.pending: dict[str, tuple[os.stat_result, bytes, list[scan.Watch]]] = {}
        # the stat `prefetch` took of each file, so that `get` does not stat it again (the
        # files do not change during one pass; the next pass stats them anew)
        self.stats: dict[str, os.stat_result] = {}
        self.unwanted: set[str] = set()  # files `prefetch` found no group wants
        self.settled: set[str] = set()   # ... and cached as such: nothing more to know

    def prefetch(self, sources: list[Source]) -> None:
        """Read every file once and run the byte prefilters: a file no detector wants is
        settled (and cached) now; the others wait, in memory, until the closure says whether
        they are parsed (reached) or only searched by line (not reached)."""
        wanted_of = self.file_scan.wanted
        owners = self.owners
        for src in sources:
            path = src.path
            try:
                st = os.stat(path)
            except OSError:
                continue
            self.stats[path] = st
            cached = self.cache.get(path, st)
            if cached is not None and cached.get("deep", True):
                continue
            source = _read(path, st.st_size)
            if source is None:
                continue
            wanted = wanted_of(source, owners.get(path, ""))
            if not wanted:
                self.unwanted.add(path)
                if cached is None:
                    self.cache.put(path, st, {"hits": [], "deep": True})
                    self.settled.add(path)
                continue
            self.pending[path] = (st, source, wanted)

    def get(self, path: str, want_imports: bool = False, module: str = "",
            is_package: bool = False, owner: str = "", deep: bool = True,
            own_top: Optional[str] = None,
            useful: Optional[Callable[[set[str]], bool]] = None) -> Optional[dict[str, Any]]:
        """The scan of one file; `deep=False` for code outside the closure (no parse);
        `own_top` (its top-level package) for the names it takes from other libraries.
        `useful(tops)`: whether the names taken from those libraries can matter at all (the
        index keeps only those of installed libraries of other distributions): a file that
        imports no such library and that no detector wants is not parsed for them when it
        is known to parse (`_compiles_here`), and its cache entry keeps the libraries it
        imports (`refs_tops`, to ask `useful` again) instead of the names."""
        st = self.stats.get(path)
        if st is None:
            try:
                st = os.stat(path)
            except OSError:
                return None
        cached = self.cache.get(path, st)
        if cached is not None and (not want_imports or "imports" in cached) and \
                (own_top is None or "refs" in cached or
                 (useful is not None and "refs_tops" in cached
                  and not useful(set(cached["refs_tops"])))) and \
                (cached.get("deep", True) or not deep):
            return cached
        ready = self.pending.get(path)
        wanted: Optional[list[scan.Watch]] = None
        source: Optional[bytes] = None
        if ready is not None and ready[0].st_mtime_ns == st.st_mtime_ns and \
                ready[0].st_size == st.st_size:
            source, wanted = ready[1], ready[2]
        elif path in self.unwanted:
            wanted = []
        if owner and path not in self.owners:
            wanted = None  # prefetch tested it for no owner: test again for this one
        if source is None:
            source = _read(path, st.st_size)
            if source is None:
                return None
        self.parsed += 1
        owner = self.owners.get(path, owner)
        tops: Optional[set[str]] = None
        result: Optional[dict[str, Any]] = None
        if useful is not None and own_top is not None and deep and not want_imports:
            if wanted is None:
                wanted = self.file_scan.wanted(source, owner)
            tops = scan.external_tops(source, own_top)
            if tops and not wanted and not useful(tops) and _compiles_here(path, st):
                result = {"hits": [], "deep": True, "refs_tops": sorted(tops)}
        if result is None:
            result = self.file_scan.scan(source, want_imports, module, is_package, owner,
                                         deep or want_imports, wanted, own_top, tops)
        if cached is not None and not want_imports and "imports" in cached:
            result.setdefault("imports", cached["imports"])
        if cached is not None and own_top is None and "refs" in cached:
            result.setdefault("refs", cached["refs"])
        self.cache.put(path, st, result)
        return result


def _compiles_here(path: str, st: os.stat_result) -> bool:
    """Whether this interpreter's grammar is known to parse the file as it is now: a CPython
    of this version compiled it (a timestamp .pyc of this version's magic number, for this
    mtime and size, as the import system checks it). Installers compile what they install."""
    import importlib.util

    try:
        with open(importlib.util.cache_from_source(path), "rb") as fh:
            head = fh.read(16)
    except (OSError, ValueError, NotImplementedError):
        return False
    return len(head) == 16 and head[:4] == importlib.util.MAGIC_NUMBER and \
        int.from_bytes(head[4:8], "little") == 0 and \
        int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF and \
        int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF


# --- the closure ----------------------------------------------------------------------------

def entry_modules(request: Request, locator: Locator, code: Code
                  ) -> tuple[list[str], list[str], dict[str, str]]:
    """(entry modules to import, labels of where they came from, entry -> its role).

    The role says why it is an entry (the `model.entry-import` finding judges a failed import
    by it): "recipe", "stack:<top>" (an installed TTS stack the doctor knows), "editable"
    (a package of an editable install) or "editable-module" (a single-file module there)."""
    entries: list[str] = []
    labels: list[str] = []
    roles: dict[str, str] = {}
    if request.entries:
        entries += list(request.entries)
        labels.append("the recipe")
        roles.update((e, "recipe") for e in request.entries)
    else:
        for top, modules in KNOWN_STACKS.items():
            if locator.has(top):
                entries += list(modules)
                labels.append(top)
                roles.update((m, f"stack:{top}") for m in modules)

    def editable(name: str) -> None:
        if name not in entries and name.split(".")[0] not in SELF:
            entries.append(name)
            hit = locator.find(name)
            roles[name] = "editable" if hit is None or hit[1] else "editable-module"

    for roots in code.editable.values():
        for root in roots:
            for name in _top_packages(root):
                editable(name)
    for name in sorted(code.mappings):
        editable(name)
    if code.editable:
        labels.append("editable installs")
    return entries, labels, roles


def _top_packages(root: str) -> list[str]:
    if os.path.isfile(root):
        return [os.path.basename(root)[:-3]] if root.endswith(".py") else []
    name = os.path.basename(root.rstrip(os.sep))
    if os.path.isfile(os.path.join(root, "__init__.py")):
        return [name] if name.isidentifier() else []
    out = []
    try:
        for entry in os.listdir(root):
            if entry.startswith(("_", ".", "test")) or entry in ("setup.py", "conftest.py"):
                continue
            if entry.endswith(".py") and entry[:-3].isidentifier():
                out.append(entry[:-3])
            elif os.path.isfile(os.path.join(root, entry, "__init__.py")) and entry.isidentifier():
                out.append(entry)
    except OSError:
        pass
    return sorted(out)


def import_closure(python: Optional[str], entries: list[str], timeout: float = CLOSURE_TIMEOUT
                   ) -> dict[str, Any]:
    """Run doctor/reach.py in a fresh process of the target interpreter, with the air-gap
    audit of doctor/airgap.py (its source travels in the request: no folder of the doctor
    goes onto the target's sys.path).

    The process is a tts_doctor.isolation.Child: it dies with the doctor (a signal, kill -9),
    its process group is killed on timeout and by the doctor's cleanup, and the caches the
    libraries write at import time go to the doctor's temporary folder (swept by the next
    run after a kill -9). Call it from a thread that waits for the answer: the kernel's
    parent-death signal follows the thread that started the child."""
    from tts_doctor import isolation

    source = Path(__file__).with_name("reach.py").read_text()
    airgap = Path(__file__).with_name("airgap.py")
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for var in (scan.INDEX_ENV, REQUEST_ENV):
        env.pop(var, None)
    # the child runs in the temporary folder: a relative --python is resolved here
    exe = os.path.abspath(python) if python and os.sep in python else python
    try:
        scratch = isolation.temp_dir("reach")
    except OSError as exc:
        return {"loaded": {}, "failed": {}, "error": str(exc)}
    request = {"entries": entries, "scratch": scratch,
               "airgap": {"file": str(airgap), "source": airgap.read_text()}}
    child = isolation.Child(exe or sys.executable, source, (), env, cwd=tempfile.gettempdir())
    try:
        child.start()
        assert child.proc is not None and child.proc.stdin is not None
        try:
            child.proc.stdin.write(json.dumps(request).encode())
            child.proc.stdin.close()
        except OSError:
            pass  # it died at once: `next` says how
        return child.next(timeout, who="the closure import")
    except isolation.ChildStalled:
        return {"loaded": {}, "failed": {e: f"the import did not finish in {timeout:g} s"
                                         for e in entries}, "error": "timeout"}
    except isolation.ChildDied as exc:
        why = exc.last_words()
        return {"loaded": {}, "failed": {e: f"the closure import died: {why[:200]}"
                                         for e in entries}, "error": why[:300]}
    finally:
        child.close()
        isolation.remove_temp(scratch)


def _closure_key(request: Request, sys_path: list[str], entries: list[str],
                 code: Code) -> str:
    stamps = []
    for p in sys_path:
        try:
            stamps.append([p, os.stat(p).st_mtime_ns])
        except OSError:
            stamps.append([p, None])
    for roots in code.editable.values():
        for r in roots:
            try:
                stamps.append([r, os.stat(r).st_mtime_ns])
            except OSError:
                pass
    python = os.path.realpath(request.python or sys.executable)
    stamps += _data_stamps(python)
    blob = json.dumps([INDEX_VERSION, python, entries, stamps])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _data_places(python: str) -> list[str]:
    """The folders the runtime downloaders of the air-gap audit read (the Hugging Face hub
    cache, ModelScope's cache, NLTK's data path): fetching what the audit asked for changes
    them, and with them the cached closure answer (its audit) is stale."""
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or \
        os.path.join(os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface"), "hub")
    prefix = os.path.dirname(os.path.dirname(python))
    places = [hub, os.environ.get("MODELSCOPE_CACHE") or os.path.join(home, ".cache",
                                                                     "modelscope", "hub")]
    places += [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    places += [os.path.join(home, "nltk_data"),
               *(os.path.join(prefix, *sub, "nltk_data") for sub in ((), ("share",), ("lib",))),
               "/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data",
               "/usr/local/lib/nltk_data"]
    return [os.path.expanduser(p) for p in places]


def _data_stamps(python: str) -> list[list[Any]]:
    """mtimes of the downloaders' folders and of their folders two levels down (a new file
    lands in `hub/models--ORG--NAME/blobs`, `nltk_data/taggers`)."""
    from tts_doctor import footprint

    out: list[list[Any]] = []
    for place in _data_places(python):
        for folder in footprint.folders(place, 2):
            try:
                out.append([folder, os.stat(folder).st_mtime_ns])
            except OSError:
                continue
    return out


def closure(request: Request, sys_path: list[str], code: Code, locator: Locator,
            scanner: Scanner) -> dict[str, Any]:
    """The files the deployment reaches, and how they were found (module docstring, 2.)."""
    entries, labels, roles = entry_modules(request, locator, code)
    own_tops = {m.split(".")[0] for m in code.mappings}
    for roots in code.editable.values():
        for root in roots:
            own_tops.update(_top_packages(root))
    if code.project:
        own_tops.update(_top_packages(code.project))
    # what the application and the editable code import from installed libraries is imported
    # too: the libraries as far as they really load for it
    app_imports = _external_imports(code, sys_path, scanner, locator, own_tops,
                                     request.refs)
    if app_imports:
        labels.append("the imports of your code")
    entries += [m for m in app_imports if m not in entries]
    found = [e for e in entries if locator.has(e)]
    absent = [e for e in entries if not locator.has(e)]
    owners = {}
    for name in found:
        hit = locator.find(name)
        owner = scanner.owners.get(os.path.normpath(hit[0])) if hit else None
        if owner:
            owners[name] = owner
    result: dict[str, Any] = {"entries": found, "absent_entries": absent, "from": labels,
                              "roles": {e: roles.get(e, "import") for e in entries},
                              "owners": owners, "failed": {}, "causes": {}, "imported": 0,
                              "walked": 0, "closure_s": 0.0}
    if not found and not code.project:
        result["known"] = False
        result["why"] = ("no entry point found: no recipe entry, no installed TTS stack the "
                         "doctor knows, no editable install and no application folder "
                         "(--project DIR)")
        result["files"] = []
        return result
    result["known"] = True
    t0 = time.perf_counter()
    answer: Optional[dict[str, Any]] = None
    folder = scan.cache_dir() if request.use_cache else None
    cache_file = folder / f"closure-{_closure_key(request, sys_path, found, code)}.json" \
        if folder and found else None
    if cache_file is not None:
        try:
            answer = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            answer = None
        if answer is not None and "airgap" not in answer:
            answer = None  # written by a doctor without the air-gap audit
    if answer is None and found:
        # the import runs in its own process; meanwhile this one reads and filters the files
        box: list[dict[str, Any]] = []
        thread = threading.Thread(target=lambda: box.append(import_closure(request.python,
                                                                           found)))
        thread.start()
        scanner.prefetch(code.sources)
        thread.join()
        answer = box[0] if box else {"loaded": {}, "failed": {}, "error": "no answer"}
        if cache_file is not None and not answer.get("error"):
            tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(answer))
                os.replace(tmp, cache_file)
            except OSError:
                pass
    if answer is None:
        answer = {"loaded": {}, "failed": {}}
    result["failed"] = answer.get("failed") or {}
    result["causes"] = answer.get("causes") or {}
    if answer.get("error"):
        result["import_error"] = str(answer["error"])[:300]  # it timed out or died
    if "airgap" in answer:
        result["airgap"] = answer["airgap"]  # who tried the network during the import
    loaded: dict[str, str] = answer.get("loaded") or {}
    result["imported"] = len(loaded)
    reached: set[str] = {os.path.normpath(f) for f in loaded.values()}
    # the static walk: failed entries, and the entry/editable/application packages' files
    # the walk covers the stacks' entry packages, the code being worked on, and the packages
    # whose import failed (there the walk is all there is)
    walk_tops = {e.split(".")[0] for e in found if e not in app_imports}
    walk_tops.update(own_tops)
    walk_tops.update(e.split(".")[0] for e in result["failed"])
    seeds: list[tuple[str, str, bool]] = []
    for name in result["failed"]:
        hit = locator.find(name)
        if hit:
            seeds.append((hit[0], name, hit[1]))
    for name, path in loaded.items():
        if name.split(".")[0] in walk_tops:
            seeds.append((os.path.normpath(path), name, path.endswith("__init__.py")))
    editable_files = [s.path for s in code.sources if s.origin in ("editable", "project")]
    for path in editable_files:
        reached.add(path)
        seeds.append((path, _module_name(path, sys_path, code), path.endswith("__init__.py")))
    visited: set[str] = set()
    missing: set[str] = set()
    while seeds:
        path, module, is_package = seeds.pop()
        if path in visited:
            continue
        visited.add(path)
        reached.add(path)
        info = scanner.get(path, want_imports=True, module=module, is_package=is_package,
                           own_top=module.split(".")[0] if request.refs else None)
        for name in (info or {}).get("imports") or []:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                sub = ".".join(parts[:i])
                if sub in loaded:
                    continue
                hit = locator.find(sub)
                if hit is None:
                    if i == 1 and not locator.has(sub) and sub not in sys.builtin_module_names:
                        missing.add(sub)
                    continue
                file, pkg = hit
                reached.add(file)
                # the walk stays inside the entry, editable and application packages: a
                # library they import is reached as far as the real import loaded it
                if sub.split(".")[0] in walk_tops and file not in visited:
                    seeds.append((file, sub, pkg))
    result["walked"] = len(visited)
    result["unresolved_imports"] = sorted(m for m in missing if m not in _stdlib())[:50]
    result["files"] = sorted(reached)
    result["loaded_modules"] = loaded
    result["closure_s"] = round(time.perf_counter() - t0, 3)
    result["import_s"] = answer.get("seconds")
    return result


def _external_imports(code: Code, sys_path: list[str], scanner: Scanner, locator: Locator,
                      own_tops: set[str], refs: bool = True) -> list[str]:
    """The installed modules the application folder and editable code import (the deepest
    name of each import that is a module file: `from librosa import beat` -> librosa.beat)."""
    names: set[str] = set()
    for src in code.sources:
        if src.origin not in ("editable", "project"):
            continue
        module = _module_name(src.path, sys_path, code)
        info = scanner.get(src.path, want_imports=True, module=module,
                           is_package=src.path.endswith("__init__.py"),
                           own_top=module.split(".")[0] if refs else None)
        names.update((info or {}).get("imports") or [])
    stdlib = _stdlib() | set(sys.builtin_module_names)
    out: set[str] = set()
    for name in names:
        top = name.split(".")[0]
        if top in own_tops or top in stdlib or top in SELF or not locator.has(top):
            continue
        parts = name.split(".")
        while len(parts) > 1 and locator.find(".".join(parts)) is None:
            parts.pop()
        out.add(".".join(parts))
    # a module whose submodule is imported too need not be imported on its own
    return sorted(n for n in out if not any(o.startswith(n + ".") for o in out))


def _stdlib() -> frozenset[str]:
    return frozenset(getattr(sys, "stdlib_module_names", ()))


def _module_name(path: str, sys_path: list[str], code: Code) -> str:
    """The dotted name of a file under the search path, a finder mapping or the project."""
    roots = [*(os.path.dirname(v) for v in code.mappings.values()), *sys_path]
    if code.project:
        roots.insert(0, code.project)
    for root in roots:
        root = root.rstrip(os.sep)
        if root and path.startswith(root + os.sep):
            rel = path[len(root) + 1:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            if all(p.isidentifier() for p in rel):
                return ".".join(rel)
    return os.path.basename(path)[:-3]


# --- the index --------------------------------------------------------------------------------

REFS_PROBE = "compat.api-drift"  # the probe that reads the index's `refs`


class _Libraries:
    """Which installed distribution a top-level module belongs to, for the names code takes
    from other libraries: (distribution, version), or None for the standard library, modules
    that are not installed, extension-only modules, the application folder and the file's
    own distribution (a package is consistent with itself)."""

    def __init__(self, code: Code, locator: Locator):
        self.locator = locator
        self.by_path = {s.path: s for s in code.sources}
        self.paths = sorted(self.by_path)
        self.tops: dict[str, Optional[Source]] = {}

    def _source(self, top: str) -> Optional[Source]:
        if top not in self.tops:
            import bisect

            where = self.locator._top(top)
            found: Optional[Source] = None
            if where is not None:
                if where.endswith(".py"):
                    found = self.by_path.get(os.path.normpath(where))
                else:  # a package, or a namespace package: any file below it
                    prefix = os.path.normpath(where) + os.sep
                    i = bisect.bisect_left(self.paths, prefix)
                    if i < len(self.paths) and self.paths[i].startswith(prefix):
                        found = self.by_path[self.paths[i]]
            self.tops[top] = found
        return self.tops[top]

    def installed(self, dotted: str) -> bool:
        """Whether the top-level module of a name is installed (as code the pass sees)."""
        return self._source(dotted.split(".")[0]) is not None

    def owner(self, top: str, user: Source) -> Optional[tuple[str, str]]:
        from tts_doctor import dists

        found = self._source(top)
        if found is None or found.origin == "project" or \
                dists.canonical(found.owner) == dists.canonical(user.owner) or \
                dists.canonical(found.owner) in SELF:
            return None
        return found.owner, found.version


def _loaded_base(dotted: str, loaded: dict[str, str]) -> Optional[str]:
    """The longest prefix of a dotted name that the closure import loaded as a module: the
    module the probe may import to look the rest up (None: nothing of it loaded)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in loaded:
            return prefix
    return None


def build_index(request: Request) -> dict[str, Any]:
    """Discover, close over the entries, scan once: the usage index (a JSON-able dict)."""
    t0 = time.perf_counter()
    sys_path = target_sys_path(request.python)
    project = default_project(request.project)
    code = discover(sys_path, project)
    scanner = Scanner(request.use_cache)
    from tts_doctor import dists

    canonical = functools.lru_cache(maxsize=None)(dists.canonical)
    scanner.owners = {s.path: canonical(s.owner) for s in code.sources}
    locator = Locator(sys_path, code.mappings, [project] if project else [])
    reach = closure(request, sys_path, code, locator, scanner)
    reached = set(reach.pop("files"))
    loaded: dict[str, str] = reach.pop("loaded_modules", None) or {}
    known = reach["known"]
    usages: list[list[Any]] = []
    unparsed: list[str] = []
    refs: list[list[Any]] = []
    libraries = _Libraries(code, locator)
    loaded_files = set(loaded.values())
    skipped = 0
    for src in code.sources:
        inside = not known or src.path in reached
        # the names reached code takes from other libraries (compat.api-drift): only where
        # the closure is known (a use elsewhere may never run)
        own = _module_name(src.path, sys_path, code).split(".")[0] \
            if known and inside and request.refs else None
        if not inside and src.path in scanner.settled:
            continue  # no group wants it: its scan is `{"hits": []}`
        useful = None if own is None else \
            (lambda tops, src=src: any(libraries.owner(t, src) is not None for t in tops))
        info = scanner.get(src.path, deep=inside, own_top=own, useful=useful)
        if info is None:
            continue
        if info.get("unparsed"):
            unparsed.append(f"{src.path}: {info['unparsed']}")
        for line, dotted, is_guarded in info.get("hits") or []:
            hit = inside
            usages.append([src.owner, src.version, src.origin, src.path, line, dotted,
                           is_guarded, hit if known else None])
        if own is not None:
            # a function that first imports a library that is not installed stops there (or
            # returns early before it): the names it uses after that import are not judged
            after: dict[int, int] = {}
            for line, dotted, kind, _, _, function in info.get("refs") or []:
                if function and kind != "attr" and not libraries.installed(dotted):
                    after[function] = min(line, after.get(function, line))
            for line, dotted, kind, scope, is_guarded, function in info.get("refs") or []:
                target = libraries.owner(dotted.split(".")[0], src)
                if target is None:
                    continue
                if function in after and line > after[function]:
                    skipped += 1
                    continue
                refs.append([src.owner, src.version, src.origin, src.path, line, dotted, kind,
                             scope, is_guarded, src.path in loaded_files,
                             _loaded_base(dotted, loaded), target[0], target[1]])
    scanner.cache.save()
    reach["reached_files"] = len(reached)
    reach["refs_after_missing_import"] = skipped
    reach["unparsed"] = unparsed[:10]  # files this interpreter's grammar cannot read
    reach["unparsed_count"] = len(unparsed)
    reach["reached_owners"] = sorted({s.owner for s in code.sources if s.path in reached})
    reach["reached_tops"] = sorted({e.split(".")[0] for e in reach["entries"]})
    return {
        "version": INDEX_VERSION, "reach": reach, "usages": usages, "refs": refs,
        "unparsed": unparsed[:50], "unparsed_count": len(unparsed),
        "scanned_files": len(code.sources), "parsed_now": scanner.parsed,
        "editable": code.editable, "unowned": code.unowned, "project": code.project,
        "python": request.python or sys.executable, "seconds": round(time.perf_counter() - t0, 3),
    }


# probes outside those categories that read the index (the closure import's air-gap audit)
USAGE_PROBES = frozenset({"model.offline-import", "model.entry-import", "frontend.espeak"})
USAGE_CATEGORIES = frozenset({"numpy", "scipy", "compat", "torchaudio", "numba", "torch",
                              "audio"})


class Handle:
    """A usage index being built for one check run: in a process of its own (the doctor's
    interpreter, an isolation.Child: it dies with the doctor), or, for a warm check or where
    no process can start, in a thread of the doctor's process."""

    def __init__(self, folder: Optional[str], worker: Any, saved: dict[str, Optional[str]],
                 written: Optional[threading.Event] = None):
        self.folder = folder  # the temporary folder of the index file (isolation.temp_dir)
        self.worker = worker  # an isolation.Child, a threading.Thread or None
        self.saved = saved
        # for an index built in a process of its own: set once it is written (or failed)
        self.written = written

    def close(self) -> None:
        if isinstance(self.worker, threading.Thread):
            self.worker.join(timeout=1)
        elif self.worker is not None:
            self.worker.close()  # done, or no probe waited for it
        for var, value in self.saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        if self.folder:
            from tts_doctor import isolation

            isolation.remove_temp(self.folder)


def _write(path: str, data: dict[str, Any]) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        Path(path + ".done").touch()
    except OSError:
        pass


def _built(request: Request) -> dict[str, Any]:
    try:
        return build_index(request)
    except Exception as exc:  # the probes fall back to their own scan
        import traceback

        return {"error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-2000:]}


def child(fd: int, path: str) -> None:
    """The index process (`start`): every probe module's detectors, then the index of the
    request in $TTS_DOCTOR_USAGE_REQUEST, written to `path`; "done" on the doctor's pipe."""
    from tts_doctor import isolation, registry

    send = isolation.child_channel(fd)
    # a SIGTERM from the doctor (Child.kill's grace) stops the closure import and removes
    # its folder before this process ends
    isolation.install_handlers()
    registry.load_all()
    _write(path, _built(Request.from_environment()))
    send({"event": "done"})


# argv: the pipe's descriptor (isolation.Child), the index path, the doctor's sys.path
_CHILD = ("import json, sys\nsys.path[:] = json.loads(sys.argv[3])\n"
          "from tts_doctor import isolation\nisolation.die_with_parent()\n"
          "from tts_doctor.usage import child\nchild(int(sys.argv[1]), sys.argv[2])\n")
INDEX_TIMEOUT = 900.0


def _spawn(path: str, written: threading.Event) -> Any:
    """The index process, and a thread that writes an error index if it ends without one (the
    probes waiting for it then fall back to their own scan) and sets `written` when there is
    an index; None if it cannot start."""
    from tts_doctor import isolation

    proc = isolation.Child(sys.executable, _CHILD, (path, json.dumps(sys.path)),
                           stdin=subprocess.DEVNULL, grace=2.0)
    try:
        proc.start()
    except isolation.ChildDied:
        return None

    def watch() -> None:
        why = ""
        try:
            proc.next(INDEX_TIMEOUT, who="the index process")
        except isolation.ChildDied as exc:
            why = exc.last_words()
        except isolation.ChildStalled:
            why = f"it did not finish in {INDEX_TIMEOUT:g} s"
        # a doctor that is stopping killed it: no error index, which would send the probes
        # waiting for it to build one of their own (and start closure imports) meanwhile
        if not os.path.exists(path + ".done") and not isolation.stopping():
            _write(path, {"error": f"the index process ended without an index: {why}"[:500]})
        written.set()
        proc.close()

    # the watcher waits; the kernel's parent-death signal follows the thread that started
    # the process, which is the caller's (it stays in `check` until the run is over)
    threading.Thread(target=watch, daemon=True, name="tts-doctor-usage-watch").start()
    return proc


def start(specs: list[Any], *, recipe: Optional[dict[str, Any]] = None,
          python: Optional[str] = None, project: Optional[str] = None,
          in_thread: bool = False) -> Handle:
    """Build the usage index beside the probes: a process of the doctor's interpreter (with a
    core of its own, not competing for this process's GIL with the in-process probes and the
    judges) writes it to a temporary file named in $TTS_DOCTOR_USAGE_INDEX (inherited by the
    workers), and the usage probes wait for it (`scan.index`). `in_thread`: a thread of this
    process builds it instead, for a warm check (the facts memo judges most probes, the
    per-file cache answers for most files: starting a process would cost more than the GIL).
    Nothing is started when no selected probe scans code."""
    saved = {v: os.environ.get(v) for v in (scan.INDEX_ENV, REQUEST_ENV)}
    scan._INDEX.clear()
    entries = tuple(recipe.get("entry") or ()) if recipe else ()
    refs = any(s.id == REFS_PROBE for s in specs)
    request = Request(python, entries or None, project, refs=refs)
    os.environ[REQUEST_ENV] = json.dumps({"python": python, "entries": list(entries),
                                          "project": project, "refs": refs})
    if not any(s.category in USAGE_CATEGORIES or s.id in USAGE_PROBES for s in specs):
        return Handle(None, None, saved)
    from tts_doctor import isolation

    # in a folder of the doctor's: removed on every exit path it sees, swept after kill -9
    try:
        folder = isolation.temp_dir("usage")
    except OSError:  # no temporary folder: the probes build the index themselves
        return Handle(None, None, saved)
    path = os.path.join(folder, "index.json")
    os.environ[scan.INDEX_ENV] = path
    written = threading.Event()
    proc = None if in_thread else _spawn(path, written)
    if proc is not None:
        return Handle(folder, proc, saved, written)
    thread = threading.Thread(target=lambda: _write(path, _built(request)), daemon=True,
                              name="tts-doctor-usage")
    thread.start()
    return Handle(folder, thread, saved)
