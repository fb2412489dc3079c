"""torchaudio: paired with torch (A1, A3), its extension loads (A1, A2), its I/O through
TorchCodec and FFmpeg (A4), and the APIs it removed that installed code still calls (A5).

torchaudio's native extension is built against one torch release and one CUDA (or CPU)
build. A CUDA torchaudio next to a CPU torch fails on `libc10_cuda.so`; a torchaudio of another
release fails with `undefined symbol`. The pair is read without importing anything
(`torch/version.py`, `torchaudio/version.py`: the PyPI wheel's metadata says `2.11.0` while its
version.py says `2.11.0+cu130`), and the extension is judged by importing torchaudio in the
worker; when that fails the ELF resolver (doctor.elf) names the library the loader misses,
with torch's own libraries counted as loaded.

The removed APIs were measured, not copied from release notes: the `__all__` of every public
torchaudio module in the wheels of torchaudio 2.1.2, 2.8.0 and 2.11.0 (`pip download
--no-deps`, read with `ast`, not imported) were compared. 2.2 removed `torchaudio.backend.utils`
(set/get/list_audio_backend under `torchaudio.backend`); 2.9 removed the I/O layer (`info`,
`AudioMetaData`, `*_audio_backend`, `io`, `sox_effects`, `kaldi_io`, `backend`, `prototype`,
`functional.apply_codec`, `utils.download_asset`/`sox_utils`/`ffmpeg_utils`) and routes
`load`/`save` through TorchCodec.

Every probe is split (docs/DEVELOPING.md, "Collect and judge"): its `collect_*` function
observes in the worker (versions, version.py fields, the extension's NEEDED libraries, what
importing torchaudio and calling lfilter raised, the installed uses of removed names, the FFmpeg
libraries torchcodec would load) and the probe function judges those facts in the doctor's
process, so `check --save-facts` keeps them and `check --facts` judges them again.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists, upgrades
from tts_doctor.facts.torch_wheels import INDEX, torchaudio_line
from tts_doctor.finding import Fix, Result, Status, cmd, fail, ok, skip, steps, system, warn
from tts_doctor.registry import Context, probe

MEL_SHIM = ("`tts-doctor shims` provides a mel-spectrogram extractor that needs no torchaudio "
            "(shim `mel`: from tts_doctor.shims.mel import MelSpectrogram, torchaudio's "
            "semantics in pure torch)")
CUDA_LIBS = re.compile(r"^lib(c10_cuda|torch_cuda|cudart|cublas|cufft|cusparse|cudnn|nvrtc)")


# --- the pair, from files (no import) -------------------------------------------------------

def _read_version_py(dist_name: str, relative: str) -> dict[str, Optional[str]]:
    """`__version__`, `cuda` and `hip` of a package's generated version.py."""
    dist = dists.distribution(dist_name)
    out: dict[str, Optional[str]] = {"__version__": None, "cuda": None, "hip": None}
    if dist is None:
        return out
    try:
        text = Path(str(dist.locate_file(relative))).read_text(encoding="utf-8")
    except OSError:
        return out
    for key in out:
        m = re.search(rf"^{re.escape(key)}(?::[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", text,
                      re.MULTILINE)
        out[key] = m.group(1) if m else None
    return out


def package_dir(dist_name: str, package: str) -> Optional[Path]:
    dist = dists.distribution(dist_name)
    if dist is None:
        return None
    path = Path(str(dist.locate_file(package)))
    return path if path.is_dir() else None


def _build_tag(cuda: Optional[str], hip: Optional[str]) -> str:
    if cuda:
        return "cu" + cuda.replace(".", "")
    if hip:
        return "rocm" + ".".join(hip.split(".")[:2])
    return "cpu"


@dataclass(frozen=True)
class Side:
    """One half of the pair: versions from metadata and version.py, the build tag."""

    name: str
    version: Optional[str]          # distribution metadata
    runtime: Optional[str]          # version.py __version__ (what import reports)
    tag: Optional[str]              # cpu, cu128, rocm6.2; None when unknown
    evidence: str = ""              # where the tag comes from

    @property
    def label(self) -> str:
        return f"{self.name} {self.runtime or self.version}"


def _extension_needed() -> list[str]:
    """The NEEDED libraries of torchaudio's extension modules (torchaudio/lib/*.so)."""
    root = package_dir("torchaudio", "torchaudio")
    needed: set[str] = set()
    if root is not None:
        from tts_doctor import elf

        for so in elf.extension_files(root / "lib"):
            try:
                needed |= set(elf.read(so).needed)
            except (OSError, elf.NotELF, ValueError):
                continue
    return sorted(needed)


