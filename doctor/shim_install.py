"""Install, remove and inspect the shims of an environment: a `.pth` file and a private copy
of the shims' code, nothing else.

`install(names, python)` writes into the target interpreter's purelib (site-packages):

- `_tts_doctor_shims-<hash>/`: a copy of the files the hooked shims need (`PAYLOAD` in
  shims/_hooks.py; standard library and the libraries they patch only). The hyphen makes it
  an unimportable name: the environment gains no importable package, and a `shims` package
  of the user's own is never shadowed. `<hash>` is derived from the files' content, so a
  new version goes into a new folder and the switch is one atomic rename of the `.pth`.
- `tts_doctor_shims.pth`: a comment with what was installed (JSON: the shims, the folder and
  every file written with its sha256) and one `import` line that runs at every interpreter
  start-up of that environment: it registers the lazy post-import hooks (shims/_hooks.py
  BOOT) and nothing else; SciPy is patched when user code imports it, from the copy, after
  its sha256s are checked.

The installed shims depend on nothing of this doctor's: uninstall, move or delete the doctor
and they keep working. `uninstall` removes exactly what the metadata records (and the
`__pycache__` Python wrote beside those files), so the listing and hashes of site-packages
are what they were before install.

Every write happens under an exclusive `flock` on the site-packages folder itself (so no
lock file is left behind) and is atomic (the copy: a temporary folder renamed into place;
the .pth: doctor.atomic, temporary file + fsync + rename). The .pth is written last on
install and removed first on uninstall: a `kill -9` at any point leaves the old state or the
new one, plus at worst an inert leftover (a `.tts_doctor_shims.pth.*.tmp` file, a temporary
folder, or a copy no .pth refers to: site and import ignore them) that the next install or
uninstall removes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tts_doctor import __version__, atomic
from tts_doctor.errors import UserError

PTH_NAME = "tts_doctor_shims.pth"
PAYLOAD_PREFIX = "_tts_doctor_shims-"
HEADER = "# tts-doctor shims: written by `tts-doctor shims install`; " \
         "remove with `tts-doctor shims uninstall`."
META_PREFIX = "# tts-doctor-meta: "
FORMAT = 2
MIN_TARGET = (3, 7)
LOCK_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 180.0
INFO_TIMEOUT_S = 60.0


class ShimError(UserError):
    """Installing or removing shims failed; the message says why and what to do (exit 1)."""

    exit_code = 1


class UsageError(ShimError):
    """The request itself is wrong (unknown shim name, not an interpreter): exit 2."""

    exit_code = 2


def shims_root() -> Path:
    """The folder of this doctor's `shims` package (what install copies from)."""
    from tts_doctor import shims

    return Path(shims.__file__).resolve().parent


def hooked_shims() -> dict[str, str]:
    from tts_doctor import shims

    return dict(shims.HOOKED)


def default_shims() -> list[str]:
    """What `shims install` installs when no name is given (and all `fix` ever applies)."""
    from tts_doctor import shims

    return list(shims.DEFAULT)


def opt_in_shims() -> dict[str, str]:
    """Hooked shims that replace a working function: name -> what they change."""
    from tts_doctor import shims

    return dict(shims.OPT_IN)


def library_shims() -> dict[str, str]:
    from tts_doctor import shims

    return dict(shims.LIBRARY)


def _hooks_module() -> Any:
    from tts_doctor.shims import _hooks

    return _hooks


def payload() -> dict[str, bytes]:
    """The files install copies into an environment: name -> content (this doctor's)."""
    root = shims_root()
    return {name: (root / name).read_bytes() for name in _hooks_module().PAYLOAD}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_hashes() -> dict[str, str]:
    """name -> sha256 of every payload file."""
    return {name: _sha(data) for name, data in payload().items()}


