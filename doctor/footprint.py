"""What a collector's facts depend on, recorded where the collector runs (the worker).

The facts memo (tts_doctor.memo) keeps a memo probe's facts between checks and judges them
again only while nothing they were observed from has changed. This module records that
"something": every file of code the process has loaded (`sys.modules`, the shared libraries
mapped executable in /proc/self/maps; not data files mapped for writing, such as a database
another process rewrites), every file a collector opened for reading and every folder it
listed (the audit events `open`, `os.listdir` and `os.scandir`, Python 3.8+), and the
paths a collector declares with `depends` (a file it only tested for existence, a data
folder). The paths go back to the doctor's process with the facts, which stats them
(tts_doctor.memo).

What cannot be known from files makes the facts volatile, never memoized: a collector that
starts a program other than the few whose answer only the system's files decide (ldconfig,
the C compiler and linker `ctypes.util.find_library` asks, c++filt) or their own binary
(ffmpeg, sox, espeak-ng, nvcc, ninja: the binary joins the footprint), or that looks up a
name or connects a socket.
On Python 3.7 (no audit hooks) every collection is volatile.

Runs inside the diagnosed interpreter: standard library of CPython 3.7+ only.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

# programs whose answer the files of the system decide (covered by the memo's system stamp)
KNOWN_PROGRAMS = frozenset({"ldconfig", "gcc", "cc", "ld", "c++filt", "uname",
                            "x86_64-linux-gnu-gcc", "aarch64-linux-gnu-gcc"})
# tools whose answer (a version, a decoded test file the probe wrote) their own binary decides:
# the binary joins the footprint
TOOLS = frozenset({"ffmpeg", "ffprobe", "avconv", "avprobe", "sox", "espeak", "espeak-ng", "nvcc",
                   "ninja"})
# a socket that reaches out (a name lookup, a connection) reads state no file holds
VOLATILE_EVENTS = ("socket.connect", "socket.getaddrinfo", "os.system",
                   "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "pty.spawn", "urllib.Request")
SKIP_PREFIXES = ("/proc/", "/sys/", "/dev/")
# "1" or "1:SUPPORT": the worker records footprints (the memo is on), SUPPORT is the per-run
# folder the doctor's package is linked from (not a dependency of any fact)
ENV = "TTS_DOCTOR_FOOTPRINT"


class _State:
    def __init__(self) -> None:
        self.hooked = False
        self.paths: list[str] = []
        self.seen: set[str] = set()
        self.modules_seen = 0
        self.volatile: Optional[str] = None
        self.index = False
        self.skip: tuple[str, ...] = ()
        self.index_path = ""


_S = _State()


def _add(path: Any) -> None:
    if isinstance(path, bytes):
        try:
            path = os.fsdecode(path)
        except Exception:
            return
    if not isinstance(path, str) or not path:
        return
    if not os.path.isabs(path):
        path = os.path.abspath(path)
    if path in _S.seen:
        return
    if _S.index_path and path.startswith(_S.index_path):
        _S.index = True
        return
    if path.startswith(SKIP_PREFIXES) or (_S.skip and path.startswith(_S.skip)):
        return
    _S.seen.add(path)
    _S.paths.append(path)


def _program(args: Any) -> str:
    try:
        first = args[0] if isinstance(args, (list, tuple)) else args
        return os.fsdecode(first).split()[0]
    except Exception:
        return ""


def _which(program: str) -> Optional[str]:
    if os.sep in program:
        return program if os.path.isfile(program) else None
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder, program)
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _hook(event: str, args: tuple) -> None:
    try:
        if event == "open":
            mode = args[1] if len(args) > 1 else "r"
            if isinstance(mode, int):  # os.open flags
                if mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                    return
            elif mode and any(c in str(mode) for c in "wax+"):
                return
            _add(args[0])
        elif event in ("os.listdir", "os.scandir"):
            _add(args[0] if args and args[0] is not None else ".")
        elif event == "subprocess.Popen":
            program = _program(args[0]) or _program(args[1] if len(args) > 1 else "")
            name = os.path.basename(program)
            if name in TOOLS:
                found = _which(program)  # absent: the PATH folders' mtimes are stamped
                if found:
                    _add(found)
            elif name not in KNOWN_PROGRAMS and _S.volatile is None:
                _S.volatile = "started " + (name or "a program")
        elif event.startswith(VOLATILE_EVENTS) and _S.volatile is None:
            _S.volatile = event
    except Exception:  # an audit hook must never break the code it watches
        pass


def start(skip: tuple[str, ...] = ()) -> None:
    """Begin recording in this process (idempotent): paths under `skip` (the doctor's own
    files) are not dependencies of the facts."""
    if not _S.hooked:
        _S.skip = tuple(skip)
        _S.index_path = os.environ.get("TTS_DOCTOR_USAGE_INDEX", "")
        if hasattr(sys, "addaudithook"):
            sys.addaudithook(_hook)
            _S.hooked = True
        else:
            _S.hooked = True
            _S.volatile = "Python 3.7 has no audit hooks"


def recording() -> bool:
    """Whether `start` was called in this process."""
    return _S.hooked


ACCESS = "access:"  # a path whose permissions decide, not its content (tts_doctor.memo)


def depends(path: str, depth: int = 0, access: bool = False) -> None:
    """Declare that the facts depend on `path` (a file or folder, existing or not) and, for a
    folder, on its subfolders down to `depth` levels: what appears or vanishes there changes
    a folder's mtime. `access=True`: only on whether it exists, its mode and its owner (a
    folder tested for writability by creating a file in it, whose mtime that test changes)."""
    if not _S.hooked:
        return
    if access:
        path = os.path.abspath(path)
        if path not in _S.seen:
            _S.seen.add(path)
            _S.paths.append(ACCESS + path)
        return
    for p in folders(path, depth):
        _add(p)


def folders(path: str, depth: int) -> list[str]:
    """`path`, then its subfolders level by level down to `depth` levels (symlinks not
    followed; an unreadable folder has none)."""
    out = [path]
    level = [path]
    for _ in range(depth):
        below: list[str] = []
        for folder in level:
            try:
                with os.scandir(folder) as it:
                    below += [e.path for e in it if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
        out += below
        level = below
    return out


def volatile(reason: str) -> None:
    """Mark the facts being collected as volatile (never memoized)."""
    if _S.volatile is None:
        _S.volatile = reason


def _modules() -> None:
    mods = list(sys.modules.values())
    for m in mods[_S.modules_seen:] if len(mods) >= _S.modules_seen else mods:
        f = getattr(m, "__file__", None)
        if f:
            _add(f)
    _S.modules_seen = len(mods)


def _mapped() -> None:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 5)
                # code only: an executable mapping (a data file mapped for writing, such as
                # a SQLite -shm file, changes with every run and decides nothing)
                if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/"):
                    _add(parts[5].strip().replace(" (deleted)", ""))
    except OSError:
        pass


def take() -> dict[str, Any]:
    """What the collection since the last `take` added: new paths (the process's whole
    footprint grows as a list; a collector's is the list up to its own `take`), whether the
    usage index has been read (by this collection or an earlier one: the process keeps what
    it read), and why this collection's facts are volatile, if they are."""
    _modules()
    _mapped()
    out = {"paths": _S.paths, "index": _S.index, "volatile": _S.volatile}
    _S.paths = []
    _S.volatile = None if hasattr(sys, "addaudithook") else "Python 3.7 has no audit hooks"
    return out