def side_facts() -> dict[str, Any]:
    """Both halves of the pair as installed, without importing anything (collector side):
    torch's metadata version and version.py fields, torchaudio's metadata version, its
    version.py `__version__` and the NEEDED libraries of its extension. None: not installed."""
    out: dict[str, Any] = {"torch": None, "torchaudio": None}
    version = dists.version("torch")
    if version is not None:
        out["torch"] = {"version": version,
                        "version_py": _read_version_py("torch", "torch/version.py")}
    version = dists.version("torchaudio")
    if version is not None:
        out["torchaudio"] = {
            "version": version,
            "runtime": _read_version_py("torchaudio", "torchaudio/version.py")["__version__"],
            "extension_needed": _extension_needed()}
    return out


def torch_side(facts: dict[str, Any]) -> Optional[Side]:
    """torch's half of the pair from `side_facts` (None: not installed)."""
    t = facts.get("torch")
    if not t:
        return None
    v = t.get("version_py") or {}
    return Side("torch", t["version"], v.get("__version__"),
                _build_tag(v.get("cuda"), v.get("hip")), "torch/version.py")


def torchaudio_side(facts: dict[str, Any]) -> Optional[Side]:
    """torchaudio's half from `side_facts`: the build tag from version.py's local tag, else
    from the CUDA libraries its extension needs (None: not installed)."""
    a = facts.get("torchaudio")
    if not a:
        return None
    version, runtime = a["version"], a.get("runtime")
    local = dists.local_tag(runtime) or dists.local_tag(version)
    if local:
        return Side("torchaudio", version, runtime, local, "torchaudio/version.py")
    needed = list(a.get("extension_needed") or [])
    cuda = sorted(n for n in needed if CUDA_LIBS.match(n))
    if cuda:
        return Side("torchaudio", version, runtime, "cuda", f"its extension needs {cuda[0]}")
    if needed:
        return Side("torchaudio", version, runtime, "cpu", "its extension needs no CUDA library")
    return Side("torchaudio", version, runtime, None, "")


def pair_fix(torch: Optional[Side], audio: Side, *, shim: Optional[str] = None) -> Fix:
    """Reinstall torch and torchaudio as one pair from one index. The pair is the older of the
    two release lines (a torchaudio exists for it; one for the newer torch may not), of
    torch's build (CPU or its CUDA)."""
    audio_line = ".".join(map(str, (dists.release(audio.version) or ())[:2]))
    torch_pair = torchaudio_line(torch.version) if torch else None
    if torch_pair and dists.release(torch_pair) and dists.release(audio_line) and \
            dists.release(torch_pair) < dists.release(audio_line):  # type: ignore[operator]
        line = torch_pair
    else:
        line = audio_line
    torch_line = ("1." + line.split(".")[1]) if line.startswith("0.") else line
    tag = torch.tag if torch and torch.tag and torch.tag != "cuda" else "cpu"
    index = INDEX.format(tag=tag)
    commands = steps(dists.pip_uninstall("torch", "torchaudio"),
                     dists.pip_install(f"torch=={torch_line}.*", f"torchaudio=={line}.*",
                                       extra=f"--index-url {index}"))
    newer = torch_pair if torch_pair and torch_pair != line else None
    text = (f"Install torch and torchaudio as one pair from one index: torch {torch_line}.x "
            f"with torchaudio {line}.x, both {'CPU' if tag == 'cpu' else tag} builds ({index})"
            + (f"; or torchaudio {newer}.x if it is published for your torch" if newer else "")
            + ".")
    if shim:
        text += " Code that only needs mel spectrograms can drop torchaudio: " + MEL_SHIM + "."
    return Fix(text, shim=shim, commands=commands)


def _kind(tag: str) -> str:
    if tag == "cpu":
        return "a CPU build"
    if tag == "cuda":
        return "a CUDA build"
    if tag.startswith("cu"):
        return f"a CUDA {tag[2:-1]}.{tag[-1]} build ({tag})"
    return f"a {tag} build"


def judge_pair(torch: Optional[Side], audio: Optional[Side], need: Optional[str]) -> Result:
    """A1/A3: the same release line (torch 2.X with torchaudio 2.X, 1.X with 0.X) and the same
    build (CPU, or the same CUDA)."""
    details: dict[str, Any] = {
        "torch": asdict(torch) if torch else None,
        "torchaudio": asdict(audio) if audio else None}
    if audio is None:
        if need == "required":
            line = torchaudio_line(torch.version) if torch else None
            return fail("torchaudio is not installed, and the recipe needs it",
                        Fix("Install the torchaudio of torch's release line from torch's index.",
                            commands=(dists.pip_install(f"torchaudio=={line}.*" if line
                                                        else "torchaudio"),)), **details)
        return skip("torchaudio is not installed", **details)
    if torch is None:
        return fail(f"torchaudio {audio.version} is installed without torch: `import "
                    "torchaudio` fails (No module named 'torch')", pair_fix(None, audio),
                    **details)
    want = torchaudio_line(torch.version)
    have = ".".join(map(str, (dists.release(audio.version) or ())[:2]))
    problems = []
    families = []
    if want and have != want:
        belongs = ("1." + have.split(".")[1]) if have.startswith("0.") else have
        problems.append(f"{audio.label} belongs to torch {belongs}.x, but torch is "
                        f"{torch.runtime or torch.version} (torchaudio {want}.x pairs with it): "
                        "its extension fails with \"undefined symbol\" or a missing library")
        families.append("A1")
    if audio.tag and torch.tag and audio.tag != torch.tag and not (
            audio.tag == "cuda" and torch.tag.startswith("cu")):
        problems.append(f"{audio.label} is {_kind(audio.tag)} ({audio.evidence}) but torch is "
                        f"{_kind(torch.tag)}"
                        + (": \"libc10_cuda.so: cannot open shared object file\""
                           if torch.tag == "cpu" else
                           ": \"PyTorch and TorchAudio were compiled with different CUDA "
                           "versions\""))
        families.append("A2" if torch.tag == "cpu" else "A3")
    details["families"] = families
    if problems:
        return fail("; ".join(problems), pair_fix(torch, audio), **details)
    return ok(f"{audio.label} pairs with {torch.label} ({torch.tag} build"
              + (f", torchaudio {audio.tag}" if audio.tag and audio.tag != torch.tag else "")
              + ")", **details)


