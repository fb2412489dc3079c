"""Which shared libraries an extension module needs, and whether the loader will find them.

Reads the ELF dynamic section (NEEDED, RPATH, RUNPATH, SONAME) in pure Python, without
loading the file, then resolves each needed library the way ld.so does:
DT_RPATH (only when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the ld.so cache,
then the default folders; `$ORIGIN` expands to the folder of the object that asks. This names
the missing library (`libre2.so.11`, `libc10_cuda.so`) instead of crashing on import.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = (0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE,
                                                      0x6FFFFFFF)
PT_LOAD, PT_DYNAMIC = 1, 2
DEFAULT_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib", "/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu")


class NotELF(ValueError):
    """The file is not an ELF shared object this module can read."""


@dataclass(frozen=True)
class ElfInfo:
    path: str
    machine: int
    bits: int
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: Optional[str]
    # symbol versions: what the object needs of each library (`libstdc++.so.6` ->
    # ("GLIBCXX_3.4.32", "CXXABI_1.3.15")), and the versions it defines itself
    version_needs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    version_defs: tuple[str, ...] = ()


@dataclass
class Resolution:
    """Every library an object needs (transitively), where each was found, what is missing."""

    found: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # library -> the object needing it

    @property
    def ok(self) -> bool:
        return not self.missing


def read(path: str | os.PathLike[str]) -> ElfInfo:
    """Parse the dynamic section of an ELF file."""
    p = str(path)
    with open(p, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise NotELF(f"{p} is not an ELF file")
        # map, not read: a CUDA provider library can be 400 MB, and only the headers, the
        # dynamic section and the string table are touched
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _parse(p, data)


def _parse(p: str, data: Any) -> ElfInfo:
    bits = 64 if data[4] == 2 else 32
    endian = "<" if data[5] == 1 else ">"
    if bits == 64:
        e_phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        e_phentsize, e_phnum = struct.unpack_from(endian + "HH", data, 0x36)
        machine, = struct.unpack_from(endian + "H", data, 0x12)
        ph_fmt, dyn_fmt, dyn_size = endian + "IIQQQQQQ", endian + "qQ", 16
    else:
        e_phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        e_phentsize, e_phnum = struct.unpack_from(endian + "HH", data, 0x2A)
        machine, = struct.unpack_from(endian + "H", data, 0x12)
        ph_fmt, dyn_fmt, dyn_size = endian + "IIIIIIII", endian + "iI", 8
    loads = []
    dynamic = None
    for i in range(e_phnum):
        fields = struct.unpack_from(ph_fmt, data, e_phoff + i * e_phentsize)
        if bits == 64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return ElfInfo(p, machine, bits, (), (), (), None)
    entries = []
    off, size = dynamic
    for pos in range(off, off + size, dyn_size):
        tag, val = struct.unpack_from(dyn_fmt, data, pos)
        if tag == DT_NULL:
            break
        entries.append((tag, val))

    def vaddr_to_offset(addr: int) -> int:
        for vaddr, offset, filesz in loads:
            if vaddr <= addr < vaddr + max(filesz, 1):
                return addr - vaddr + offset
        return addr

    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    if strtab is None:
        return ElfInfo(p, machine, bits, (), (), (), None)
    base = vaddr_to_offset(strtab)

    def string(index: int) -> str:
        start = base + index
        end = data.find(b"\0", start)
        return bytes(data[start:end]).decode("utf-8", "replace")

    needed = tuple(string(v) for t, v in entries if t == DT_NEEDED)
    rpath = tuple(x for t, v in entries if t == DT_RPATH for x in string(v).split(":") if x)
    runpath = tuple(x for t, v in entries if t == DT_RUNPATH for x in string(v).split(":") if x)
    soname = next((string(v) for t, v in entries if t == DT_SONAME), None)
    tags = dict(entries)
    needs: list[tuple[str, tuple[str, ...]]] = []
    if DT_VERNEED in tags:
        pos = vaddr_to_offset(tags[DT_VERNEED])
        for _ in range(tags.get(DT_VERNEEDNUM, 0)):
            _ver, cnt, vn_file, vn_aux, vn_next = struct.unpack_from(endian + "HHIII", data, pos)
            names, aux = [], pos + vn_aux
            for _ in range(cnt):
                _hash, _flags, _other, vna_name, vna_next = struct.unpack_from(
                    endian + "IHHII", data, aux)
                names.append(string(vna_name))
                if not vna_next:
                    break
                aux += vna_next
            needs.append((string(vn_file), tuple(names)))
            if not vn_next:
                break
            pos += vn_next
    defs: list[str] = []
    if DT_VERDEF in tags:
        pos = vaddr_to_offset(tags[DT_VERDEF])
        for _ in range(tags.get(DT_VERDEFNUM, 0)):
            _ver, _flags, _ndx, cnt, _hash, vd_aux, vd_next = struct.unpack_from(
                endian + "HHHHIII", data, pos)
            if cnt:
                vda_name, = struct.unpack_from(endian + "I", data, pos + vd_aux)
                defs.append(string(vda_name))
            if not vd_next:
                break
            pos += vd_next
    return ElfInfo(p, machine, bits, needed, rpath, runpath, soname, tuple(needs),
                   tuple(defs))


@functools.lru_cache(maxsize=1)
def ld_cache() -> dict[str, str]:
    """The ld.so cache as `ldconfig -p` prints it: soname -> path (this machine's arch)."""
    out: dict[str, str] = {}
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            proc = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in proc.stdout.splitlines():
            m = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
            if m and ("x86-64" in m.group(2) or "64" in m.group(2) or "AArch64" in m.group(2)):
                out.setdefault(m.group(1), m.group(3))
        if out:
            break
    return out


def _expand(entry: str, origin: str) -> str:
    return entry.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)


