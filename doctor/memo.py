"""The facts memo: a memo probe's facts are kept between checks and judged again, without
observing anew, while nothing they were observed from has changed.

A warm `tts-doctor check` spends most of its time importing what the probes observe (torch
alone takes as long as `python -m torch.utils.collect_env`). Yet between two checks of an
unchanged environment every one of those observations gives the same answer. The memo keeps
the facts of probes declared `memo=True` (facts that installed code and files decide; never a
GPU's state, a data folder a probe does not declare, or a program's run) in $TTS_DOCTOR_CACHE,
under a key of everything they can depend on:

- **the base stamp**, for every probe: the memo format, the doctor's version and the stat of
  its own source files; the diagnosed interpreter (its facts, its executable's stat, the
  current folder); every sys.path folder's mtime and the mtime of each `*.dist-info`,
  `*.egg-info`, `*.egg-link` and `*.pth` in it (pip adds, removes or rewrites them on every
  install, uninstall and upgrade); a digest of the environment variables (values never
  stored); the system: /etc/ld.so.cache, the library folders, the PATH folders, the NVIDIA
  driver's version file and the GPU device nodes, the kernel release;
- **the footprint**, for an isolated probe: every file its worker process had loaded or
  opened and every folder it listed by the end of its collection, and the paths it declared
  (tts_doctor.footprint), each with its size and mtime (or its absence);
- **the probe's context** (recipe and options) and, for a probe that read the usage index,
  the index's content.

Any change and the probe observes again. A probe that started an unknown program, looked up
a name or connected a socket is never kept, nor are facts that hold a secret. A finding
judged from the memo says so in the report (`memo.reused`); `check --fresh` observes
everything anew. On a machine with a GPU device node the torch, CUDA, VRAM, torchaudio and
ONNX Runtime probes always observe (the device's state is not a file).
$TTS_DOCTOR_MEMO_DEBUG=1 says on stderr why a probe's facts were not kept.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

from tts_doctor.footprint import ACCESS
from tts_doctor.registry import Context, ProbeSpec

MEMO_VERSION = 1
DEBUG_ENV = "TTS_DOCTOR_MEMO_DEBUG"  # set: say on stderr why a probe's facts are not kept
# environment variables that differ between two runs of the same check and decide nothing
VOLATILE_ENV = frozenset({
    "PWD", "OLDPWD", "SHLVL", "_", "TERM", "COLUMNS", "LINES", "DISPLAY", "WINDOWID",
    "XDG_RUNTIME_DIR", "TMUX", "TMUX_PANE", "STY", "WINDOW", "HISTFILE", "HISTSIZE", "PS1",
    "PS2", "PS4", "PROMPT_COMMAND", "COLORTERM", "LS_COLORS", "MAIL", "INVOCATION_ID",
    "JOURNAL_STREAM", "RANDOM", "SECONDS", "TTS_DOCTOR_USAGE_INDEX", "TTS_DOCTOR_CACHE",
    "TTS_DOCTOR_MEMO_DEBUG",
    "PYTEST_CURRENT_TEST", "GITHUB_RUN_ID", "GITHUB_RUN_NUMBER", "GITHUB_RUN_ATTEMPT",
    "GITHUB_JOB", "GITHUB_ACTION", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_ENV",
    "GITHUB_STATE", "GITHUB_PATH", "RUNNER_TEMP", "CI_JOB_ID", "CI_PIPELINE_ID",
})
VOLATILE_ENV_PREFIXES = ("SSH_", "XDG_SESSION_", "TERM_PROGRAM", "PYTEST_XDIST_", "KITTY_",
                         "VSCODE_", "WT_", "ITERM_")
LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
                "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/cuda/lib64")
DEVICE_GLOBS = ("/dev/nvidia*", "/dev/kfd", "/dev/dri/renderD*")
DEVICE_CATEGORIES = frozenset({"torch", "cuda", "vram", "torchaudio", "onnxruntime"})
TIMING_KEYS = frozenset({"seconds", "parsed_now", "import_s", "closure_s"})
Stamp = list  # [path, size, mtime_ns, ctime_ns], [ACCESS + path, mode, uid, gid] or [path, None]


def _stat(path: str) -> Stamp:
    if path.startswith(ACCESS):  # tts_doctor.footprint.depends(..., access=True)
        try:
            st = os.stat(path[len(ACCESS):])
        except (OSError, ValueError):
            return [path, None]
        return [path, st.st_mode, st.st_uid, st.st_gid]
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return [path, None]
    return [path, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _mtime(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_mtime_ns
    except (OSError, ValueError):
        return None


def environment_digest(environ: Optional[dict[str, str]] = None) -> str:
    """A digest of the variables that can change what a probe observes (values never kept)."""
    env = os.environ if environ is None else environ
    kept = sorted((k, v) for k, v in env.items()
                  if k not in VOLATILE_ENV and not k.startswith(VOLATILE_ENV_PREFIXES))
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()


def _doctor_stamp() -> list[Any]:
    import tts_doctor

    root = Path(tts_doctor.__file__).resolve().parent
    out: list[Any] = [tts_doctor.__version__]
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".json", ".toml")):
                out.append(_stat(os.path.join(folder, name)))
    return out


def _path_stamp(sys_path: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for entry in sys_path:
        out.append([entry, _mtime(entry)])
        try:
            with os.scandir(entry) as it:
                names = sorted((e.name, e.path) for e in it
                               if e.name.endswith((".dist-info", ".egg-info", ".egg-link",
                                                   ".pth")))
        except (OSError, ValueError):
            continue
        out += [[name, _mtime(path)] for name, path in names]
    return out


def gpu_nodes() -> list[str]:
    """The GPU device nodes of this machine (NVIDIA, AMD ROCm)."""
    return sorted(p for pattern in DEVICE_GLOBS for p in glob.glob(pattern))


def _system_stamp() -> list[Any]:
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8", errors="replace") as fh:
            driver = fh.read(4096)
    except OSError:
        driver = None
    paths = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    try:  # a folder remounted read-only changes what a write test finds
        with open("/proc/self/mountinfo", "rb") as fh:
            mounts = hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        mounts = None
    return [_stat("/etc/ld.so.cache"), mounts, [[d, _mtime(d)] for d in LIBRARY_DIRS],
            [[d, _mtime(d)] for d in paths], driver, gpu_nodes(), list(os.uname())]


def base_key(target: dict[str, Any]) -> str:
    """The base stamp's digest: what every memo probe's facts may depend on."""
    executable = os.path.realpath(str(target.get("executable") or ""))
    blob = json.dumps([MEMO_VERSION, _doctor_stamp(), target, _stat(executable), os.getcwd(),
                       _path_stamp(tuple(target.get("sys_path") or ())), environment_digest(),
                       _system_stamp()], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _strip_timing(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_timing(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def index_digest(wait: float = 300.0) -> Optional[str]:
    """A digest of this run's usage index without its timings (None when there is none)."""
    from tts_doctor import scan

    data = scan.written_index(wait)
    if data is None:
        return None
    blob = json.dumps(_strip_timing(data), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _context_digest(ctx: Context) -> str:
    return hashlib.sha256(json.dumps(ctx.to_dict(), sort_keys=True, default=str).encode()
                          ).hexdigest()[:32]


def eligible(spec: ProbeSpec) -> bool:
    """Whether a probe's facts may come from the memo on this machine."""
    if not spec.memo or spec.collect is None:
        return False
    return not (spec.category in DEVICE_CATEGORIES and gpu_nodes())


class Session:
    """One worker process's footprint as it grows: the stamps of the paths it reported."""

    def __init__(self, memo: Memo):
        self.memo = memo
        # unique across runs: a footprint id of an earlier run may still be referenced
        self.id = f"{os.getpid()}-{time.time_ns()}-{id(self)}"
        self.stamps: list[Stamp] = []
        self.index = False

    def add(self, footprint: Optional[dict[str, Any]]) -> None:
        if not footprint:
            return
        self.stamps += [_stat(p) for p in footprint.get("paths") or () if isinstance(p, str)]
        self.index = self.index or bool(footprint.get("index"))


class Memo:
    """The memo of one diagnosed interpreter, in $TTS_DOCTOR_CACHE/memo."""

    def __init__(self, path: Path, base: str, read: bool = True):
        self.path = path
        self.base = base
        self._lock = threading.Lock()
        self._index: Optional[str] = None
        self._index_known = False
        self.reused: list[str] = []
        data: dict[str, Any] = {}
        if read:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
        if not isinstance(data, dict) or data.get("version") != MEMO_VERSION \
                or data.get("base") != base:
            data = {}
        self.probes: dict[str, Any] = dict(data.get("probes") or {})
        self.footprints: dict[str, list[Stamp]] = dict(data.get("footprints") or {})
        self._valid_upto: dict[str, int] = {}
        self.changed = False
        # kept facts of an earlier check with this base stamp: this check is a warm one
        self.warm = bool(self.probes)

    @classmethod
    def open(cls, target: dict[str, Any], *, read: bool = True) -> Optional[Memo]:
        """The memo for this interpreter, or None when there is no writable cache."""
        from tts_doctor import scan

        root = scan.cache_dir()
        if root is None:
            return None
        folder = root.parent / "memo"
        try:
            folder.mkdir(exist_ok=True)
        except OSError:
            return None
        name = hashlib.sha256(json.dumps([target.get("executable"), target.get("sys_path")],
                                         default=str).encode()).hexdigest()[:24]
        return cls(folder / f"{name}.json", base_key(target), read)

    def index(self) -> Optional[str]:
        """The digest of this run's usage index (waits for it; not under the lock, so that
        the other lanes' lookups go on meanwhile)."""
        if not self._index_known:
            digest = index_digest()
            with self._lock:
                if not self._index_known:
                    self._index, self._index_known = digest, True
        return self._index

    def _valid(self, fid: str, n: int) -> bool:
        stamps = self.footprints.get(fid)
        if stamps is None or n > len(stamps):
            return False
        upto = self._valid_upto.get(fid, 0)
        while upto < n:
            stamp = stamps[upto]
            now = _stat(stamp[0])
            if now != stamp:
                if os.environ.get(DEBUG_ENV):
                    print(f"tts-doctor memo: changed since kept: {stamp} -> {now}",
                          file=sys.stderr)
                break
            upto += 1
        self._valid_upto[fid] = upto
        return upto >= n

    def lookup(self, spec: ProbeSpec, ctx: Context) -> Optional[dict[str, Any]]:
        """The kept facts of a probe, if they may be judged again now; else None."""
        if not eligible(spec):
            return None
        with self._lock:
            entry = self.probes.get(spec.id)
            if not isinstance(entry, dict) or entry.get("context") != _context_digest(ctx):
                return None
            if entry.get("footprint") is not None and not self._valid(
                    str(entry["footprint"]), int(entry.get("count") or 0)):
                return None
        if entry.get("index") is not None and entry["index"] != self.index():
            return None
        with self._lock:
            self.reused.append(spec.id)
        return entry

    def keep(self, spec: ProbeSpec, ctx: Context, facts: Any, seconds: float, output: str,
             session: Optional[Session], footprint: Optional[dict[str, Any]]) -> None:
        """Keep a probe's fresh facts (after `session.add` of its footprint), unless they are
        volatile or hold a secret (tts_doctor.redact.holds_secret)."""
        if not eligible(spec):
            return
        volatile = footprint.get("volatile") if footprint else None
        if session is not None and footprint is None:
            volatile = "no footprint"
        if volatile:
            if os.environ.get(DEBUG_ENV):
                print(f"tts-doctor memo: {spec.id} not kept: {volatile}", file=sys.stderr)
            with self._lock:
                if self.probes.pop(spec.id, None) is not None:
                    self.changed = True
            return
        from tts_doctor.redact import holds_secret

        if holds_secret(json.dumps([facts, output])):
            if os.environ.get(DEBUG_ENV):
                print(f"tts-doctor memo: {spec.id} not kept: a secret", file=sys.stderr)
            return
        if session is not None:
            index = session.index
        else:  # a probe of this process: whether anything here has read the index yet
            from tts_doctor import scan

            index = "data" in scan._INDEX
        entry = {"context": _context_digest(ctx), "facts": facts, "collect_s": round(seconds, 4),
                 "output": output, "observed": time.time(),
                 "index": self.index() if index else None,
                 "footprint": session.id if session is not None else None,
                 "count": len(session.stamps) if session is not None else 0}
        if index and entry["index"] is None:
            return
        with self._lock:
            if session is not None:
                self.footprints[session.id] = session.stamps
            self.probes[spec.id] = entry
            self.changed = True

    def save(self) -> None:
        """Write the memo (atomically; a failure only loses the memo)."""
        if not self.changed:
            return
        from tts_doctor import atomic

        with self._lock:
            used = {str(e.get("footprint")) for e in self.probes.values()
                    if isinstance(e, dict) and e.get("footprint") is not None}
            data = {"version": MEMO_VERSION, "base": self.base, "probes": self.probes,
                    "footprints": {k: v for k, v in self.footprints.items() if k in used}}
            text = json.dumps(data)
        try:
            atomic.write_text(self.path, text)
        except Exception:  # the memo is an optimisation: never a reason for a run to fail
            pass
