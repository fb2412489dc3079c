"""Is a model file what its name says? Reads headers, never loads the model.

A hub download that went wrong leaves a file under the model's name that is not a model:
a Git-LFS pointer (a clone without `git lfs`: `UnpicklingError: invalid load key, 'v'`), an
HTML page (a login or error page saved by `wget`: `invalid load key, '<'`, piper's "last
read: '<'"), or a truncated download (`PytorchStreamReader failed reading zip archive`,
safetensors' `HeaderTooLarge`). Each check here reads a few bytes (or the central directory
of a zip, the top-level fields of an ONNX protobuf), so checking a 3 GB checkpoint costs
milliseconds. Standard library only: model.cache runs inside the diagnosed interpreter.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import asdict, dataclass
from typing import Any, Optional

LFS_MAGIC = b"version https://git-lfs"
PICKLE_EXT = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".tar")
ONNX_EXT = (".onnx",)
SAFETENSORS_EXT = (".safetensors",)
JSON_EXT = (".json",)


@dataclass(frozen=True)
class FileCheck:
    """What a file is: `kind` ('safetensors', 'zip-pickle', 'pickle', 'onnx', 'json',
    'unknown', or a problem: 'missing', 'empty', 'lfs-pointer', 'html', 'truncated',
    'corrupt'), whether that is a usable model file, and why not."""

    path: str
    kind: str
    ok: bool
    size: int = 0
    reason: Optional[str] = None
    lfs_size: Optional[int] = None      # the real file's size a Git-LFS pointer names

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def check(path: str | os.PathLike[str]) -> FileCheck:
    """Classify one file by its first bytes and, for the formats that say how long they are
    (safetensors, zip, ONNX), whether all of it is there."""
    p = str(path)
    try:
        size = os.path.getsize(p)
        with open(p, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return FileCheck(p, "missing", False, 0, f"cannot read it: {exc.strerror or exc}")
    if size == 0:
        return FileCheck(p, "empty", False, 0, "the file is empty (0 bytes)")
    if head.startswith(LFS_MAGIC):
        text = head.decode("utf-8", "replace")
        real = next((int(line.split()[1]) for line in text.splitlines()
                     if line.startswith("size ") and line.split()[1].isdigit()), None)
        return FileCheck(p, "lfs-pointer", False, size,
                         f"a Git-LFS pointer ({size} bytes) instead of the "
                         f"{_human(real) if real else 'real'} file: the repository was cloned "
                         "without git-lfs", real)
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or (
            stripped.startswith(b"<") and b"<html" in head.lower()):
        return FileCheck(p, "html", False, size,
                         "an HTML page (a login, error or redirect page saved under the model's "
                         "name)")
    name = p.lower()
    if head.startswith(b"PK\x03\x04") or name.endswith(PICKLE_EXT):
        return _zip_or_pickle(p, head, size)
    if name.endswith(SAFETENSORS_EXT):
        return _safetensors(p, size)
    if name.endswith(ONNX_EXT):
        return _onnx(p, size)
    if name.endswith(JSON_EXT):
        try:
            with open(p, encoding="utf-8") as fh:
                json.load(fh)
        except (OSError, ValueError) as exc:
            return FileCheck(p, "corrupt", False, size, f"not valid JSON: {exc}")
        return FileCheck(p, "json", True, size)
    return FileCheck(p, "unknown", True, size)


def _human(n: Optional[int]) -> str:
    if n is None:
        return "?"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _zip_or_pickle(p: str, head: bytes, size: int) -> FileCheck:
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
                bad = next((i for i in zf.infolist()
                            if i.header_offset + i.compress_size > size), None)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            return FileCheck(p, "truncated", False, size,
                             f"a zip (torch.save) archive without its central directory "
                             f"({exc}): the download stopped early")
        if bad is not None:
            return FileCheck(p, "truncated", False, size,
                             f"the zip archive's member {bad.filename} runs past the end of "
                             "the file: truncated")
        pickled = any(n.endswith("data.pkl") for n in names)
        return FileCheck(p, "zip-pickle" if pickled else "zip", True, size)
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return FileCheck(p, "pickle", True, size)
    return FileCheck(p, "unknown", True, size)


def _safetensors(p: str, size: int) -> FileCheck:
    if size < 8:
        return FileCheck(p, "truncated", False, size, f"{size} bytes: shorter than the "
                         "safetensors header")
    with open(p, "rb") as fh:
        n, = struct.unpack("<Q", fh.read(8))
        if n > 100 * 2**20 or 8 + n > size:
            return FileCheck(p, "truncated" if 8 + n > size and n < 100 * 2**20 else "corrupt",
                             False, size, f"the safetensors header says {n} bytes of JSON, the "
                             f"file has {size - 8} after it (HeaderTooLarge)")
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            return FileCheck(p, "corrupt", False, size, f"the safetensors header is not JSON: "
                             f"{exc}")
    ends = [t["data_offsets"][1] for k, t in header.items()
            if k != "__metadata__" and isinstance(t, dict) and "data_offsets" in t]
    need = 8 + n + (max(ends) if ends else 0)
    if need > size:
        return FileCheck(p, "truncated", False, size, f"the tensors end at byte {need}, the "
                         f"file has {size}: the download stopped early")
    return FileCheck(p, "safetensors", True, size)


def _varint(fh: Any) -> Optional[int]:
    shift = result = 0
    while True:
        b = fh.read(1)
        if not b:
            return None
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _onnx(p: str, size: int) -> FileCheck:
    """Walk the top-level fields of the ModelProto: each length-delimited field (the graph
    is one) must end inside the file, and a graph (field 7) must be there."""
    fields = set()
    try:
        with open(p, "rb") as fh:
            while fh.tell() < size:
                key = _varint(fh)
                if key is None:
                    break
                field_no, wire = key >> 3, key & 7
                if field_no == 0:
                    raise ValueError("field number 0")
                fields.add(field_no)
                if wire == 0:
                    if _varint(fh) is None:
                        raise EOFError
                elif wire == 2:
                    length = _varint(fh)
                    if length is None or fh.tell() + length > size:
                        return FileCheck(p, "truncated", False, size,
                                         f"ONNX field {field_no} needs {length} bytes, the file "
                                         f"ends {size - fh.tell()} bytes later: truncated")
                    fh.seek(length, 1)
                elif wire == 1:
                    fh.seek(8, 1)
                elif wire == 5:
                    fh.seek(4, 1)
                else:
                    raise ValueError(f"wire type {wire}")
    except (ValueError, EOFError, OSError) as exc:
        return FileCheck(p, "corrupt", False, size, f"not an ONNX protobuf ({exc})")
    if 7 not in fields:
        return FileCheck(p, "corrupt", False, size, "an ONNX file without a graph")
    return FileCheck(p, "onnx", True, size)


def _fields(fh: Any, end: int) -> Any:
    """(field number, wire type, offset of its payload, payload length or value) of each
    protobuf field between the current position and `end`; length-delimited payloads are
    skipped, not read."""
    while fh.tell() < end:
        key = _varint(fh)
        if key is None:
            return
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            yield field_no, wire, fh.tell(), _varint(fh)
        elif wire == 2:
            length = _varint(fh) or 0
            start = fh.tell()
            yield field_no, wire, start, length
            fh.seek(start + length)
        elif wire == 1:
            fh.seek(8, 1)
        elif wire == 5:
            fh.seek(4, 1)
        else:
            raise ValueError(f"wire type {wire}")


def onnx_inputs(path: str | os.PathLike[str]) -> list[str]:
    """The names of an ONNX graph's inputs (ModelProto.graph = 7, GraphProto.input = 11,
    ValueInfoProto.name = 1), read by seeking past the weights: a Piper voice with speakers
    has an input `sid`, a single-speaker voice has none ("Invalid input name: sid")."""
    names = []
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        graph = next(((s, n) for f, w, s, n in _fields(fh, size) if f == 7 and w == 2), None)
        if graph is None:
            return []
        fh.seek(graph[0])
        inputs = [(s, n) for f, w, s, n in _fields(fh, graph[0] + graph[1])
                  if f == 11 and w == 2]
        for start, length in inputs:
            fh.seek(start)
            for f, w, s, n in _fields(fh, start + length):
                if f == 1 and w == 2:
                    here = fh.tell()
                    fh.seek(s)
                    names.append(fh.read(n).decode("utf-8", "replace"))
                    fh.seek(here)
                    break
    return names