def payload_dirname(hashes: dict[str, str]) -> str:
    """`_tts_doctor_shims-<12 hex>`: named by content, so every version has its own folder."""
    blob = json.dumps(sorted(hashes.items())).encode()
    return PAYLOAD_PREFIX + _sha(blob)[:12]


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
         "'version': list(sys.version_info[:2]), 'implementation': "
         "sys.implementation.name}))")


def _parse_info(python: str, stdout: str) -> tuple[Path, tuple[int, int]]:
    """purelib and version from _INFO's output, or UsageError when it is not that."""
    lines = stdout.strip().splitlines()
    try:
        info = json.loads(lines[-1]) if lines else None
    except ValueError:
        info = None
    version = info.get("version") if isinstance(info, dict) else None
    purelib = info.get("purelib") if isinstance(info, dict) else None
    if (not isinstance(version, list) or len(version) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in version)
            or not isinstance(purelib, str) or not purelib):
        shown = (lines[-1] if lines else "nothing")[:120]
        raise UsageError(f"{python} is not a Python interpreter (asked for its site-packages, "
                         f"it printed {shown!r})")
    return Path(purelib), (version[0], version[1])


def target(python: Optional[str] = None) -> Target:
    """The running interpreter's environment, or the one of the interpreter at `python`.

    UsageError (exit 2) when `python` cannot be run, is not a Python interpreter, or is older
    than 3.7."""
    # abspath, not realpath: a venv's python is a symlink to the base interpreter, and
    # resolving it would name the wrong environment
    if python is None or os.path.abspath(python) == os.path.abspath(sys.executable):
        return Target(sys.executable, Path(sysconfig.get_paths()["purelib"]),
                      tuple(sys.version_info[:2]))  # type: ignore[arg-type]
    if os.path.isdir(python):
        raise UsageError(f"{python} is a folder; give the interpreter (e.g. VENV/bin/python)")
    if not os.access(python, os.X_OK):
        raise UsageError(f"{python} is not executable; give the environment's interpreter "
                         "(e.g. VENV/bin/python)")
    try:
        proc = subprocess.run([python, "-I", "-c", _INFO], capture_output=True, text=True,
                              timeout=INFO_TIMEOUT_S, errors="replace",
                              env={**os.environ, "TTS_DOCTOR_SHIMS": "0"})
    except subprocess.TimeoutExpired:
        raise UsageError(f"{python} did not answer within {INFO_TIMEOUT_S:g} s; is it a "
                         "Python interpreter?") from None
    except OSError as exc:
        raise UsageError(f"cannot run {python}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise UsageError(f"{python} is not a working Python interpreter (exit "
                         f"{proc.returncode}: {(tail[-1] if tail else 'no output')[:200]})")
    purelib, version = _parse_info(python, proc.stdout)
    if version < MIN_TARGET:
        raise UsageError(f"{python} is Python {version[0]}.{version[1]}; the shims need "
                         f"{MIN_TARGET[0]}.{MIN_TARGET[1]} or newer")
    return Target(os.path.abspath(python), purelib, version)


# --- the .pth file ----------------------------------------------------------------------------

def render(shims: list[str], pth: Path, folder: Optional[Path] = None,
           hashes: Optional[dict[str, str]] = None) -> str:
    """The complete text of the .pth file at `pth` for these shims, whose code is the copy in
    `folder` with these file hashes (default: this doctor's payload, beside `pth`)."""
    if hashes is None:
        hashes = payload_hashes()
    if folder is None:
        folder = pth.parent / payload_dirname(hashes)
    hooks = _hooks_module()
    meta = {"format": FORMAT, "doctor": __version__, "shims": sorted(shims),
            "root": str(folder),
            "files": {f"{folder.name}/{name}": digest for name, digest in sorted(hashes.items())}}
    # One line (site runs lines starting with "import"): BOOT registers a lazy finder; the
    # copy is checked, read and compiled only when a watched SciPy module is imported.
    glob = {"__name__": "_tts_doctor_shims_boot", "SHIMS": sorted(shims), "ROOT": str(folder),
            "FILES": dict(sorted(hashes.items())), "WATCH": sorted(hooks.WATCH),
            "PTH": str(pth), "LOAD": hooks.LOAD}
    line = f"import sys; exec({hooks.BOOT!r}, {glob!r})"
    return f"{HEADER}\n{META_PREFIX}{json.dumps(meta, sort_keys=True)}\n{line}\n"


def parse(text: str) -> Optional[dict[str, Any]]:
    """The metadata of a .pth written by `render`, or None if it is not one. (Format 1, from
    tts-doctor before the shims were self-contained, has no `files`: its code lived in the
    doctor's own folder, `root`.)"""
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
    files = meta.get("files", {})
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    meta["files"] = files
    return meta


def recorded_folder(purelib: Path, meta: dict[str, Any]) -> Optional[Path]:
    """The copy's folder a .pth's metadata records (inside `purelib`), None for format 1."""
    names = {k.split("/", 1)[0] for k in meta.get("files", {})}
    if len(names) != 1:
        return None
    name = names.pop()
    if not name.startswith(PAYLOAD_PREFIX) or "/" in name or name in (".", ".."):
        return None
    return purelib / name


def verify(purelib: Path, meta: dict[str, Any]) -> list[str]:
    """What is wrong with the installed copy: files missing or not what was written."""
    out = []
    if not meta.get("files"):
        root = str(meta.get("root", ""))
        if not os.path.exists(os.path.join(root, "_hooks.py")):
            out.append(f"{root} (the code of shims installed by an older tts-doctor) is gone")
        return out
    for rel, digest in sorted(meta["files"].items()):
        path = purelib / rel
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            out.append(f"{path} is missing")
            continue
        except OSError as exc:
            out.append(f"{path} cannot be read ({exc.strerror})")
            continue
        if _sha(data) != digest:
            out.append(f"{path} is not the file that was installed (sha256 differs)")
    return out


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
                        "code: from tts_doctor import shims; shims.activate()")


