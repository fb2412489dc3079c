"""Reading input files the user names: regular files of bounded size, UTF-8, never a hang.

A recipe, a report given to `diff` or found in a `summarize` folder, a `--text-file`: each is
checked with `os.stat` before it is opened (a FIFO, a device, a directory or a socket is
refused, so nothing blocks waiting for a writer), opened with O_NONBLOCK (a file swapped for
a FIFO between the check and the open cannot block either), and read up to a cap (a 50 MB
"recipe" is refused, not read whole). Every refusal is an `InputError`: one line, exit 2.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Optional, Union

from tts_doctor.errors import InputError

MiB = 1024 * 1024
MAX_INPUT_BYTES = 8 * MiB  # a report of a few hundred findings is ~200 KiB

PathLike = Union[str, "os.PathLike[str]"]


def _size_text(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB and n % MiB == 0 else f"{n:,} bytes"


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO (named pipe)"), for one-line errors about
    inputs here and outputs in tts_doctor.atomic."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _label(path: str, what: Optional[str]) -> str:
    return f"{what} {path}" if what else path


def _err(label: str, reason: str) -> InputError:
    """InputError "LABEL: REASON"; `.reason` keeps the part after the label."""
    exc = InputError(f"{label}: {reason}")
    exc.reason = reason
    return exc


def _stat_error(label: str, exc: OSError) -> InputError:
    if exc.errno == errno.ENOENT:
        return _err(label, "no such file")
    if exc.errno == errno.ELOOP:
        return _err(label, "a symlink loop")
    if exc.errno == errno.ENOTDIR:
        return _err(label, "a part of the path is not a folder")
    return _err(label, f"cannot read: {exc.strerror or exc}")


def check_regular(path: PathLike, what: Optional[str] = None,
                  limit: int = MAX_INPUT_BYTES) -> os.stat_result:
    """The file's stat, or InputError unless it is a regular file of at most `limit` bytes."""
    name = os.fspath(path)
    label = _label(name, what)
    if not name or "\x00" in name:
        raise _err(label or what or "input", "not a usable file name")
    try:
        st = os.stat(name)
    except OSError as exc:
        raise _stat_error(label, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise _err(label, f"{file_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise _err(label, f"{st.st_size:,} bytes, over the limit of {_size_text(limit)}")
    return st


def read_bytes(path: PathLike, what: Optional[str] = None,
               limit: int = MAX_INPUT_BYTES) -> bytes:
    """The content of a regular file of at most `limit` bytes (see `check_regular`)."""
    name = os.fspath(path)
    label = _label(name, what)
    check_regular(name, what, limit)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise _stat_error(label, exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped between the stat and the open
            raise _err(label, f"{file_kind(st.st_mode)}, not a regular file")
        chunks = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 * MiB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise _err(label, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if total > limit:
        raise _err(label, f"larger than the limit of {_size_text(limit)}")
    return b"".join(chunks)


def decode_text(data: bytes, label: str) -> str:
    """UTF-8 text (a BOM is allowed), or InputError for binary or other encodings."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _err(label, f"binary data, not text (a NUL byte at offset {nul})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _err(label, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                   f"{exc.start})") from None


def read_text(path: PathLike, what: Optional[str] = None,
              limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes."""
    name = os.fspath(path)
    return decode_text(read_bytes(name, what, limit), _label(name, what))
