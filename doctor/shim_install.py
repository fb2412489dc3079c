"""Install, remove and inspect the shims of an environment: one `.pth` file, nothing else.

`install(names, python)` writes `tts_doctor_shims.pth` into the target interpreter's purelib
(site-packages). The file holds a comment with what was installed (JSON) and one `import`
line that runs at every interpreter start-up of that environment: it registers the lazy
post-import hooks of `shims._hooks` (whose source it embeds, so it needs nothing importable
to start) and nothing else; SciPy is patched when user code imports it. The shim code itself
is loaded from the folder recorded in the file (this doctor's `shims` package) without adding
anything to that environment's `sys.path` (see shims/_hooks.py for why and how).

Every write happens under an exclusive `flock` on the site-packages folder itself (so no
lock file is left behind) and is atomic (doctor.atomic: temporary file + fsync + rename): two
concurrent installs leave one well-formed file, and a `kill -9` at any point leaves the old
state or the new one (at worst a stray `.tts_doctor_shims.pth.*.tmp`, which site ignores and
the next install or uninstall removes). `uninstall` removes the file, so the listing and
hashes of site-packages are what they were before install.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tts_doctor import __version__, atomic

PTH_NAME = "tts_doctor_shims.pth"
HEADER = "# tts-doctor shims: written by `tts-doctor shims install`; " \
         "remove with `tts-doctor shims uninstall`."
META_PREFIX = "# tts-doctor-meta: "
FORMAT = 1
LOCK_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 180.0


class ShimError(Exception):
    """Installing or removing shims failed; the message says why and what to do."""


class UsageError(ShimError):
    """The request itself is wrong (unknown shim name, not an interpreter)."""


def shims_root() -> Path:
    """The folder of this doctor's `shims` package (recorded in the .pth)."""
    from tts_doctor import shims

    return Path(shims.__file__).resolve().parent


def hooked_shims() -> dict[str, str]:
    from tts_doctor import shims

    return dict(shims.HOOKED)


def library_shims() -> dict[str, str]:
    from tts_doctor import shims

    return dict(shims.LIBRARY)


def hooks_source() -> str:
    return (shims_root() / "_hooks.py").read_text(encoding="utf-8")


def _boot() -> tuple[str, str, list[str]]:
    from tts_doctor.shims import _hooks

    return _hooks.BOOT, _hooks.LOAD, sorted(_hooks.WATCH)


@dataclass(frozen=True)
class Target:
    """The environment shims are installed into."""

    python: str
    purelib: Path
    version: tuple[int, int]

    @property
    def pth(self) -> Path:
        return self.purelib / PTH_NAME


_INFO = ("import json, sys, sysconfig; print(json.dumps({'purelib': "
         "sysconfig.get_paths()['purelib'], 'executable': sys.executable, "
         "'version': list(sys.version_info[:2])}))")