def _need(ctx: Context) -> Optional[str]:
    return ctx.needs("torchaudio")


def judge_pair_behaviour(versions: Result, runs: Optional[bool],
                         error: Optional[str]) -> Result:
    """The pair's verdict when behaviour has been asked: versions only explain. A pair whose
    release lines or builds differ but whose extension loads and runs a transform is not a
    failure (torchaudio 2.9+ builds on torch's stable ABI: torch 2.12.1 + torchaudio 2.11.0
    works, TTS-Audio-Suite#337); one that fails to load fails, with the versions as the reason.
    `runs` None: behaviour was not asked (torch or torchaudio missing)."""
    if versions.status is not Status.FAIL or runs is None:
        return versions
    details = dict(versions.details)
    details["behaviour"] = {"loads_and_runs": runs, "error": error}
    if runs:
        return ok("torch and torchaudio differ (" + versions.summary.split(":")[0] + "), but "
                  "torchaudio's extension loads and runs lfilter: the pair works (torchaudio "
                  "builds on torch's stable ABI since 2.9); reinstall them as one pair only if "
                  "something else fails", **details)
    return Result(Status.FAIL, f"{versions.summary}; loading confirms it: "
                  f"{(error or '')[:200]}", details, versions.fix)


def load_and_run() -> tuple[bool, Optional[str]]:
    """Import torchaudio and run lfilter through its C++ kernel: (works, what failed)."""
    module, error = import_torchaudio()
    if module is None:
        return False, error
    ext = getattr(getattr(module, "_extension", None), "_IS_TORCHAUDIO_EXT_AVAILABLE", None)
    if ext is False:
        return False, "torchaudio imports, but its extension is not available"
    try:
        import torch as _torch

        x = _torch.linspace(-1, 1, 1600).reshape(1, -1)
        y = module.functional.lfilter(x, _torch.tensor([1.0, -0.5]), _torch.tensor([0.5, 0.5]))
        if not bool(_torch.isfinite(y).all()) or tuple(y.shape) != (1, 1600):
            return False, f"lfilter returned {tuple(y.shape)} with non-finite values"
    except Exception as exc:
        return False, _chain(exc)[:800]
    return True, None


def collect_pair(ctx: Context) -> dict[str, Any]:
    """torchaudio.pair's facts: both sides (`side_facts`) and, when their versions or builds
    differ, what loading torchaudio and running lfilter did (`behaviour`; None: not asked,
    the versions pair)."""
    facts = side_facts()
    torch, audio = torch_side(facts), torchaudio_side(facts)
    facts["behaviour"] = None
    if torch is not None and audio is not None and \
            judge_pair(torch, audio, _need(ctx)).status is Status.FAIL:
        runs, error = load_and_run()
        facts["behaviour"] = {"loads_and_runs": runs, "error": error}
    return facts


@probe("torchaudio.pair", title="torchaudio is the release and build (CPU/CUDA) of the "
       "installed torch", isolated=True, families=("A1", "A2", "A3", "F14"),
       collect=collect_pair, component="torchaudio", memo=True)
