"""Compiled extensions against what loads them: the torch they were built for (F11) and the
libstdc++ that actually resolves (F12).

- A C++/CUDA extension built against one torch (flash-attn, DeepSpeed ops, BigVGAN's kernel,
  torchvision) references torch's C++ symbols by their mangled names; another torch lacks some
  of them, and loading it fails with `undefined symbol: _ZN3c10...`. The worker imports torch,
  then loads each installed shared object that links libtorch/libc10 (`ctypes.CDLL`, so no
  module code runs): the loader's own error is the verdict.
- An extension compiled by a newer GCC needs symbol versions (`GLIBCXX_3.4.32`) that an older
  libstdc++ does not define; conda environments put their own, often older, libstdc++ first
  (the interpreter's RPATH). Read from the ELF version needs and definitions (doctor/elf.py),
  resolved the way ld.so resolves them, without loading anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any, Optional

from tts_doctor import dists, elf, target
from tts_doctor.finding import Fix, Result, export, fail, manual, ok, skip, steps
from tts_doctor.registry import Context, probe

TORCH_LIBS = re.compile(r"^lib(torch|torch_cpu|torch_cuda|torch_python|c10|c10_cuda)\.so")
# distributions whose extensions other probes judge (torch itself; torchaudio.*)
OWN_PROBES = frozenset({"torch", "torchaudio"})
# The GCC release that first ships a libstdc++ symbol version (libstdc++ manual, "ABI
# Policy and Guidelines": GLIBCXX_3.4.29 is GCC 11.1 ... 3.4.33 is GCC 14.1).
GLIBCXX_GCC = {29: "11.1", 30: "12.1", 31: "13.1", 32: "13.2", 33: "14.1", 34: "15.1"}


def shared_objects(dist: Any) -> list[str]:
    """The ELF shared objects a distribution's RECORD lists."""
    out = []
    for f in dist.files or ():
        name = f.parts[-1] if f.parts else ""
        if (name.endswith(".so") or ".so." in name) and not str(f).startswith(".."):
            out.append(str(dist.locate_file(f)))
    return out


def _torch_extensions() -> list[tuple[Any, str]]:
    found = []
    for key, dist in sorted(dists.all_distributions().items()):
        if key in OWN_PROBES or key.startswith("nvidia-"):
            continue
        for path in shared_objects(dist):
            try:
                info = elf.read(path)
            except (OSError, ValueError, elf.NotELF):
                continue
            if any(TORCH_LIBS.match(lib) for lib in info.needed):
                found.append((dist, path))
    return found


