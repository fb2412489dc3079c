"""The diagnosed interpreter as facts: what it is, where it looks, what it accepts.

`collect()` runs inside the diagnosed interpreter (as `python -c COLLECT` or in the worker)
and uses only the standard library of CPython 3.7 and later; everything that judges these
facts (version comparisons with `packaging`, wheel tags, verdicts) runs in the doctor's own
process. `current()` is the interpreter that the in-process probes judge: the doctor's own
unless the runner bound another one with `use()`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

from tts_doctor.errors import UserError

# The same function, as source, for `python -c` under the diagnosed interpreter: it must parse
# and run on CPython 3.7 (no walrus, no f-string '=', nothing newer than 3.7's stdlib).
COLLECT = r'''
import json, os, platform, sys, sysconfig
def collect():
    cwd = os.getcwd()
    path = [p for p in sys.path if p not in ("", ".")
            and not (p == sys.path[0] and os.path.abspath(p) == cwd)]
    libc, libc_version = platform.libc_ver()
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        glibc = ""
    return {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "version": platform.python_version(),
        "version_info": list(sys.version_info[:3]),
        "implementation": platform.python_implementation(),
        "cache_tag": sys.implementation.cache_tag or "",
        "abiflags": getattr(sys, "abiflags", ""),
        "soabi": sysconfig.get_config_var("SOABI") or "",
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX") or "",
        "gil_disabled": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "maxsize_64bit": sys.maxsize > 2 ** 32,
        "sys_path": path,
        "purelib": sysconfig.get_paths()["purelib"],
        "platlib": sysconfig.get_paths()["platlib"],
        "system": platform.system(),
        "release": platform.release(),
        "platform_version": platform.version(),
        "machine": platform.machine(),
        "libc": (libc + " " + libc_version).strip(),
        "glibc": glibc,
        "byteorder": sys.byteorder,
    }
'''


@dataclass(frozen=True)
class Target:
    """One interpreter, described by facts its own standard library reported."""

    executable: str
    prefix: str
    version: str
    version_info: tuple[int, int, int]
    implementation: str = "CPython"
    base_prefix: str = ""
    cache_tag: str = ""
    abiflags: str = ""
    soabi: str = ""
    ext_suffix: str = ""
    gil_disabled: bool = False
    maxsize_64bit: bool = True
    sys_path: tuple[str, ...] = ()
    purelib: str = ""
    platlib: str = ""
    system: str = ""
    release: str = ""
    platform_version: str = ""
    machine: str = ""
    libc: str = ""
    glibc: str = ""
    byteorder: str = "little"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Target:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in d.items() if k in known}
        values["version_info"] = tuple(int(x) for x in (d.get("version_info") or (0, 0, 0)))
        values["sys_path"] = tuple(d.get("sys_path") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["version_info"] = list(self.version_info)
        out["sys_path"] = list(self.sys_path)
        return out

    @property
    def minor(self) -> str:
        """'3.8'"""
        return f"{self.version_info[0]}.{self.version_info[1]}"

    @property
    def interpreter_tag(self) -> str:
        """The wheel interpreter tag: 'cp38' for CPython 3.8."""
        short = {"CPython": "cp", "PyPy": "pp"}.get(self.implementation, "py")
        return f"{short}{self.version_info[0]}{self.version_info[1]}"

    @property
    def abi_tag(self) -> str:
        """The wheel ABI tag from SOABI ('cpython-37m-x86_64-linux-gnu' -> 'cp37m')."""
        if self.implementation == "CPython" and self.soabi.startswith("cpython-"):
            return "cp" + self.soabi.split("-")[1]
        return self.interpreter_tag + self.abiflags

    @property
    def is_home(self) -> bool:
        """Whether this is the interpreter the doctor itself runs on."""
        return os.path.realpath(self.executable) == os.path.realpath(sys.executable) and \
            self.prefix == sys.prefix


class TargetError(UserError):
    """The interpreter to diagnose cannot be diagnosed: a usage error (exit 2) when it is not
    a CPython 3.7+, the doctor's own failure (exit 3) when it is but the doctor's code fails
    there (its worker cannot start). One line either way, mapped by cli.main."""

    def __init__(self, message: str, exit_code: int = 3):
        super().__init__(message, exit_code)


def collect() -> dict[str, Any]:
    """The facts of the running interpreter (stdlib only)."""
    namespace: dict[str, Any] = {}
    exec(COLLECT, namespace)
    return namespace["collect"]()


def home() -> Target:
    """The doctor's own interpreter."""
    return Target.from_dict(collect())