def find_library(name: str, info: ElfInfo, env: Optional[dict[str, str]] = None) -> Optional[str]:
    """Where ld.so would find `name` for the object `info` (None: it would not)."""
    if "/" in name:
        return name if os.path.exists(name) else None
    env = dict(os.environ) if env is None else env
    origin = os.path.dirname(os.path.abspath(info.path))
    dirs: list[str] = []
    if not info.runpath:
        dirs += [_expand(d, origin) for d in info.rpath]
    dirs += [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += [_expand(d, origin) for d in info.runpath]
    for d in dirs:
        candidate = os.path.join(d, name)
        if os.path.exists(candidate):
            return candidate
    if name in ld_cache():
        return ld_cache()[name]
    for d in DEFAULT_DIRS:
        candidate = os.path.join(d, name)
        if os.path.exists(candidate):
            return candidate
    return None


def resolve(path: str | os.PathLike[str], *, depth: int = 4,
            env: Optional[dict[str, str]] = None,
            preloaded: tuple[str, ...] = ()) -> Resolution:
    """Resolve the needed libraries of `path` and, up to `depth`, of what they need.

    `preloaded` names libraries the loading process has already mapped (for a torch
    extension: libtorch*.so and libc10.so, loaded by `import torch`); a library of that soname
    counts as found even when the search path would not reach it.
    """
    result = Resolution()
    seen: set[str] = set()
    queue: list[tuple[str, int]] = [(str(path), 0)]
    while queue:
        obj, level = queue.pop(0)
        if obj in seen:
            continue
        seen.add(obj)
        try:
            info = read(obj)
        except (OSError, NotELF, struct.error, ValueError):
            continue
        for lib in info.needed:
            if lib in result.found or lib in result.missing:
                continue
            where = find_library(lib, info, env)
            if where is None:
                pre = next((p for p in preloaded if os.path.basename(p) == lib), None)
                if pre:
                    result.found[lib] = pre
                    continue
                result.missing[lib] = os.path.basename(obj)
                continue
            result.found[lib] = where
            if level + 1 < depth:
                queue.append((where, level + 1))
    return result


def extension_files(root: str | os.PathLike[str], pattern: str = "*.so*") -> list[Path]:
    """Shared objects under a folder (a package's native parts)."""
    base = Path(root)
    return sorted(p for p in base.rglob(pattern) if p.is_file() and ".so" in p.name)