def demangle(symbol: str) -> Optional[str]:
    tool = shutil.which("c++filt")
    if not tool:
        return None
    try:
        out = subprocess.run([tool, symbol], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip()
    return text if text and text != symbol else None


def built_for(dist: Any) -> Optional[str]:
    """The torch a distribution says it was built for: a `torch==X` pin in its requirements,
    or a `torchX.Y` in its local version (flash-attn's `+cu12torch2.6cxx11abiTRUE`)."""
    for line in dist.requires or ():
        m = re.match(r"torch\s*\(?\s*==\s*([\w.+]+)", line.split(";")[0].strip())
        if m:
            return m.group(1)
    m = re.search(r"torch(\d+\.\d+)", dist.version or "")
    return m.group(1) if m else None


def _pair_requirement(name: str, torch_version: str) -> Optional[str]:
    """The release line of a torch companion that pairs with the installed torch 2.X:
    torchvision 0.(X+15)."""
    m = re.match(r"(\d+)\.(\d+)", torch_version)
    if not m or m.group(1) != "2":
        return None
    if dists.canonical(name) == "torchvision":
        return f"torchvision==0.{int(m.group(2)) + 15}.*"
    return None


def judge_torch_extension(name: str, version: str, path: str, error: Optional[str],
                          torch_version: str, pinned: Optional[str],
                          demangled: Optional[str] = None) -> dict[str, Any]:
    """One extension's verdict from what loading it said (`demangled`: the undefined
    symbol as c++filt printed it, where the extension was loaded)."""
    row: dict[str, Any] = {"distribution": name, "version": version, "file": path,
                           "built_for_torch": pinned, "torch": torch_version}
    if error is None:
        row["loads"] = True
        return row
    row["loads"] = False
    row["error"] = error[:400]
    m = re.search(r"undefined symbol: (\S+)", error)
    if m:
        row["undefined_symbol"] = m.group(1)
        if demangled:
            row["demangled"] = demangled[:300]
    return row


def collect_torch_abi(ctx: Context) -> dict[str, Any]:
    """torch's version, the installed shared objects (other than torch's and torchaudio's)
    whose ELF NEEDED names libtorch or libc10 with their distribution, version and the torch
    it says it was built for, what `import torch` raised, and what loading each one with
    `ctypes.CDLL` afterwards raised (its undefined symbol demangled by c++filt)."""
    facts: dict[str, Any] = {"torch": dists.version("torch")}
    if facts["torch"] is None:
        return facts
    found = _torch_extensions()
    facts["extensions"] = [{"distribution": dist.metadata["Name"], "version": dist.version,
                            "file": path, "built_for": built_for(dist)}
                           for dist, path in found]
    if not found:
        return facts
    try:
        import torch  # noqa: F401  (loads libtorch/libc10 first, as every user of them does)
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    import ctypes

    for row in facts["extensions"]:
        try:
            ctypes.CDLL(row["file"])
            row["error"] = None
        except OSError as exc:
            row["error"] = str(exc)
            m = re.search(r"undefined symbol: (\S+)", row["error"])
            if m:
                row["demangled"] = demangle(m.group(1))
    return facts


@probe("extensions.torch-abi", title="Compiled extensions load against the installed torch",
       memo=True, isolated=True, families=("F11", "O6"), collect=collect_torch_abi)
def torch_abi(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Loads every installed shared object that links libtorch or libc10 (other than torch's
    and torchaudio's own, which torch.* and torchaudio.* judge) after `import torch`.

    Finds them by their ELF NEEDED entries in each distribution's RECORD, then loads each with
    `ctypes.CDLL` (the loader resolves every symbol; no module code runs). One that fails to
    load fails the probe with the loader's message, the undefined symbol (demangled when
    `c++filt` is there), and the torch the distribution was built for (its `torch==` pin or a
    `torchX.Y` local tag). The fix installs the distribution's build for the installed torch
    (torchvision 0.(X+15) for torch 2.X), or rebuilds it from source against it. No finding
    when no installed extension links libtorch; `skip` without torch.
    """
    torch_version = facts.get("torch")
    if torch_version is None:
        return None
    found = list(facts.get("extensions") or [])
    if not found:
        return None
    if facts.get("import_error"):
        return skip(f"torch does not import ({facts['import_error']}); see torch.build"[:300])
    rows = [judge_torch_extension(e["distribution"], e["version"], e["file"], e.get("error"),
                                  torch_version, e.get("built_for"), e.get("demangled"))
            for e in found]
    bad = [r for r in rows if not r["loads"]]
    names = sorted({r["distribution"] for r in rows})
    if not bad:
        return ok(f"{len(rows)} extension(s) of {', '.join(names)} load against torch "
                  f"{torch_version}", extensions=rows)
    first = bad[0]
    symbol = first.get("demangled") or first.get("undefined_symbol")
    built = (f", built for torch {first['built_for_torch']}," if first["built_for_torch"]
             else "")
    summary = (f"{first['distribution']} {first['version']}{built} does not load against "
               f"torch {torch_version}: {os.path.basename(first['file'])}: "
               + (f"undefined symbol {symbol}" if symbol else first["error"][:200]))
    if len({r["distribution"] for r in bad}) > 1:
        summary += f" (and {len({r['distribution'] for r in bad}) - 1} more distribution(s))"
    commands = []
    local = torch_version.split("+", 1)[1] if "+" in torch_version else None
    index = (f"--index-url https://download.pytorch.org/whl/{local}"
             if local and re.fullmatch(r"cpu|cu\d{2,3}|rocm[\d.]+", local) else "")
    for dname in dict.fromkeys(r["distribution"] for r in bad):
        pair = _pair_requirement(dname, torch_version)
        if pair:
            commands.append(dists.pip_install("--no-deps", pair, extra=index))
        else:
            commands.append(dists.pip_install("--force-reinstall", "--no-deps",
                                              "--no-build-isolation", "--no-binary", dname,
                                              dname))
    cuda_libs = any(re.search(r"lib(c10|torch)_cuda\.so", r.get("error", "")) for r in bad)
    fix = Fix((f"These are CUDA builds and torch {torch_version} is not: they need its CUDA "
               "libraries (libc10_cuda.so). " if cuda_libs else "") +
              f"These extensions were compiled against another torch (or C++ ABI) than torch "
              f"{torch_version}: install their build for this torch (a wheel whose tag names "
              f"torch {'.'.join(torch_version.split('.')[:2])} and this torch's cxx11 ABI), or "
              "rebuild them from source against it (needs a compiler, and nvcc for CUDA "
              "kernels); or disable the extension where the project has a pure-PyTorch "
              "fallback.", commands=steps(*commands))
    return fail(summary, fix, extensions=rows)


# --- libstdc++ ------------------------------------------------------------------------------

def _executable_rpath() -> tuple[str, ...]:
    """The interpreter's own DT_RPATH (conda's `$ORIGIN/../lib`), expanded: ld.so searches it
    for every object loaded without a RUNPATH of its own."""
    exe = os.path.realpath(dists.executable())
    try:
        info = elf.read(exe)
    except (OSError, ValueError, elf.NotELF):
        return ()
    if info.runpath:
        return ()
    origin = os.path.dirname(exe)
    return tuple(d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in info.rpath)


def resolve_with_exe(lib: str, info: elf.ElfInfo, exe_rpath: tuple[str, ...]) -> Optional[str]:
    """Where ld.so finds `lib` for `info` in this interpreter: the object's RPATH, then the
    executable's RPATH (both only without a RUNPATH), then elf.find_library's order."""
    if not info.runpath:
        origin = os.path.dirname(os.path.abspath(info.path))
        for d in [*(x.replace("$ORIGIN", origin) for x in info.rpath), *exe_rpath]:
            candidate = os.path.join(d, lib)
            if os.path.exists(candidate):
                return candidate
    return elf.find_library(lib, info)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def unmet_versions(paths: list[str], exe_rpath: tuple[str, ...]) -> list[dict[str, Any]]:
    """Shared objects whose symbol-version needs (GLIBCXX_*, CXXABI_*, GCC_*, GLIBC_*) the
    library that resolves does not define."""
    defs_cache: dict[str, tuple[str, ...]] = {}
    out = []
    for path in paths:
        try:
            info = elf.read(path)
        except (OSError, ValueError, elf.NotELF):
            continue
        for lib, versions in info.version_needs:
            where = resolve_with_exe(lib, info, exe_rpath)
            if where is None:
                continue  # a missing library: the probes that resolve NEEDED report it
            real = os.path.realpath(where)
            if real not in defs_cache:
                try:
                    defs_cache[real] = elf.read(real).version_defs
                except (OSError, ValueError, elf.NotELF):
                    defs_cache[real] = ()
            defs = defs_cache[real]
            if not defs:
                continue
            missing = sorted((v for v in versions if v not in defs), key=_version_key)
            if missing:
                out.append({"file": path, "library": lib, "resolves_to": where,
                            "missing": missing, "newest_defined": sorted(
                                (d for d in defs if d.startswith(missing[-1].split("_")[0])),
                                key=_version_key)[-1:]})
    return out


def collect_libstdcxx(ctx: Context) -> dict[str, Any]:
    """How many shared objects the installed distributions' RECORDs list, those whose ELF
    version needs the library that resolves for them does not define (`unmet_versions`), and
    for each: the library of that name in the ld.so cache, whether it is another file and
    defines the missing versions, and whether the resolving library lies inside the
    diagnosed environment's prefix."""
    paths = [p for _k, d in sorted(dists.all_distributions().items())
             for p in shared_objects(d)]
    bad = unmet_versions(paths, _executable_rpath())
    prefix = os.path.realpath(target.current().prefix)  # the diagnosed environment's
    for b in bad:
        system = elf.ld_cache().get(b["library"])
        b["system"] = system
        b["system_defines_missing"] = None
        if system and os.path.realpath(system) != os.path.realpath(b["resolves_to"]):
            try:
                b["system_defines_missing"] = set(b["missing"]) <= set(
                    elf.read(system).version_defs)
            except (OSError, ValueError, elf.NotELF):
                pass
        b["in_prefix"] = os.path.realpath(b["resolves_to"]).startswith(prefix)
    return {"shared_objects": len(paths), "unmet": bad}


@probe("extensions.libstdcxx", title="libstdc++ (and libc, libgcc) define the symbol versions "
       "extensions need", families=("F12",), collect=collect_libstdcxx, memo=True)
def libstdcxx(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks every installed shared object's ELF version needs against the library that
    resolves for it in this interpreter.

    For each shared object in the installed distributions' RECORDs, reads its version needs
    (`GLIBCXX_3.4.32` of libstdc++.so.6, `GLIBC_2.34` of libc.so.6...), finds the library as
    ld.so would (the object's RPATH, the interpreter's own RPATH, as conda's python has,
    LD_LIBRARY_PATH, RUNPATH, the ld.so cache) and reads the versions it defines. A version
    that is not defined fails: importing that extension raises "version `GLIBCXX_3.4.32' not
    found". The fix names the GCC release whose libstdc++ has it, and the newer library to put
    first (conda's libstdcxx-ng, or the system's when it has the version).
    """
    count = int(facts["shared_objects"])
    extra = ("system", "system_defines_missing", "in_prefix")
    unmet = list(facts.get("unmet") or [])
    bad = [{k: v for k, v in b.items() if k not in extra} for b in unmet]
    if not bad:
        return ok(f"{count} shared object(s): every symbol version they need is defined "
                  "by the library that resolves", shared_objects=count)
    first = bad[0]
    need = first["missing"][-1]
    lines = [f"{os.path.basename(b['file'])} needs {', '.join(b['missing'])} of {b['library']}"
             f", but {b['resolves_to']} resolves and does not define it" for b in bad]
    commands: list[Any] = []
    m = re.fullmatch(r"GLIBCXX_3\.4\.(\d+)", need)
    gcc = GLIBCXX_GCC.get(int(m.group(1))) if m else None
    if unmet[0].get("system_defines_missing"):
        commands.append(export("LD_PRELOAD", unmet[0]["system"]))
    if unmet[0].get("in_prefix") and first["library"].startswith("libstdc++"):
        major = (gcc or "13").split(".")[0]
        commands.append(manual("conda", "install", "-c", "conda-forge",
                               f"libstdcxx-ng>={major}", f"libgcc-ng>={major}"))
    fix = Fix(f"The {first['library']} that loads ({first['resolves_to']}) is older than the "
              f"extension needs ({need}"
              + (f", first in GCC {gcc}'s libstdc++" if gcc else "") +
              "): put a newer one first (the environment's libstdcxx-ng, or the system's "
              "library when it has the version), or install a build of the extension made for "
              "an older toolchain (manylinux wheels).", commands=tuple(commands))
    return fail(lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""), fix,
                unmet=bad[:20])