def _ours_only(folder: Path) -> bool:
    """Whether `folder` holds nothing but payload files and the bytecode Python wrote for
    them (so removing it removes nothing of anybody else's)."""
    names = set(_hooks_module().PAYLOAD)
    stems = {n[:-3] for n in names}
    try:
        for entry in folder.iterdir():
            if entry.name == "__pycache__" and entry.is_dir() and not entry.is_symlink():
                if not all(p.name.split(".", 1)[0] in stems and p.name.endswith(".pyc")
                           for p in entry.iterdir()):
                    return False
            elif entry.name not in names or not entry.is_file() or entry.is_symlink():
                return False
    except OSError:
        return False
    return True


def _remove_copy(folder: Path, files: Optional[list[str]] = None) -> list[str]:
    """Remove the copy in `folder`: the files named (default: the payload's names), the
    bytecode of those modules, then the folders if that emptied them. Returns what is left
    (paths), normally nothing."""
    names = files if files is not None else list(_hooks_module().PAYLOAD)
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    cache = folder / "__pycache__"
    stems = {n[:-3] for n in names if n.endswith(".py")}
    if cache.is_dir() and not cache.is_symlink():
        for pyc in cache.iterdir():
            if pyc.name.endswith(".pyc") and pyc.name.split(".", 1)[0] in stems:
                with contextlib.suppress(FileNotFoundError):
                    pyc.unlink()
        with contextlib.suppress(OSError):
            cache.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()
    atomic.fsync_dir(folder.parent)
    if not folder.exists():
        return []
    return sorted(str(p) for p in folder.rglob("*"))


