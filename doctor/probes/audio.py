"""Audio I/O: libsndfile (I1), ffmpeg/ffprobe (I2), sox (I3), and at least one working way to
read and write a WAV (I3: "No audio I/O backend is available").

`audio.sndfile` and `audio.backends` load native code (soundfile's libsndfile, SciPy) and run
in the worker; they write and read a real WAV in a temporary folder. `audio.ffmpeg` and
`audio.sox` only look for programs and libraries (`shutil.which`, the loader's cache) and run
`-version` under a timeout, in-process. The binaries only matter when something installed
calls them: with no such package they are `skip`, not a warning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable, Optional

from tts_doctor import dists, elf, upgrades
from tts_doctor.applicability import not_installed
from tts_doctor.finding import Fix, Result, fail, ok, skip, system, warn
from tts_doctor.registry import Context, probe

APT_SNDFILE = system("apt-get", "install", "-y", "libsndfile1")
APT_FFMPEG = system("apt-get", "install", "-y", "ffmpeg")
APT_SOX = system("apt-get", "install", "-y", "sox", "libsox-fmt-all")

# Installed distribution -> the programs it runs (and the message users see without them).
FFMPEG_USERS: dict[str, tuple[str, ...]] = {
    "pydub": ("ffmpeg", "ffprobe"),            # "Couldn't find ffprobe or avprobe"
    "ffmpeg-python": ("ffmpeg", "ffprobe"),
    "audioread": ("ffmpeg",),                   # librosa's fallback decoder for mp3/m4a
    "openai-whisper": ("ffmpeg",),
    "ffmpy": ("ffmpeg",),                       # gradio's audio/video conversions
}
SOX_USERS: dict[str, tuple[str, ...]] = {
    "sox": ("sox",),                            # pysox runs the sox program
    "pysndfx": ("sox",),
}
# Packages that read or write audio files and need some backend to do it.
AUDIO_CONSUMERS = ("librosa", "torchaudio", "tts", "coqui-tts", "pydub", "audioread",
                   "piper-tts", "modelscope", "funasr", "cosyvoice", "indextts", "f5-tts")


def _reached_owners() -> Optional[set[str]]:
    """Distributions with code the deployment reaches (doctor/usage.py), or None when no
    entry point is known (then every installed user counts)."""
    from tts_doctor import scan

    facts = scan.reach_facts()
    if not facts.get("known"):
        return None
    return {dists.canonical(n) for n in facts.get("reached_owners") or []}


def _users(table: dict[str, tuple[str, ...]],
           reached: Optional[set[str]] = None) -> dict[str, dict[str, Any]]:
    """The installed distributions of `table` (only those in `reached`, when given)."""
    out = {}
    for name, programs in table.items():
        version = dists.version(name)
        if version is not None and (reached is None or dists.canonical(name) in reached):
            out[name] = {"version": version, "programs": list(programs)}
    return out


def run_version(program: str, *args: str, timeout: float = 5.0) -> tuple[Optional[str], str]:
    """(first line of `program -version`, error) for a program on PATH."""
    path = shutil.which(program)
    if path is None:
        return None, "not on PATH"
    try:
        proc = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return None, f"{path} {' '.join(args)} did not finish in {timeout:g} s"
    except OSError as exc:
        return None, f"{path}: {exc.strerror or exc}"
    text = (proc.stdout or proc.stderr).strip()
    if proc.returncode != 0:
        return None, f"{path} {' '.join(args)} exited with {proc.returncode}: {text[-300:]}"
    return (text.splitlines() or [path])[0][:200], ""


def _need_verb(users: dict[str, Any]) -> str:
    """'needs' for one subject (one package, or "the recipe" when no package), else 'need'."""
    return "need" if len(users) > 1 else "needs"


def _programs(names: tuple[str, ...], flag: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name in names:
        line, error = run_version(name, flag)
        out[name] = {"path": shutil.which(name), "version": line, "error": error or None}
    return out


def _reach(reached: Optional[set[str]]) -> Optional[list[str]]:
    return sorted(reached) if reached is not None else None


def collect_ffmpeg(ctx: Context) -> dict[str, Any]:
    """ffmpeg and ffprobe as found on PATH with the first line of `-version` (or why it did
    not run), the installed distributions that run them (all of them, and those the
    deployment reaches: None when no entry point is known), and imageio-ffmpeg's bundled
    binary."""
    reached = _reached_owners()
    facts: dict[str, Any] = {"installed_users": _users(FFMPEG_USERS),
                             "reached_owners": _reach(reached),
                             "users": _users(FFMPEG_USERS, reached),
                             "programs": _programs(("ffmpeg", "ffprobe"), "-version"),
                             "imageio_ffmpeg": dists.version("imageio-ffmpeg")}
    if facts["imageio_ffmpeg"]:
        dist = dists.distribution("imageio-ffmpeg")
        found = [str(dist.locate_file(f)) for f in dist.files or []
                 if "binaries/ffmpeg" in str(f)]
        facts["imageio_ffmpeg_binary"] = found[0] if found else None
    return facts


@probe("audio.ffmpeg", title="ffmpeg and ffprobe on PATH when an installed package runs them",
       families=("I2",), timeout=120, collect=collect_ffmpeg, component="ffmpeg")
def ffmpeg(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that ffmpeg and ffprobe run when an installed package, or the recipe, needs them.

    No finding when the recipe marks ffmpeg absent. Finds the programs with `shutil.which` and runs
    `-version` under a timeout; their users are pydub, ffmpeg-python, audioread, openai-whisper and
    ffmpy. Needed by nobody: `ok` when both run, else `skip`. A needed program that does not run
    fails when the recipe requires ffmpeg or the program is on PATH but broken, else warns. The fix
    is `apt-get install -y ffmpeg`, plus a link to imageio-ffmpeg's bundled ffmpeg if present.
    """
    need = ctx.needs("ffmpeg")
    # a package runs ffmpeg only when the deployment reaches it
    users: dict[str, Any] = dict(facts.get("users") or {})
    programs: dict[str, Any] = dict(facts["programs"])
    details: dict[str, Any] = {"programs": programs, "users": users}
    idle = sorted(set(facts.get("installed_users") or {}) - set(users))
    if idle:
        details["unreached_users"] = idle
    bundled = None
    if facts.get("imageio_ffmpeg"):
        bundled = facts.get("imageio_ffmpeg_binary")
        details["imageio_ffmpeg_binary"] = bundled
    needed = sorted({p for u in users.values() for p in u["programs"]})
    if need == "required":
        needed = sorted({*needed, "ffmpeg"})
    missing = [p for p in needed if programs[p]["version"] is None]
    if not needed:
        if all(p["version"] for p in programs.values()):
            return ok(f"ffmpeg and ffprobe on PATH ({programs['ffmpeg']['version']}); no "
                      "installed package needs them", **details)
        return skip("ffmpeg/ffprobe are not on PATH, and no installed package runs them",
                    **details)
    if not missing:
        return ok(f"{', '.join(needed)} on PATH ({programs['ffmpeg']['version']})", **details)
    who = ", ".join(f"{n} {u['version']}" for n, u in sorted(users.items())) or "the recipe"
    broken = [p for p in missing if programs[p]["path"]]
    why = "; ".join(f"{p}: {programs[p]['error']}" for p in missing)
    commands = [APT_FFMPEG]
    if bundled:
        commands.append(system("ln", "-s", str(bundled), "/usr/local/bin/ffmpeg"))
    fix = Fix("Install FFmpeg (it brings both ffmpeg and ffprobe) in the image; a static build "
              "on PATH works as well" + (" (imageio-ffmpeg's bundled ffmpeg can be linked onto "
                                         "PATH, but it has no ffprobe)" if bundled else "") + ".",
              commands=tuple(commands))
    summary = (f"{' and '.join(missing)} {'does' if len(missing) == 1 else 'do'} not run here, "
               f"and {who} {_need_verb(users)} "
               f"{'it' if len(missing) == 1 else 'them'} ({why})")
    if "ffprobe" in missing and "pydub" in users:
        summary += ": pydub says \"Couldn't find ffprobe or avprobe\""
    report = fail if need == "required" or broken else warn
    return report(summary[:500], fix, **details)