def target(python: Optional[str] = None) -> Target:
    """The running interpreter's environment, or the one of the interpreter at `python`."""
    # abspath, not realpath: a venv's python is a symlink to the base interpreter, and
    # resolving it would name the wrong environment
    if python is None or os.path.abspath(python) == os.path.abspath(sys.executable):
        return Target(sys.executable, Path(sysconfig.get_paths()["purelib"]),
                      tuple(sys.version_info[:2]))  # type: ignore[arg-type]
    try:
        proc = subprocess.run([python, "-I", "-c", _INFO], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "TTS_DOCTOR_SHIMS": "0"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run {python}: {exc}") from None
    if proc.returncode != 0:
        raise UsageError(f"{python} is not a working Python interpreter: "
                         f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    version = tuple(info["version"])
    if version < (3, 9):
        raise UsageError(f"{python} is Python {version[0]}.{version[1]}; the shims need 3.9 "
                         "or newer")
    return Target(os.path.abspath(python), Path(info["purelib"]),
                  version)  # type: ignore[arg-type]


# --- the .pth file ----------------------------------------------------------------------------

def render(shims: list[str], pth: Path, root: Optional[Path] = None) -> str:
    """The complete text of the .pth file at `pth` for these shims."""
    root = root or shims_root()
    source = hooks_source()
    meta = {"format": FORMAT, "doctor": __version__, "shims": sorted(shims),
            "root": str(root), "hooks_sha256": hashlib.sha256(source.encode()).hexdigest()}
    boot, load, watch = _boot()
    # One line (site runs lines starting with "import"): BOOT registers a lazy finder; the
    # hooks are read from ROOT and compiled only when a watched SciPy module is imported.
    glob = {"__name__": "_tts_doctor_shims_boot", "SHIMS": sorted(shims), "ROOT": str(root),
            "WATCH": watch, "PTH": str(pth), "LOAD": load}
    line = f"import sys; exec({boot!r}, {glob!r})"
    return f"{HEADER}\n{META_PREFIX}{json.dumps(meta, sort_keys=True)}\n{line}\n"


def parse(text: str) -> Optional[dict[str, Any]]:
    """The metadata of a .pth written by `render`, or None if it is not one."""
    lines = text.splitlines()
    meta_lines = [ln for ln in lines if ln.startswith(META_PREFIX)]
    if not meta_lines or not any(ln.startswith("import sys; exec(") for ln in lines):
        return None
    try:
        meta = json.loads(meta_lines[0][len(META_PREFIX):])
    except json.JSONDecodeError:
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("shims"), list):
        return None
    return meta


def read(t: Target) -> Optional[str]:
    """The current text of the target's .pth, or None when there is none."""
    return _read(t.pth)


def _read(pth: Path) -> Optional[str]:
    try:
        return pth.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


# --- locking and writing ----------------------------------------------------------------------

@contextlib.contextmanager
def locked(folder: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """An exclusive flock on `folder` itself: serialises writers, leaves no lock file."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise ShimError(f"cannot open {folder}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise ShimError(f"another process has held the lock on {folder} for "
                                    f"{timeout:g} s (a shims install or uninstall); try "
                                    "again") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _check_writable(folder: Path) -> None:
    if not os.access(folder, os.W_OK):
        raise ShimError(f"{folder} is not writable (read-only site-packages); nothing was "
                        "written. Run as the environment's owner, or activate the shims in "
                        "code: import shims; shims.activate()")


def _clean_stale(folder: Path) -> list[str]:
    """Remove temporary files a killed writer left (ours only: .tts_doctor_shims.pth.*.tmp)."""
    removed = []
    for stale in folder.glob(f".{PTH_NAME}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(str(stale))
    return removed


def _write(pth: Path, text: Optional[str]) -> None:
    try:
        if text is None:
            pth.unlink()
            with contextlib.suppress(OSError):
                dir_fd = os.open(pth.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        else:
            atomic.write_text(pth, text)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ShimError(f"cannot write {pth}: {exc.strerror or exc} (read-only "
                        "site-packages?); nothing was changed") from None


@dataclass
class Change:
    """What one install/uninstall did to the .pth: its text before and after (None: absent)."""

    path: str
    before: Optional[str]
    after: Optional[str]
    shims: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _validate(names: list[str]) -> list[str]:
    hooked, library = hooked_shims(), library_shims()
    bad = [n for n in names if n not in hooked]
    if bad:
        lib = [n for n in bad if n in library]
        if lib:
            raise UsageError(f"{lib[0]!r} is not installed into an environment, it is "
                             f"{library[lib[0]]}")
        raise UsageError(f"unknown shim(s): {', '.join(bad)} (valid: {', '.join(hooked)})")
    return sorted(set(names))


def planned(t: Target, names: Optional[list[str]]) -> tuple[Optional[str], str, list[str]]:
    """(current text, text install would write, resulting shims) without writing anything."""
    chosen = _validate(list(names) if names else list(hooked_shims()))
    before = read(t)
    meta = parse(before) if before else None
    current = list(meta["shims"]) if meta else []
    result = sorted(set(current) | set(chosen))
    return before, render(result, t.pth), result


def install(names: Optional[list[str]] = None, python: Optional[str] = None) -> Change:
    """Add shims (all hooked ones by default) to the target environment's .pth."""
    t = target(python)
    _validate(list(names) if names else [])
    _check_writable(t.purelib)
    with locked(t.purelib):
        cleaned = _clean_stale(t.purelib)
        before, text, result = planned(t, names)
        if before is not None and parse(before) is None:
            raise ShimError(f"{t.pth} exists but was not written by tts-doctor (or is "
                            "damaged); remove it by hand after checking what it is")
        if before != text:
            _write(t.pth, text)
    return Change(str(t.pth), before, text, result, cleaned)


def uninstall(names: Optional[list[str]] = None, python: Optional[str] = None) -> Change:
    """Remove shims (all by default); the .pth goes when none is left."""
    t = target(python)
    if names:
        _validate(names)
    before = read(t)
    if before is None and not list(t.purelib.glob(f".{PTH_NAME}.*.tmp")):
        return Change(str(t.pth), None, None)
    _check_writable(t.purelib)
    with locked(t.purelib):
        cleaned = _clean_stale(t.purelib)
        before = read(t)
        meta = parse(before) if before else None
        if before is not None and meta is None:
            raise ShimError(f"{t.pth} was not written by tts-doctor (or is damaged); "
                            "not touching it")
        left = sorted(set(meta["shims"]) - set(names)) if (meta and names) else []
        after = render(left, t.pth) if left else None
        if before is not None and before != after:
            _write(t.pth, after)
    return Change(str(t.pth), before, after, left, cleaned)


def restore(path: str, text: Optional[str], expect: Optional[str]) -> None:
    """Put the .pth back to `text` (None: absent) if it still holds `expect` (for fix --undo)."""
    pth = Path(path)
    _check_writable(pth.parent)
    with locked(pth.parent):
        current = _read(pth)
        if current != expect:
            raise ShimError(f"{pth} changed since tts-doctor fix wrote it; not reverting it "
                            "(run tts-doctor shims status, and shims uninstall if needed)")
        _clean_stale(pth.parent)
        if current != text:
            _write(pth, text)


# --- status -----------------------------------------------------------------------------------

# Runs in the target interpreter (where the shims package may not be importable): shims/_scan.py
# by path, its answer as the last line of stdout.
_STATUS_SCRIPT = ("import json, runpy, sys; ns = runpy.run_path(sys.argv[1]); "
                  "print(); print(json.dumps(ns['scan'](json.loads(sys.argv[2]))))")


def name_table() -> dict[str, dict[str, str]]:
    """For shims/_scan.py: per SciPy module, the removed names the shims know -> their homes."""
    from tts_doctor.shims import scipy_names

    table = {m: dict(scipy_names.FORWARDS.get(m, {})) for m in scipy_names.MODULES}
    table["scipy.signal"].update({old: f"scipy.signal.windows.{new}"
                                  for old, new in scipy_names.WINDOW_ALIASES.items()})
    return table


def probe_environment(python: str, disable: bool = False) -> dict[str, Any]:
    """Import the SciPy modules in a fresh process of `python` and report, per module, the
    removed names still missing, those the shims restored, and who `scipy.signal.resample`
    is. With `disable`, the hooks are off (TTS_DOCTOR_SHIMS=0): the environment's own state."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    if disable:
        env["TTS_DOCTOR_SHIMS"] = "0"
    else:
        env.pop("TTS_DOCTOR_SHIMS", None)
    table = json.dumps({"modules": name_table()})
    try:
        proc = subprocess.run([python, "-c", _STATUS_SCRIPT, str(shims_root() / "_scan.py"),
                               table], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S, env=env,
                              cwd=os.path.dirname(os.path.abspath(python)) or "/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": (proc.stderr or proc.stdout).strip()[-1000:]}
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["stderr"] = proc.stderr[-2000:]
    return data


def problems(env_state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per hooked shim: whether the problem it covers exists in this environment, and why."""
    from tts_doctor.shims.scipy_names import counts_as_problem

    modules = env_state.get("modules") or {}
    signal = modules.get("scipy.signal") or {}
    names = {m: sorted(n for n in (s.get("missing") or []) + (s.get("shimmed") or [])
                       if counts_as_problem(m, n))
             for m, s in modules.items() if isinstance(s, dict) and "error" not in s}
    gone = {m: n for m, n in names.items() if n}
    have_scipy = "error" not in signal and bool(signal)
    out = {
        "scipy_names": {
            "exists": bool(gone),
            "why": ("SciPy lacks " + "; ".join(f"{m}: {', '.join(n[:6])}"
                                               f"{' ...' if len(n) > 6 else ''}"
                                               for m, n in gone.items())
                    if gone else "every removed name is present in this SciPy (or SciPy is "
                    "not installed): nothing to restore"),
            "names": gone,
        },
        "resample": {
            "exists": have_scipy,
            "why": ("scipy.signal.resample is the FFT method: up to 14x slower on lengths "
                    "with large prime factors (scipy#9273)" if have_scipy
                    else "SciPy is not installed: nothing to replace"),
        },
    }
    return out


def status(python: Optional[str] = None) -> dict[str, Any]:
    """Installed where, which shims, whether each problem still exists, what is active."""
    from tts_doctor import shims

    t = target(python)
    text = read(t)
    meta = parse(text) if text else None
    installed = list(meta["shims"]) if meta else []
    out: dict[str, Any] = {
        "python": t.python,
        "purelib": str(t.purelib),
        "pth": str(t.pth),
        "installed": meta is not None,
        "foreign_file": text is not None and meta is None,
        "shims": installed,
        "meta": meta,
        "stale_temp_files": [str(p) for p in t.purelib.glob(f".{PTH_NAME}.*.tmp")],
        "this_process": shims.status(),
    }
    root_ok = bool(meta) and Path(meta.get("root", "")).joinpath("__init__.py").exists()
    out["root_exists"] = root_ok if meta else None
    if meta:
        out["outdated"] = meta.get("hooks_sha256") != hashlib.sha256(
            hooks_source().encode()).hexdigest() or meta.get("root") != str(shims_root())
    fresh = probe_environment(t.python)
    out["fresh_process"] = fresh
    found = problems(fresh) if "error" not in fresh else {}
    per = {}
    for name in hooked_shims():
        p = found.get(name, {"exists": None, "why": fresh.get("error", "unknown")})
        entry = {"installed": name in installed, "problem": p["exists"], "why": p["why"]}
        if name in installed:
            entry["removable"] = p["exists"] is False
        per[name] = entry
    out["per_shim"] = per
    return out