def _clean_stale(purelib: Path, keep: Optional[Path]) -> list[str]:
    """Remove what a killed writer left: temporary .pth files and folders, and copies no .pth
    refers to (`keep` is the one the current .pth records). Ours only, by name and content."""
    removed = []
    for stale in purelib.glob(f".{PTH_NAME}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(str(stale))
    for stale in purelib.glob(f".{PAYLOAD_PREFIX}*.tmp"):
        if stale.is_dir() and not stale.is_symlink() and _ours_only(stale):
            if not _remove_copy(stale):
                removed.append(str(stale))
    for copy in purelib.glob(f"{PAYLOAD_PREFIX}*"):
        if keep is not None and copy.name == keep.name:
            continue
        if copy.is_dir() and not copy.is_symlink() and _ours_only(copy):
            if not _remove_copy(copy):
                removed.append(str(copy))
    return removed


def _write_copy(purelib: Path, files: dict[str, bytes]) -> tuple[Path, bool]:
    """Make sure the copy of `files` is in place (a temporary folder renamed into place;
    a damaged copy is replaced). Returns (its folder, whether anything was written)."""
    hashes = {n: _sha(d) for n, d in files.items()}
    folder = purelib / payload_dirname(hashes)
    meta = {"files": {f"{folder.name}/{n}": h for n, h in hashes.items()}}
    if folder.is_dir() and not verify(purelib, meta):
        return folder, False
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=purelib))
    try:
        os.chmod(tmp, 0o755)
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp / name, 0o644)
        if folder.exists():  # damaged: move it aside first (removed below)
            aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp",
                                          dir=purelib))
            os.rmdir(aside)
            os.replace(folder, aside)
            os.replace(tmp, folder)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ShimError(f"cannot write the shims' code into {purelib}: "
                        f"{exc.strerror or exc}") from None
    atomic.fsync_dir(purelib)
    return folder, True


def _write(pth: Path, text: Optional[str]) -> None:
    try:
        if text is None:
            pth.unlink()
            atomic.fsync_dir(pth.parent)
        else:
            atomic.write_text(pth, text)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ShimError(f"cannot write {pth}: {exc.strerror or exc} (read-only "
                        "site-packages?); nothing was changed") from None


@dataclass
class Change:
    """What one install/uninstall did: the .pth text before and after (None: absent), and
    the copy of the shims' code written or removed."""

    path: str
    before: Optional[str]
    after: Optional[str]
    shims: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after or bool(self.written or self.removed)


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


def _current(purelib: Path, pth: Path) -> tuple[Optional[str], Optional[dict[str, Any]]]:
    before = _read(pth)
    meta = parse(before) if before else None
    if before is not None and meta is None:
        raise ShimError(f"{pth} exists but was not written by tts-doctor (or is damaged); "
                        "not touching it: remove it by hand after checking what it is")
    return before, meta


def planned(t: Target, names: Optional[list[str]]) -> tuple[Optional[str], str, list[str]]:
    """(current text, text install would write, resulting shims) without writing anything."""
    chosen = _validate(list(names) if names else default_shims())
    before = read(t)
    meta = parse(before) if before else None
    current = list(meta["shims"]) if meta else []
    result = sorted(set(current) | set(chosen))
    return before, render(result, t.pth), result


def _set(purelib: Path, pth: Path, shims: list[str], before: Optional[str],
         meta: Optional[dict[str, Any]], reuse: bool = False) -> Change:
    """Bring the environment to `shims` installed (none: nothing of ours left). Under the
    lock. `reuse`: keep the copy the current .pth records (a partial uninstall)."""
    old = recorded_folder(purelib, meta) if meta else None
    change = Change(str(pth), before, None, sorted(shims))
    if shims:
        if reuse and old is not None and meta is not None and not verify(purelib, meta):
            folder = old
            hashes = {k.split("/", 1)[1]: v for k, v in meta["files"].items()}
        else:
            files = payload()
            folder, wrote = _write_copy(purelib, files)
            hashes = {n: _sha(d) for n, d in files.items()}
            if wrote:
                change.written = [str(folder / n) for n in sorted(files)]
        change.after = render(shims, pth, folder, hashes)
        if before != change.after:
            _write(pth, change.after)  # the switch: atomic
        keep: Optional[Path] = folder
    else:
        if before is not None:
            _write(pth, None)  # off first, then the files
        keep = None
    if old is not None and old != keep and old.exists():
        names = [k.split("/", 1)[1] for k in (meta or {}).get("files", {})]
        change.left = _remove_copy(old, names)
        change.removed = [str(old / n) for n in names]
    change.cleaned += _clean_stale(purelib, keep)
    return change