def _libsox() -> Optional[str]:
    for name in ("libsox.so.3", "libsox.so"):
        if name in elf.ld_cache():
            return elf.ld_cache()[name]
    return None


def collect_sox(ctx: Context) -> dict[str, Any]:
    """The sox program on PATH with the first line of `sox --version` (or why it did not
    run), libsox in the loader's cache, the installed users of sox the deployment reaches,
    and torchaudio's version (its sox backend needs libsox)."""
    line, error = run_version("sox", "--version")
    return {"users": _users(SOX_USERS, _reached_owners()), "path": shutil.which("sox"),
            "version": line, "error": error or None, "libsox": _libsox(),
            "torchaudio": dists.version("torchaudio")}


@probe("audio.sox", title="The sox program (and libsox) when an installed package needs them",
       families=("I3",), timeout=120, collect=collect_sox, component="sox")
def sox(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that the sox program runs when an installed package, or the recipe, needs it.

    No finding when the recipe marks sox absent. Runs `sox --version` and looks for its users (the
    `sox` package, pysndfx); libsox is looked up in the loader's cache and reported, with what it
    means for torchaudio's sox backend, but not judged. Needed by nobody: `ok` when sox runs, else
    `skip`. Needed and not running: `fail` when the recipe requires sox or a sox on PATH is broken,
    else `warn`. The fix is `apt-get install -y sox libsox-fmt-all`.
    """
    need = ctx.needs("sox")
    users: dict[str, Any] = dict(facts.get("users") or {})
    line, error, lib = facts.get("version"), facts.get("error") or "", facts.get("libsox")
    details: dict[str, Any] = {"sox": {"path": facts.get("path"), "version": line,
                                       "error": error or None},
                               "libsox": lib, "users": users}
    if facts.get("torchaudio"):
        details["torchaudio_sox_backend"] = (
            "libsox found" if lib else "libsox not found: torchaudio's sox backend is "
            "unavailable (soundfile or FFmpeg backends serve instead)")
    if not users and need != "required":
        if line:
            return ok(f"sox on PATH ({line}); no installed package needs it", **details)
        return skip("sox is not on PATH, and no installed package runs it", **details)
    if line:
        return ok(f"sox on PATH ({line})" + (f", libsox at {lib}" if lib else ""), **details)
    who = ", ".join(f"{n} {u['version']}" for n, u in sorted(users.items())) or "the recipe"
    fix = Fix("Install SoX (the program and its format handlers) in the image.",
              commands=(APT_SOX,))
    report = fail if need == "required" or facts.get("path") else warn
    return report(f"sox does not run here ({error}), and {who} {_need_verb(users)} it", fix,
                  **details)


# --- in the worker ---------------------------------------------------------------------------


def _tone(n: int = 1600, sr: int = 16000) -> list[float]:
    import math

    return [0.5 * math.sin(2 * math.pi * 440.0 * i / sr) for i in range(n)]


def _roundtrip(write: Callable[[str, Any, int], None],
               read: Callable[[str], tuple[Any, int]]) -> Optional[str]:
    """Write a 0.1 s 16 kHz tone as 16-bit WAV and read it back; None if it survives."""
    import numpy as np

    x = np.asarray(_tone(), dtype=np.float32)
    folder = tempfile.mkdtemp(prefix="tts-doctor-audio-")
    path = os.path.join(folder, "tone.wav")
    try:
        write(path, x, 16000)
        raw, sr = read(path)
        raw = np.asarray(raw)
        y = raw.astype(np.float64).reshape(-1)
        if np.issubdtype(raw.dtype, np.integer):
            y = y / 32768.0
        if sr != 16000:
            return f"read back at {sr} Hz, wrote 16000 Hz"
        if y.shape[0] != x.shape[0]:
            return f"read back {y.shape[0]} samples, wrote {x.shape[0]}"
        err = float(np.max(np.abs(y - x)))
        if err > 1e-3:
            return f"samples changed by up to {err:.4f}"
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bundled_sndfile() -> Optional[str]:
    import importlib.util

    try:
        spec = importlib.util.find_spec("_soundfile_data")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for name in sorted(os.listdir(folder)):
            if name.startswith("libsndfile") and ".so" in name:
                return os.path.join(folder, name)
    return None


def _system_sndfile() -> Optional[str]:
    import ctypes.util

    return ctypes.util.find_library("sndfile")


def _loaded(prefix: str) -> Optional[str]:
    """The path of a library this process has mapped (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                path = line.rsplit(" ", 1)[-1].strip()
                if os.path.basename(path).startswith(prefix):
                    return path
    except OSError:
        pass
    return None


def libraries_found(bundled: Optional[str], system: Optional[str]) -> str:
    """What was found of libsndfile, for a message: the bundled file and the system library
    (ctypes.util.find_library's answer), or that there is none of either."""
    parts = [f"bundled libsndfile at {bundled}" if bundled else "no bundled libsndfile",
             f"system library {system}" if system else "none on the system"]
    return ", ".join(parts)


def loaded_from(loaded: Optional[str], bundled: Optional[str]) -> str:
    """'bundled' when the library soundfile loaded is the bundled file, else where it came
    from. `loaded` may be a bare name (soundfile's `_libname`, e.g. 'libsndfile.so.1') rather
    than a path: only existing paths are compared."""
    if not loaded:
        return "from an unknown place"
    if bundled and os.path.isabs(loaded):
        try:
            if os.path.samefile(loaded, bundled):
                return "bundled"
        except OSError:
            pass
    return f"from {loaded}"


# soundfile 0.12 is the first release whose wheels bundle libsndfile
SOUNDFILE_BUNDLES = {"soundfile": "0.12"}


def _soundfile_fix(version: Optional[str]) -> Fix:
    up = upgrades.upgrade("soundfile", version, SOUNDFILE_BUNDLES)
    command = up.command()
    if command is not None:
        return Fix("soundfile needs the libsndfile C library: install a soundfile release whose "
                   "wheel bundles it (0.12 or newer), or the system package.",
                   commands=(command, APT_SNDFILE))
    # already a bundling release: no newer one is known to fix this; reinstall it, or use the
    # system library
    return Fix(f"soundfile {version} bundles libsndfile, yet it does not load: reinstall this "
               "release (a damaged install), or install the system package.",
               commands=(dists.pip_install(f"soundfile=={version}", extra="--force-reinstall"),
                         APT_SNDFILE))


def collect_sndfile(ctx: Context) -> dict[str, Any]:
    """soundfile's version, the bundled (`_soundfile_data`) and system libsndfile, what
    `import soundfile` raised, the libsndfile version and file it loaded (and whether that
    is the bundled one), its formats, and what a 16-bit WAV round trip of a tone went wrong
    with (None: the rate, length and samples survived)."""
    facts: dict[str, Any] = {"version": dists.version("soundfile")}
    if facts["version"] is None:
        return facts
    bundled, system = _bundled_sndfile(), _system_sndfile()
    facts.update(bundled_library=bundled, system_library=system)
    try:
        import soundfile
    except Exception as exc:
        kind = "OSError" if isinstance(exc, OSError) else type(exc).__name__
        facts.update(import_error=f"{kind}: {exc}", import_message=str(exc),
                     import_os_error=isinstance(exc, OSError))
        return facts
    loaded = (_loaded("libsndfile") or getattr(soundfile, "_full_path", None)
              or getattr(soundfile, "_libname", None))
    facts.update(libsndfile=getattr(soundfile, "__libsndfile_version__", None),
                 loaded=loaded, loaded_from=loaded_from(loaded, bundled))
    try:
        facts["formats"] = sorted(soundfile.available_formats())
    except Exception:
        pass

    def read(path: str) -> tuple[Any, int]:
        return soundfile.read(path, dtype="float32")

    def write(path: str, x: Any, sr: int) -> None:
        soundfile.write(path, x, sr, subtype="PCM_16")

    try:
        facts["roundtrip_problem"] = _roundtrip(write, read)
    except Exception as exc:
        facts["roundtrip_problem"] = f"{type(exc).__name__}: {exc}"
    return facts


@probe("audio.sndfile", title="libsndfile is found, and soundfile writes and reads a WAV",
       memo=True, isolated=True, families=("I1",), collect=collect_sndfile, component="soundfile")
def sndfile(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks that soundfile finds libsndfile, and writes and reads back a WAV.

    No finding when the recipe marks soundfile absent; not installed: `skip`, or `fail` when
    required. Notes the bundled (`_soundfile_data`) and system libsndfile, imports soundfile in the
    worker and round-trips a 0.1 s 16 kHz tone as 16-bit WAV in a temporary folder (rate, length and
    samples must survive). An import error (the message names the bundled and system libsndfile
    found, if any) or a failed round trip fails; otherwise `ok` with the libsndfile that was loaded
    (a bare library name, not a path, is reported as such). The fix is `soundfile>=0.12` (its
    wheels bundle libsndfile) or libsndfile1 from apt.
    """
    version = facts.get("version")
    if version is None:
        return not_installed(ctx, "soundfile", Fix(
            "Install soundfile (its wheels bundle libsndfile).",
            commands=(dists.pip_install("soundfile"),)))
    bundled, system = facts.get("bundled_library"), facts.get("system_library")
    details: dict[str, Any] = {"soundfile": version, "bundled_library": bundled,
                               "system_library": system}
    if facts.get("import_error"):
        details["error"] = facts["import_error"]
        if facts.get("import_os_error"):
            return fail(f"soundfile {version} does not import: {facts['import_message']} "
                        f"({libraries_found(bundled, system)})", _soundfile_fix(version),
                        **details)
        return fail(f"soundfile {version} does not import: {facts['import_error']}"[:400],
                    _soundfile_fix(version), **details)
    details.update(libsndfile=facts.get("libsndfile"), loaded=facts.get("loaded"))
    if "formats" in facts:
        details["formats"] = facts["formats"]
    problem = facts.get("roundtrip_problem")
    if problem:
        return fail(f"soundfile {version} (libsndfile {details['libsndfile']}) cannot round-trip "
                    f"a WAV: {problem}"[:400], _soundfile_fix(version), **details)
    where = facts.get("loaded_from")
    return ok(f"soundfile {version} with libsndfile {details['libsndfile']} ({where}) writes "
              "and reads a WAV", **details)


def _scipy_wav() -> tuple[Callable[..., None], Callable[[str], tuple[Any, int]]]:
    from scipy.io import wavfile

    def write(path: str, x: Any, sr: int) -> None:
        import numpy as np

        wavfile.write(path, sr, (np.clip(x, -1, 1) * 32767).astype(np.int16))

    def read(path: str) -> tuple[Any, int]:
        sr, y = wavfile.read(path)
        return y, sr

    return write, read


def _soundfile_wav() -> tuple[Callable[..., None], Callable[[str], tuple[Any, int]]]:
    import soundfile

    return (lambda p, x, sr: soundfile.write(p, x, sr, subtype="PCM_16"),
            lambda p: soundfile.read(p, dtype="float32"))


def _pcm16() -> bytes:
    """The test tone as 16-bit little-endian PCM (standard library only)."""
    import array

    samples = array.array("h", (int(v * 32767) for v in _tone()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _write_wave(path: str, pcm: bytes) -> None:
    import wave

    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)


def _bytes_roundtrip(write: Callable[[str, bytes], None],
                     read: Callable[[str], tuple[bytes, int]]) -> Optional[str]:
    """The WAV round trip for the byte-level ways (wave, pydub, audioread): None if the
    samples and the rate survive."""
    pcm = _pcm16()
    folder = tempfile.mkdtemp(prefix="tts-doctor-audio-")
    path = os.path.join(folder, "tone.wav")
    try:
        write(path, pcm)
        data, sr = read(path)
        if sr != 16000:
            return f"read back at {sr} Hz, wrote 16000 Hz"
        if data != pcm:
            return f"read back {len(data)} bytes of samples, wrote {len(pcm)} (or they differ)"
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wave_way() -> tuple[Callable[[str, bytes], None], Callable[[str], tuple[bytes, int]]]:
    import wave

    def read(path: str) -> tuple[bytes, int]:
        with wave.open(path, "rb") as r:
            return r.readframes(r.getnframes()), r.getframerate()

    return _write_wave, read


def _pydub_way() -> tuple[Callable[[str, bytes], None], Callable[[str], tuple[bytes, int]]]:
    from pydub import AudioSegment  # WAV needs no ffmpeg: pydub parses and writes it itself

    def write(path: str, pcm: bytes) -> None:
        AudioSegment(data=pcm, sample_width=2, frame_rate=16000, channels=1).export(
            path, format="wav")

    def read(path: str) -> tuple[bytes, int]:
        seg = AudioSegment.from_wav(path)
        return seg.raw_data, seg.frame_rate

    return write, read


def _audioread_way() -> tuple[Callable[[str, bytes], None], Callable[[str], tuple[bytes, int]]]:
    import audioread  # read only: its backends (ffmpeg, gstreamer, mad, raw WAV/AIFF)

    def read(path: str) -> tuple[bytes, int]:
        with audioread.audio_open(path) as f:
            return b"".join(f), f.samplerate

    return _write_wave, read


def _torchaudio_backends() -> tuple[Optional[list[str]], Optional[str]]:
    try:
        import torchaudio
    except Exception as exc:  # its extension may not load (torchaudio.* probes say why)
        return None, f"{type(exc).__name__}: {exc}"[:300]
    lister = getattr(torchaudio, "list_audio_backends", None)
    if lister is None:
        return None, "torchaudio has no list_audio_backends() (>= 2.9 reads through TorchCodec)"
    try:
        return list(lister()), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]


WAYS = ("wave", "pydub", "audioread", "soundfile", "scipy.io.wavfile")


def collect_backends(ctx: Context) -> dict[str, Any]:
    """The installed readers of audio and audio libraries (name -> version), and for each way
    of writing and reading a WAV that is installed (wave always; pydub, audioread, soundfile,
    scipy.io.wavfile) whether a 16-bit round trip of a tone works, or what went wrong; then
    `torchaudio.list_audio_backends()` (or what raised) when torch is already loaded in the
    worker or no library beyond wave works (torchaudio costs a torch import)."""
    consumers = {dists.distribution(n).metadata["Name"]: dists.version(n)
                 for n in AUDIO_CONSUMERS if dists.version(n)}
    libraries = {n: dists.version(n) for n in ("pydub", "audioread", "soundfile", "scipy",
                                               "torchaudio") if dists.version(n)}
    facts: dict[str, Any] = {"consumers": consumers, "libraries": libraries}
    if not libraries and not consumers:
        return facts
    working, failing = [], {}
    has_numpy = dists.version("numpy") is not None
    ways: list[tuple[str, Callable[[], Any], bool]] = [
        ("wave", _wave_way, True), ("pydub", _pydub_way, True),
        ("audioread", _audioread_way, True), ("soundfile", _soundfile_wav, False),
        ("scipy.io.wavfile", _scipy_wav, False)]
    for name, make, raw in ways:
        if name != "wave" and dists.canonical(name.split(".")[0]) not in libraries:
            continue
        try:
            write, read = make()  # the import: libsndfile missing shows here
            if raw:
                problem = _bytes_roundtrip(write, read)
            else:
                problem = _roundtrip(write, read) if has_numpy else "numpy is not installed"
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"[:300]
        if problem:
            failing[name] = problem
        else:
            working.append(name)
    facts.update(working=working, failing=failing)
    libs_working = [w for w in working if w != "wave"]
    if "torchaudio" in libraries and ("torch" in sys.modules or not libs_working):
        ta, ta_error = _torchaudio_backends()
        facts.update(torchaudio_backends=ta, torchaudio_error=ta_error)
    return facts


@probe("audio.backends", title="Every installed way to write and read a WAV works "
       "(wave, pydub, audioread, scipy.io.wavfile, soundfile, torchaudio)", isolated=True,
       families=("I3",), collect=collect_backends, memo=True)
def backends(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks every installed way of writing and reading a WAV file, and that one works.

    Round-trips a 16-bit WAV in the worker through each way installed code uses: the standard
    library's `wave` (always there), pydub (WAV needs no ffmpeg), audioread (reading), soundfile
    and scipy.io.wavfile; asks `torchaudio.list_audio_backends()` when torch is already loaded
    or nothing else works. `skip` when no audio library and no known reader of audio is
    installed. An installed library that fails warns (its users break: soundfile without
    libsndfile), and fails when no library beyond the standard library works; torchaudio
    listing no backend warns (fails when nothing else works); else `ok` with the ways that
    work. The fix installs `soundfile>=0.12`, or libsndfile1 from apt.
    """
    consumers: dict[str, Any] = dict(facts.get("consumers") or {})
    libraries: dict[str, Any] = dict(facts.get("libraries") or {})
    details: dict[str, Any] = {"consumers": consumers, "libraries": libraries}
    if not libraries and not consumers:
        return skip("no audio I/O library (pydub, audioread, soundfile, scipy, torchaudio) and "
                    "no package that reads audio is installed; the standard library's wave "
                    "is all there is", **details)
    working: list[str] = list(facts.get("working") or [])
    # in the order the ways were tried (a facts file keeps keys sorted)
    tried = dict(facts.get("failing") or {})
    failing = {n: tried[n] for n in WAYS if n in tried}
    ta = None
    libs_working = [w for w in working if w != "wave"]
    if "torchaudio_backends" in facts:
        # torchaudio costs a torch import: asked when torch is already loaded in this worker,
        # or when nothing else works and it is the last way left.
        ta = facts["torchaudio_backends"]
        details["torchaudio_backends"] = ta
        if facts.get("torchaudio_error"):
            details["torchaudio_error"] = facts["torchaudio_error"]
    details.update(working=working, failing=failing)
    fix = Fix("Install soundfile (its wheels bundle libsndfile): torchaudio, librosa and most "
              "TTS stacks read and write WAV through it.",
              commands=(upgrades.upgrade("soundfile", libraries.get("soundfile"),
                                         SOUNDFILE_BUNDLES).command()
                        or dists.pip_install("soundfile", extra="--force-reinstall"),
                        APT_SNDFILE))
    if ta == [] and not libs_working:
        return fail("torchaudio lists no audio backend (\"No audio I/O backend is available\"), "
                    "and no other audio library works"
                    + (f": {failing}" if failing else ""), fix, **details)
    if failing and not libs_working and not ta:
        who = ", ".join(f"{n} {v}" for n, v in sorted(consumers.items())) or "nothing"
        why = "; ".join(f"{n}: {p}" for n, p in failing.items())
        return fail(f"no audio library works, only the standard library's wave ({why}); "
                    f"installed readers of audio: {who}"[:500], fix, **details)
    ways = working + ([f"torchaudio ({', '.join(ta)})"] if ta else [])
    if failing:
        why = "; ".join(f"{n}: {p}" for n, p in failing.items())
        return warn(f"{', '.join(failing)} cannot write and read a WAV ({why}); the code that "
                    f"uses {'it' if len(failing) == 1 else 'them'} fails, though "
                    f"{', '.join(ways)} work"[:500], fix, **details)
    if ta == []:
        return warn(f"torchaudio lists no audio backend (torchaudio.load/save raise \"No audio "
                    f"I/O backend is available\"), though {', '.join(working)} work(s)", fix,
                    **details)
    return ok(f"WAV write and read work with {', '.join(ways)}"
              + (f" (not with {', '.join(failing)})" if failing else ""), **details)