def pair(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Compares torchaudio with torch: the release line (torch 2.X with torchaudio 2.X, torch
    1.X with 0.X) and the build tag (+cpu, +cu128) read from both packages' version.py (the
    PyPI torchaudio wheel's metadata has no tag; its version.py and its extension's CUDA
    libraries do). When they differ, behaviour decides: the worker imports torchaudio and runs
    lfilter through its extension. A mismatch that loads and runs is `ok` (torchaudio's stable
    ABI); one that does not fails, with the commands that reinstall both from one index."""
    need = _need(ctx)
    torch, audio = torch_side(facts), torchaudio_side(facts)
    versions = judge_pair(torch, audio, need)
    if versions.status is not Status.FAIL or torch is None or audio is None:
        return versions
    behaviour = facts.get("behaviour") or {}
    runs = behaviour.get("loads_and_runs")
    return judge_pair_behaviour(versions, None if runs is None else bool(runs),
                                behaviour.get("error"))


# --- the extension --------------------------------------------------------------------------

def torch_libs() -> tuple[str, ...]:
    """torch's own shared libraries: loaded by `import torch` before torchaudio's extension."""
    lib = package_dir("torch", "torch")
    if lib is None or not (lib / "lib").is_dir():
        return ()
    return tuple(str(p) for p in sorted((lib / "lib").iterdir()) if ".so" in p.name)


def missing_libraries(root: Optional[Path]) -> dict[str, list[str]]:
    """Libraries the extension modules under `root` need that the loader would not find
    (torch's own counted as loaded): library -> the objects that need it."""
    from tts_doctor import elf

    if root is None:
        return {}
    preloaded = torch_libs()
    out: dict[str, list[str]] = {}
    for so in elf.extension_files(root):
        res = elf.resolve(so, preloaded=preloaded)
        for lib, needed_by in res.missing.items():
            out.setdefault(lib, [])
            if needed_by not in out[lib]:
                out[lib].append(needed_by)
    return out


def _chain(exc: BaseException) -> str:
    """An exception and its causes: torch wraps the loader's message in 'Could not load'."""
    parts, seen = [], set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__name__}: {cur}")
        cur = cur.__cause__ or cur.__context__
    return " <- ".join(parts)


def import_torchaudio() -> tuple[Any, Optional[str]]:
    """(torchaudio, None) or (None, the error with its causes)."""
    try:
        import torchaudio
    except Exception as exc:
        return None, _chain(exc)[:1500]
    return torchaudio, None


def collect_extension(ctx: Context) -> dict[str, Any]:
    """torchaudio.extension's facts: both sides (`side_facts`); with both installed, what
    `import torchaudio` raised (with its causes) and the libraries its extension modules miss
    (torch's counted as loaded), or whether its extension is available and what calling
    lfilter through it raised."""
    facts = side_facts()
    if facts["torchaudio"] is None or facts["torch"] is None:
        return facts
    t0 = time.perf_counter()
    module, error = import_torchaudio()
    facts["import_s"] = round(time.perf_counter() - t0, 3)
    if module is None:
        facts["import_error"] = error
        facts["missing"] = missing_libraries(package_dir("torchaudio", "torchaudio"))
        return facts
    facts["module_version"] = str(module.__version__)
    ext = getattr(getattr(module, "_extension", None), "_IS_TORCHAUDIO_EXT_AVAILABLE", None)
    facts["extension_available"] = None if ext is None else bool(ext)
    if ext is False:
        return facts
    try:
        import torch as _torch

        x = _torch.linspace(-1, 1, 1600).reshape(1, -1)
        y = module.functional.lfilter(x, _torch.tensor([1.0, -0.5]), _torch.tensor([0.5, 0.5]))
        if not bool(_torch.isfinite(y).all()) or tuple(y.shape) != (1, 1600):
            raise ValueError(f"lfilter returned {tuple(y.shape)} with non-finite values")
    except Exception as exc:
        facts["call_error"] = {"type": type(exc).__name__, "message": str(exc)[:1000],
                               "chain": _chain(exc)[:800]}
    return facts


@probe("torchaudio.extension", title="torchaudio imports and its native extension loads",
       memo=True,
       isolated=True, families=("A1", "A2"), collect=collect_extension, component="torchaudio",
       crash_fix=Fix("Importing torchaudio crashed the process: its extension is built for "
                     "another torch. Reinstall torch and torchaudio as one pair.",
                     commands=(cmd("{python}", "-m", "pip", "install", "--force-reinstall",
                                   "torch", "torchaudio"),)))