def install(names: Optional[list[str]] = None, python: Optional[str] = None) -> Change:
    """Add shims (the DEFAULT ones when no name is given) to the target environment."""
    t = target(python)
    chosen = _validate(list(names) if names else default_shims())
    _check_writable(t.purelib)
    with locked(t.purelib):
        before, meta = _current(t.purelib, t.pth)
        current = list(meta["shims"]) if meta else []
        return _set(t.purelib, t.pth, sorted(set(current) | set(chosen)), before, meta)


def uninstall(names: Optional[list[str]] = None, python: Optional[str] = None) -> Change:
    """Remove shims (all by default); the .pth and the copy go when none is left."""
    t = target(python)
    if names:
        _validate(names)
    if (read(t) is None and not list(t.purelib.glob(f".{PTH_NAME}.*.tmp"))
            and not list(t.purelib.glob(f"{PAYLOAD_PREFIX}*"))
            and not list(t.purelib.glob(f".{PAYLOAD_PREFIX}*.tmp"))):
        return Change(str(t.pth), None, None)
    _check_writable(t.purelib)
    with locked(t.purelib):
        before, meta = _current(t.purelib, t.pth)
        left = sorted(set(meta["shims"]) - set(names)) if (meta and names) else []
        return _set(t.purelib, t.pth, left, before, meta, reuse=True)


def restore(path: str, text: Optional[str], expect: Optional[str]) -> None:
    """Put the environment back to the state whose .pth was `text` (None: no shims at all,
    the copy removed too) if the .pth still holds `expect` (for fix --undo)."""
    pth = Path(path)
    purelib = pth.parent
    _check_writable(purelib)
    with locked(purelib):
        current = _read(pth)
        if current != expect:
            raise ShimError(f"{pth} changed since tts-doctor fix wrote it; not reverting it "
                            "(run tts-doctor shims status, and shims uninstall if needed)")
        meta = parse(current) if current else None
        wanted = parse(text) if text else None
        if text is not None and wanted is None:
            raise ShimError(f"the recorded earlier {pth} was not written by tts-doctor; "
                            "not restoring it")
        if wanted is not None and wanted.get("files") and not verify(purelib, wanted):
            # the copy it refers to is still in place: that exact file again
            if current != text:
                _write(pth, text)
            old = recorded_folder(purelib, meta) if meta else None
            keep = recorded_folder(purelib, wanted)
            if old is not None and old != keep:
                _remove_copy(old, [k.split("/", 1)[1] for k in meta["files"]])
            _clean_stale(purelib, keep)
            return
        _set(purelib, pth, list(wanted["shims"]) if wanted else [], current, meta)


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
            "why": ("scipy.signal.resample is the FFT method: correct, up to 14x slower on "
                    "lengths with large prime factors (scipy#9273); the opt-in shim trades "
                    "its exact results for speed" if have_scipy
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
        "stale_temp_files": sorted(
            [str(p) for p in t.purelib.glob(f".{PTH_NAME}.*.tmp")]
            + [str(p) for p in t.purelib.glob(f".{PAYLOAD_PREFIX}*.tmp")]
            + [str(p) for p in t.purelib.glob(f"{PAYLOAD_PREFIX}*")
               if not meta or p != recorded_folder(t.purelib, meta)]),
        "this_process": shims.status(),
    }
    out["damaged"] = verify(t.purelib, meta) if meta else []
    out["self_contained"] = bool(meta and meta.get("files"))
    if meta:
        hashes = payload_hashes()
        current = {f"{payload_dirname(hashes)}/{n}": d for n, d in hashes.items()}
        out["outdated"] = meta.get("files") != current
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