def probe_interpreter(python: str, timeout: float = 60.0) -> Target:
    """Run the collector under `python` and return its facts; a clear TargetError otherwise."""
    code = COLLECT + "\nimport json, sys\nsys.stdout.write(json.dumps(collect()))\n"
    try:
        proc = subprocess.run([python, "-I", "-c", code], capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise TargetError(f"--python {python}: no such file", 2) from None
    except PermissionError:
        raise TargetError(f"--python {python}: not executable", 2) from None
    except OSError as exc:
        raise TargetError(f"--python {python}: cannot run it ({exc.strerror or exc})", 2) from None
    except subprocess.TimeoutExpired:
        raise TargetError(f"--python {python}: did not answer within {timeout:g} s", 2) from None
    out = proc.stdout.decode("utf-8", "replace").strip()
    try:
        data = json.loads(out.splitlines()[-1]) if out else None
    except (ValueError, IndexError):
        data = None
    if proc.returncode != 0 or not isinstance(data, dict):
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = err[-1] if err else (out[:200] or f"exit code {proc.returncode}")
        raise TargetError(f"--python {python} is not a Python interpreter the doctor can read "
                          f"({why[:300]})", 2)
    target = Target.from_dict(data)
    if target.version_info[:2] < (3, 7):
        raise TargetError(f"--python {python} is Python {target.version}; tts-doctor diagnoses "
                          "CPython 3.7 and newer", 2)
    return target


_CURRENT: list[Target] = []
_HOME: list[Target] = []


def current() -> Target:
    """The interpreter being judged now (the doctor's own unless `use` bound another)."""
    if _CURRENT:
        return _CURRENT[-1]
    if not _HOME:
        _HOME.append(home())
    return _HOME[0]


@contextlib.contextmanager
def use(target: Optional[Target]) -> Iterator[None]:
    """Judge `target` inside the block (None: the doctor's own interpreter)."""
    if target is None:
        yield
        return
    from tts_doctor import dists

    _CURRENT.append(target)
    dists.refresh()
    try:
        yield
    finally:
        _CURRENT.pop()
        dists.refresh()


def marker_environment(t: Optional[Target] = None) -> dict[str, str]:
    """PEP 508 marker variables of the diagnosed interpreter (for `Marker.evaluate`)."""
    t = t or current()
    system = t.system
    platform_name = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(
        system, system.lower())
    return {
        "implementation_name": t.implementation.lower(),
        "implementation_version": t.version,
        "os_name": "nt" if system == "Windows" else "posix",
        "platform_machine": t.machine,
        "platform_release": t.release,
        "platform_system": system,
        "platform_version": t.platform_version,
        "python_full_version": t.version,
        "platform_python_implementation": t.implementation,
        "python_version": t.minor,
        "sys_platform": platform_name,
    }


def supported_tags(t: Optional[Target] = None) -> list[Any]:
    """The wheel tags the diagnosed interpreter accepts, best first (packaging.tags).

    The interpreter and ABI come from its facts; the platform tags from its C library
    (manylinux_2_X down to 2_17 for glibc 2.X, and the legacy aliases) and machine.
    """
    t = t or current()
    try:
        from packaging import tags
    except ImportError:  # inside a diagnosed interpreter: the exact CPython tags, as strings
        return _plain_tags(t)
    if t.is_home:
        return list(tags.sys_tags())
    platforms = _platforms(t)
    version = t.version_info[:2]
    if t.implementation == "CPython":
        abis = [t.abi_tag] if t.abi_tag else []
        out = list(tags.cpython_tags(version, abis=abis, platforms=platforms))
    else:
        out = list(tags.generic_tags(t.interpreter_tag, [t.abi_tag], platforms))
    out += list(tags.compatible_tags(version, t.interpreter_tag, platforms))
    return out


def _plain_tags(t: Target) -> list[str]:
    """Wheel tags without `packaging` (standard library only, for the worker): this
    interpreter's own ABI, abi3 and none, on its platforms, best first."""
    interp, abi = t.interpreter_tag, t.abi_tag
    out = []
    for plat in _platforms(t):
        out += [f"{interp}-{abi}-{plat}", f"{interp}-abi3-{plat}", f"{interp}-none-{plat}"]
    out += [f"{interp}-none-any", f"py{t.version_info[0]}-none-any"]
    return out


def _platforms(t: Target) -> list[str]:
    machine = t.machine.lower()
    if t.system != "Linux":
        try:
            from packaging import tags
        except ImportError:
            return []
        return list(tags.platform_tags())
    out = []
    glibc = t.glibc.split()[-1] if t.glibc.startswith("glibc") else ""
    try:
        major, minor = (int(x) for x in glibc.split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    if major == 2:
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        for m in range(minor, 4, -1):
            out.append(f"manylinux_2_{m}_{machine}")
            if (m in legacy and machine in ("x86_64", "i686")) or (m == 17 and machine in (
                    "aarch64", "ppc64le", "s390x", "armv7l")):
                out.append(f"{legacy.get(m, 'manylinux2014')}_{machine}")
    out.append(f"linux_{machine}")
    return out
