"""Writing output files: a reader sees the old file or the new one, never half of one.

What a path names decides how it is written (`plan` says which, before any work is done):

- a regular file, or a new one in an existing, writable folder: written to a temporary file
  in the same folder, flushed and fsynced, then renamed over the target. A crash (or
  `kill -9`) leaves either the old state or the new one, and at worst a stray temporary file
  whose name starts with `.` and ends with `.tmp`;
- a character device or a FIFO (`/dev/null`, `/dev/tty`, a named pipe): written through, in
  place - the node is never replaced. A FIFO without a reader is an error, not a hang;
- `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`: written to that open file
  descriptor, as a shell redirection would;
- a symlink is followed deliberately: the file it points to is replaced, the link stays;
- refused, with `OutputError` (exit 2) saying why: a missing folder (folders are never
  created silently), a folder that is not writable, a read-only file (mode without any `w`
  bit: it is not replaced behind its owner's back), a directory, a block device, a socket,
  a symlink loop.

The content is always complete before the first byte is written, and a failed write (a full
disk, `/dev/full`) is an `OutputError` naming the path and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from tts_doctor.errors import OutputError
from tts_doctor.inputs import file_kind

PathLike = Union[str, "os.PathLike[str]"]

_FD_PATH = re.compile(r"^/(?:dev/(?P<std>stdin|stdout|stderr)|dev/fd/(?P<n>[0-9]+)|"
                      r"proc/(?:self|thread-self|[0-9]+)/fd/(?P<m>[0-9]+))$")
_STD_FDS = {"stdin": 0, "stdout": 1, "stderr": 2}


@dataclass(frozen=True)
class Target:
    """How a path will be written: `kind` is "replace", "stream" or "fd"."""

    path: str          # what the user named
    kind: str
    real: str = ""     # replace: the file that is replaced (a symlink's target)
    fd: int = -1       # fd: the descriptor written to
    mode: Optional[int] = None  # replace: the existing file's permission bits


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _label(path: str, what: Optional[str]) -> str:
    return f"{what} {path}" if what else path


def plan(path: PathLike, what: Optional[str] = None) -> Target:
    """Decide how `path` will be written, or raise OutputError saying why it cannot be.

    Run it before any work (the CLI checks every output option first), and again at write
    time: nothing is created or changed by it.
    """
    name = os.fspath(path)
    label = _label(name, what)
    if not name or "\x00" in name:
        raise OutputError(f"{label or what or 'output'}: not a usable file name")
    m = _FD_PATH.match(os.path.abspath(name) if name.startswith("/") else name)
    if m:
        fd = _STD_FDS[m.group("std")] if m.group("std") else int(m.group("n") or m.group("m"))
        try:
            os.fstat(fd)
        except OSError:
            raise OutputError(f"{label}: file descriptor {fd} is not open") from None
        return Target(name, "fd", fd=fd)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(f"{label}: a symlink loop") from None
        if exc.errno == errno.ENOTDIR:
            raise OutputError(f"{label}: a part of the path is not a folder") from None
        raise OutputError(f"{label}: {_why(exc)}") from None
    if st is not None:
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            if not os.access(name, os.W_OK):
                raise OutputError(f"{label}: not writable (permission denied)")
            return Target(name, "stream")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{label} is {file_kind(st.st_mode)}; give a file to write")
    real = os.path.realpath(name) if os.path.islink(name) else name
    if st is not None:
        bits = stat.S_IMODE(st.st_mode)
        if not bits & 0o222 or not os.access(real, os.W_OK):
            raise OutputError(f"{label} is read-only (mode {bits:04o}); not replacing it "
                              "(make it writable, or choose another file)")
    folder = os.path.dirname(real) or "."
    try:
        fst = os.stat(folder)
    except FileNotFoundError:
        raise OutputError(f"{label}: the folder {folder} does not exist (create it "
                          "first; the doctor does not create folders)") from None
    except OSError as exc:
        raise OutputError(f"{label}: the folder {folder}: {_why(exc)}") from None
    if not stat.S_ISDIR(fst.st_mode):
        raise OutputError(f"{label}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{label}: the folder {folder} is not writable")
    return Target(name, "replace", real=real,
                  mode=stat.S_IMODE(st.st_mode) if st is not None else None)


def check_target(path: PathLike, what: Optional[str] = None) -> None:
    """Fail early (OutputError, exit 2) when `path` could not be written at the end."""
    plan(path, what)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _open_stream(target: Target) -> int:
    """Open a character device or FIFO for writing without blocking on the open itself."""
    try:
        fd = os.open(target.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(f"{target.path}: a FIFO with no reader (start the reader "
                              "first)") from None
        raise OutputError(f"cannot write {target.path}: {_why(exc)}") from None
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    return fd


def _write_through(target: Target, data: bytes) -> None:
    if target.kind == "fd":
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            _write_all(target.fd, data)
        except OSError as exc:
            raise OutputError(f"cannot write {target.path}: {_why(exc)}") from None
        return
    fd = _open_stream(target)
    try:
        _write_all(fd, data)
    except OSError as exc:
        raise OutputError(f"cannot write {target.path}: {_why(exc)}") from None
    finally:
        os.close(fd)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or unlink inside `directory` durable (best effort)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, mode: Optional[int] = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success its content goes to `path` (see `plan`).

    For writers that want a file name (the `wave` module, torch's snapshot dump). On an
    exception the temporary file is removed and `path` is untouched. `mode` sets the
    permission bits of a new or replaced file (default: the old file's, or 0644).
    """
    target = plan(path)
    if target.kind != "replace":
        fd, tmp = tempfile.mkstemp(prefix="tts-doctor-out-", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(tmp)
            _write_through(target, Path(tmp).read_bytes())
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return
    directory = os.path.dirname(target.real) or "."
    base = os.path.basename(target.real)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {target.path}: {_why(exc)}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            with open(tmp_path, "rb+") as f:
                os.fsync(f.fileno())
            bits = mode if mode is not None else (
                target.mode if target.mode is not None else 0o644)
            os.chmod(tmp_path, bits)
            os.replace(tmp_path, target.real)
        except OSError as exc:
            raise OutputError(f"cannot write {target.path}: {_why(exc)}") from None
        fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_bytes(path: PathLike, data: bytes, mode: Optional[int] = None) -> None:
    """Write `data` to `path`: atomically for files, through for devices and FIFOs."""
    target = plan(path)
    if target.kind != "replace":
        _write_through(target, data)
        return
    with atomic_path(path, mode) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {target.path}: {_why(exc)}") from None


def write_text(path: PathLike, text: str, mode: Optional[int] = None) -> None:
    write_bytes(path, text.encode("utf-8"), mode)


def append_text(path: PathLike, text: str) -> None:
    """Append to a log-like file (GitHub's step summary): never blocks on a FIFO's open."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
                     | os.O_NOCTTY, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot append to {name}: {_why(exc)}") from None
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        _write_all(fd, text.encode("utf-8"))
    except OSError as exc:
        raise OutputError(f"cannot append to {name}: {_why(exc)}") from None
    finally:
        os.close(fd)