def extension(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Imports torchaudio in the worker and checks that its C++ extension is loaded
    (`_IS_TORCHAUDIO_EXT_AVAILABLE`) and runs (lfilter through its kernel). When the import
    fails, reads the NEEDED libraries of torchaudio/lib/*.so with torch's own libraries as
    already loaded, and names the one the loader misses (a CUDA torchaudio next to a CPU torch
    needs libc10_cuda.so); `undefined symbol` means another torch release."""
    audio = torchaudio_side(facts)
    torch = torch_side(facts)
    if audio is None:  # torchaudio.pair fails when a recipe needs it
        return skip("torchaudio is not installed")
    details: dict[str, Any] = {"torchaudio": audio.runtime or audio.version,
                               "torchaudio_tag": audio.tag,
                               "torch": torch.runtime if torch else None,
                               "torch_tag": torch.tag if torch else None}
    fix = pair_fix(torch, audio, shim="mel")
    if torch is None:
        return fail(f"torchaudio {audio.version} cannot import: torch is not installed", fix,
                    **details)
    details["import_s"] = facts.get("import_s")
    error = facts.get("import_error")
    if error:
        missing = {str(k): list(v) for k, v in (facts.get("missing") or {}).items()}
        details.update(error=error, missing=missing)
        if "No module named 'torch'" in error or error.startswith("ModuleNotFoundError: No "
                                                                  "module named 'torch'"):
            return fail(f"torchaudio {audio.version} cannot import: torch does not import "
                        "(see torch.build)", fix, **details)
        symbol = re.search(r"undefined symbol: (\S+)", error)
        if missing:
            lib = sorted(missing, key=lambda n: (not CUDA_LIBS.match(n), n))[0]
            why = ""
            if CUDA_LIBS.match(lib) and torch.tag == "cpu":
                why = (f": torchaudio {audio.runtime or audio.version} is a CUDA build, torch "
                       f"{torch.runtime} a CPU build without CUDA libraries")
            return fail(f"import torchaudio fails: {lib} (needed by "
                        f"{', '.join(missing[lib])}) cannot be found{why} (\"{lib}: cannot "
                        "open shared object file\")", fix, family="A2", **details)
        if symbol:
            return fail(f"import torchaudio fails: undefined symbol {symbol.group(1)[:120]}: "
                        f"torchaudio {audio.runtime or audio.version} was built against another "
                        f"torch than {torch.runtime}", fix, family="A1", **details)
        return fail(f"import torchaudio fails: {error}"[:500], fix, **details)
    module_version = facts.get("module_version")
    ext = facts.get("extension_available")
    details["extension_available"] = ext
    if ext is False:
        return warn(f"torchaudio {module_version} imports, but its extension is not "
                    "available: functions backed by C++ (lfilter's kernel, forced_align, "
                    "rnnt_loss) raise", fix, **details)
    call = facts.get("call_error")
    if call:
        details["call_error"] = call["chain"]
        return fail(f"torchaudio {module_version} imports, but calling its extension "
                    f"fails: {call['type']}: {call['message']}"[:500], fix, **details)
    return ok(f"torchaudio {module_version} imports with its extension "
              f"({float(details['import_s'] or 0.0):.1f} s) and runs lfilter", **details)


# --- usage scan: removed APIs and load/save users ------------------------------------------

@dataclass(frozen=True)
class Removed:
    module: str
    name: str
    removed_in: str
    instead: str

    @property
    def key(self) -> str:
        return f"{self.module}.{self.name}"


_IO = "TorchCodec (torchcodec.decoders.AudioDecoder / encoders.AudioEncoder) or soundfile"
# Callers of the removed APIs with a release known to have migrated off them (first such
# release, by canonical name): the only upgrades torchaudio.api names. None known yet.
CALLERS_FIXED_IN: dict[str, str] = {}

REMOVED: tuple[Removed, ...] = (
    # 2.9: in 2.8.0's __all__, absent from 2.11.0
    Removed("torchaudio", "info", "2.9", "soundfile.info, or AudioDecoder(path).metadata"),
    Removed("torchaudio", "AudioMetaData", "2.9", "soundfile.info / torchcodec metadata"),
    Removed("torchaudio", "list_audio_backends", "2.9", "nothing: load/save use TorchCodec"),
    Removed("torchaudio", "get_audio_backend", "2.9", "nothing: load/save use TorchCodec"),
    Removed("torchaudio", "set_audio_backend", "2.9", "delete the call (a no-op since 2.2)"),
    Removed("torchaudio", "backend", "2.9", _IO),
    Removed("torchaudio.backend", "sox_io_backend", "2.9", _IO),
    Removed("torchaudio.backend", "soundfile_backend", "2.9", _IO),
    Removed("torchaudio.backend", "no_backend", "2.9", _IO),
    Removed("torchaudio.backend", "common", "2.9", _IO),
    Removed("torchaudio", "io", "2.9", "torchcodec (decoders/encoders)"),
    *(Removed("torchaudio.io", n, "2.9", "torchcodec (decoders/encoders)")
      for n in ("StreamReader", "StreamWriter", "AudioEffector", "CodecConfig", "play_audio")),
    Removed("torchaudio", "sox_effects", "2.9", "torchaudio.functional / transforms"),
    *(Removed("torchaudio.sox_effects", n, "2.9", "torchaudio.functional / transforms")
      for n in ("apply_effects_tensor", "apply_effects_file", "effect_names")),
    Removed("torchaudio", "kaldi_io", "2.9", "the kaldiio package"),
    Removed("torchaudio", "prototype", "2.9", "a pinned torchaudio<2.9"),
    Removed("torchaudio.functional", "apply_codec", "2.9", "torchcodec's encoders"),
    Removed("torchaudio.utils", "download_asset", "2.9", "your own download"),
    Removed("torchaudio.utils", "sox_utils", "2.9", "nothing (sox is gone)"),
    Removed("torchaudio.utils", "ffmpeg_utils", "2.9", "torchcodec"),
    # 2.2: in 2.1.2, absent from 2.8.0
    Removed("torchaudio.backend", "utils", "2.2", "torchaudio.list_audio_backends (<2.9)"),
    *(Removed("torchaudio.backend", n, "2.2", f"torchaudio.{n} (<2.9)")
      for n in ("set_audio_backend", "get_audio_backend", "list_audio_backends")),
)
IO_CALLS = ("load", "save", "load_with_torchcodec", "save_with_torchcodec")
_SCAN: dict[Any, list[Any]] = {}


def _patterns() -> list[Any]:
    from tts_doctor.scan import Pattern

    return ([Pattern(r.module, r.name) for r in REMOVED]
            + [Pattern("torchaudio", n) for n in IO_CALLS])


def _declare() -> None:
    from tts_doctor import scan

    scan.watch("torchaudio", _patterns(), exclude=("torchaudio",))


def usages() -> tuple[list[Any], float]:
    """Uses of the removed names and of load/save in installed distributions (torchaudio
    itself excluded); both probes of a run share one scan (cached on disk by doctor.scan)."""
    from tts_doctor import scan

    t0 = time.perf_counter()
    key = tuple(sorted((k, d.version) for k, d in dists.all_distributions().items()))
    if key not in _SCAN:
        _SCAN.clear()
        _SCAN[key] = scan.find_usages(_patterns(), exclude=("torchaudio",))
    return _SCAN[key], time.perf_counter() - t0


def _where(u: Any) -> str:
    dist = dists.distribution(u.distribution)
    if dist is not None:
        try:
            root = str(dist.locate_file(""))
            return f"{os.path.relpath(u.file, root)}:{u.line}"
        except (ValueError, TypeError):
            pass
    return f"{u.file}:{u.line}"


def _present(entry: Removed) -> bool:
    """Whether the name exists in the imported torchaudio."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            mod = importlib.import_module(entry.module)
        except Exception:
            return False
        try:
            return hasattr(mod, entry.name)
        except Exception:  # a lazy attribute that fails to load still exists
            return True


def _usage_facts(found: list[Any], keys: set[str]) -> list[dict[str, Any]]:
    """The uses of `keys` as facts: distribution, version, file, line, name, guarded, reached,
    origin, and `where` relative to the distribution's folder."""
    return [dict(u.to_dict(), where=_where(u)) for u in found if u.key in keys]


def collect_api(ctx: Context) -> dict[str, Any]:
    """torchaudio.api's facts: torchaudio's versions, what importing it raised, which removed
    names the imported module still has (`present`; None when it does not import), every
    installed use of a removed name (file, line, guarded, reached), and what the usage index
    knows of the code the deployment reaches."""
    from tts_doctor import scan

    facts = side_facts()
    if facts["torchaudio"] is None:
        return facts
    module, error = import_torchaudio()
    facts["import_error"] = error
    facts["present"] = ({r.key: _present(r) for r in REMOVED} if module is not None
                        else None)
    found, seconds = usages()
    facts.update(usages=_usage_facts(found, {r.key for r in REMOVED}),
                 scan_s=round(seconds, 3), distributions=len(dists.all_distributions()),
                 reach=scan.reach_facts())
    return facts


@probe("torchaudio.api", title="APIs torchaudio removed (2.2, 2.9) that installed packages "
       "still call", isolated=True, families=("A5",), timeout=120, collect=collect_api,
       component="torchaudio", memo=True, reads_index=True)
def api(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Scans installed distributions (doctor.scan: AST, cached) for the torchaudio names that
    2.2 and 2.9 removed (`set_audio_backend`, `info`, `AudioMetaData`, `sox_effects`, `io`,
    `backend`...). Which names are gone comes from the imported torchaudio, or from its version
    when it does not import. Unguarded uses of a gone name fail, naming the package, file and
    line; uses that an upgrade of torchaudio would break warn. Only code the deployment reaches is
    judged (docs/reachability.md); uses outside it are listed in `details.unreached`."""
    audio = torchaudio_side(facts)
    if audio is None:
        return skip("torchaudio is not installed")
    error = facts.get("import_error")
    have = dists.release(audio.version) or ()
    present = facts.get("present")
    if present is not None:
        gone = {r.key for r in REMOVED if not present.get(r.key, False)}
        how = "checked on the imported module"
    else:
        gone = {r.key for r in REMOVED if have[:2] >= (dists.release(r.removed_in) or ())}
        how = "judged by its version: it does not import, see torchaudio.extension"
    from tts_doctor import scan

    seconds = float(facts.get("scan_s") or 0.0)
    reach = dict(facts.get("reach") or {})
    by_key = {r.key: r for r in REMOVED}
    # only the code the deployment reaches is judged (doctor/usage.py); the rest is listed
    uses, outside = scan.split_reached([u for u in facts.get("usages") or []
                                        if u["name"] in by_key])
    unreached = scan.unreached_note(outside, list(reach.get("entries") or []))
    rows = [{"distribution": u["distribution"], "version": u["version"], "where": u["where"],
             "name": u["name"], "guarded": u["guarded"], "origin": u["origin"]} for u in uses]
    breaking = [r for r in rows if r["name"] in gone and not r["guarded"]]
    later = [r for r in rows if r["name"] not in gone and not r["guarded"]]
    details: dict[str, Any] = {"torchaudio": audio.runtime or audio.version, "gone": sorted(gone),
                               "presence": how, "users": breaking[:50],
                               "future_users": later[:50],
                               "guarded_users": [r for r in rows if r["guarded"]][:20],
                               "scan_s": round(seconds, 3),
                               "unreached_users": [
                                   {"distribution": u["distribution"],
                                    "where": f"{u['file']}:{u['line']}", "name": u["name"]}
                                   for u in outside][:20]}
    if unreached:
        details["unreached"] = unreached
    if error:
        details["import_error"] = error[:300]
    if breaking or later:
        bad = breaking or later
        groups: dict[str, list[str]] = {}
        for r in bad:
            groups.setdefault(f"{r['distribution']} {r['version']}", []).append(
                f"{r['name']} at {r['where']}")
        what = "; ".join(f"{pkg} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
                         for pkg, items in groups.items())
        names = sorted({r["name"] for r in bad})
        first = min((by_key[n].removed_in for n in names), key=lambda v: dists.release(v) or ())
        # an upgrade of a caller only to a release known to have migrated (CALLERS_FIXED_IN)
        callers = upgrades.plan(upgrades.upgrade(*label.rsplit(" ", 1), CALLERS_FIXED_IN)
                                for label in groups)
        pin = dists.pip_install(f"torchaudio<{first}")
        homes = "; ".join(f"{n} -> {by_key[n].instead}" for n in names[:6])
        fix = Fix(f"The packages that call them: {callers.words()}. Keep torchaudio below "
                  f"{first} (with the torch of that line; see torchaudio.pair), or patch the "
                  f"calls: {homes}.",
                  commands=(*((steps(*callers.commands),) if callers.commands else ()), pin))
        if breaking:
            # no entry point known: a use in installed code may never run, so at most a warn
            report = fail if reach.get("known") or any(
                r["origin"] in ("editable", "project") for r in breaking) else warn
            return report(f"torchaudio {audio.runtime or audio.version} no longer has "
                          f"{', '.join(names)}, which installed code calls: {what}"[:600]
                          + (f" ({scan.NO_ENTRY_NOTE})" if report is warn else ""), fix,
                          **details)
        return warn(f"torchaudio {audio.runtime or audio.version} still has {', '.join(names)},"
                    f" but torchaudio {first} removed them: upgrading breaks {what}"[:600], fix,
                    **details)
    tail = f"; {len(details['guarded_users'])} guarded use(s)" if details["guarded_users"] else ""
    if unreached:
        tail += f"; {unreached}"
    return ok(f"torchaudio {audio.runtime or audio.version} lacks {len(gone)} removed names "
              f"({how}); none is used unguarded by the {facts.get('distributions')} "
              f"installed distributions{tail}", **details)


# --- I/O through TorchCodec and FFmpeg -----------------------------------------------------

def ffmpeg_majors(root: Optional[Path]) -> dict[str, Any]:
    """Which of torchcodec's per-FFmpeg core libraries (libtorchcodec_coreN.so) would load:
    N -> the libraries it misses (torch's own counted as loaded)."""
    from tts_doctor import elf

    out: dict[str, Any] = {}
    if root is None:
        return out
    preloaded = torch_libs()
    for so in sorted(root.glob("libtorchcodec_core*.so")):
        m = re.search(r"core(\d+)\.so$", so.name)
        if not m:
            continue
        res = elf.resolve(so, preloaded=preloaded, depth=1)
        out[m.group(1)] = sorted(res.missing)
    return out


def _roundtrip(module: Any) -> Optional[str]:
    """torchaudio.save then torchaudio.load of a 0.1 s WAV in a temporary folder."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory(prefix="tts-doctor-ta-") as tmp:
        path = os.path.join(tmp, "tone.wav")
        x = torch.sin(torch.arange(1600) / 16000 * 2 * 3.14159 * 440).reshape(1, -1) * 0.5
        try:
            module.save(path, x, 16000)
            y, sr = module.load(path)
        except Exception as exc:
            return _chain(exc)[:600]
        if sr != 16000 or tuple(y.shape) != (1, 1600):
            return f"read back {tuple(y.shape)} at {sr} Hz, wrote (1, 1600) at 16000 Hz"
    return None


def collect_io(ctx: Context) -> dict[str, Any]:
    """torchaudio.io's facts, for torchaudio 2.9 and later: the installed calls of
    torchaudio.load/save, torchcodec's version, `ctypes.util.find_library("avutil")`, which of
    torchcodec's per-FFmpeg core libraries miss which libraries and, when one resolves, what
    importing torchaudio raised or what a save/load round trip of a WAV did."""
    facts = side_facts()
    audio = facts["torchaudio"]
    if audio is None or (dists.release(audio["version"]) or ())[:2] < (2, 9):
        return facts
    import ctypes.util

    found, _ = usages()
    facts["io_usages"] = _usage_facts(found, {f"torchaudio.{n}" for n in IO_CALLS})
    facts["torchcodec"] = dists.version("torchcodec")
    facts["find_library_avutil"] = ctypes.util.find_library("avutil")
    if facts["torchcodec"] is None:
        return facts
    majors = ffmpeg_majors(package_dir("torchcodec", "torchcodec"))
    facts["ffmpeg_majors"] = majors
    if majors and not _usable(majors):
        return facts
    module, error = import_torchaudio()
    facts["import_error"] = error
    if module is not None:
        facts["roundtrip_error"] = _roundtrip(module)
    return facts


def _usable(majors: dict[str, list[str]]) -> list[str]:
    """The FFmpeg majors whose torchcodec core library misses no FFmpeg library."""
    return [m for m, miss in majors.items()
            if not [x for x in miss if x.startswith(("libav", "libsw"))]]


@probe("torchaudio.io", title="torchaudio >= 2.9 load/save: TorchCodec and the FFmpeg "
       "libraries it needs", isolated=True, families=("A4",), timeout=120, collect=collect_io,
       component="torchaudio", memo=True, reads_index=True)
def io(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """torchaudio 2.9 and later read and write audio only through TorchCodec, which loads the
    system's shared FFmpeg (libavutil.so.56 to .60, one torchcodec core library per FFmpeg
    major). Checks that torchcodec is installed, which of its core libraries resolve (ELF, and
    `ctypes.util.find_library("avutil")`), and when torchaudio imports, saves and loads a real
    WAV. Names the installed packages that call torchaudio.load/save."""
    audio = torchaudio_side(facts)
    if audio is None:
        return skip("torchaudio is not installed")
    have = dists.release(audio.version) or ()
    if have[:2] < (2, 9):
        return skip(f"torchaudio {audio.version} reads and writes through its own backends "
                    "(sox, soundfile, ffmpeg; audio.backends checks them)")
    by_caller: dict[str, list[str]] = {}
    for u in facts.get("io_usages") or []:
        if u.get("reached") is not False:  # callers the deployment reaches
            by_caller.setdefault(f"{u['distribution']} {u['version']}", []).append(u["where"])
    callers = [f"{who} ({', '.join(sites[:2])}{', ...' if len(sites) > 2 else ''})"
               for who, sites in sorted(by_caller.items())]
    tc = facts.get("torchcodec")
    avutil = facts.get("find_library_avutil")
    details: dict[str, Any] = {"torchaudio": audio.runtime or audio.version, "torchcodec": tc,
                               "find_library_avutil": avutil, "load_save_users": callers}
    who = f"; installed callers of torchaudio.load/save: {', '.join(callers)}" if callers else ""
    apt = system("apt-get", "install", "-y", "ffmpeg",
                 note="the shared libraries libavutil, libavcodec, ...")
    soundfile = dists.pip_install("soundfile")
    if tc is None:
        return warn(f"torchaudio {audio.runtime or audio.version} loads and saves audio only "
                    "through TorchCodec, which is not installed: torchaudio.load/save raise "
                    f"\"TorchCodec is required for load_with_torchcodec\"{who}",
                    Fix("Install torchcodec (the release paired with your torch) and FFmpeg's "
                        "shared libraries, or read and write audio with soundfile instead.",
                        commands=(steps(dists.pip_install("torchcodec"), apt), soundfile)),
                    **details)
    majors = {str(k): list(v) for k, v in (facts.get("ffmpeg_majors") or {}).items()}
    details["ffmpeg_majors"] = majors
    usable = _usable(majors)
    av_missing = sorted({x for miss in majors.values() for x in miss
                         if x.startswith("libavutil")})
    if majors and not usable:
        return warn(f"torchcodec {tc} finds no FFmpeg: none of its core libraries resolves "
                    f"({', '.join(av_missing)} missing; find_library('avutil') = {avutil}): "
                    f"torchaudio.load/save fail (\"Could not load libtorchcodec\"){who}"[:600],
                    Fix("Install FFmpeg's shared libraries (major 4 to 8), or read and write "
                        "audio with soundfile instead.", commands=(apt, soundfile)), **details)
    details["ffmpeg_usable"] = sorted(usable)
    error = facts.get("import_error")
    if error or "roundtrip_error" not in facts:
        return ok(f"torchcodec {tc} with FFmpeg {', '.join(sorted(usable)) or '?'} resolves; "
                  "torchaudio itself does not import (see torchaudio.extension), so load/save "
                  "were not run", import_error=(error or "")[:300], **details)
    problem = facts.get("roundtrip_error")
    if problem:
        details["roundtrip_error"] = problem
        return warn(f"torchaudio.save/load of a WAV fails through torchcodec {tc}: {problem}"
                    [:600], Fix("Reinstall torchcodec paired with your torch, and FFmpeg's "
                                "shared libraries; or use soundfile.",
                                commands=(steps(dists.pip_install("torchcodec",
                                                                  extra="--force-reinstall"),
                                                apt), soundfile)),
                    **details)
    return ok(f"torchaudio.save/load round-trip a WAV through torchcodec {tc} (FFmpeg "
              f"{', '.join(sorted(usable))})", **details)


_declare()
