"""The closure import: which modules a deployment really loads from its entry modules.

This file runs INSIDE the diagnosed interpreter, as the source of `python -c` (so no folder of
the doctor lands on that interpreter's sys.path), in a process of its own: importing a TTS
stack loads torch, transformers and model code, and none of that may leak into the worker
that runs the other probes. Standard library only, Python 3.7 syntax (see RULES.md).

The parent (doctor/usage.py, the doctor's own process) sends one JSON object on stdin:

    {"entries": ["modelscope.pipelines.audio.text_to_speech_pipeline", ...],
     "airgap": {"file": ".../tts_doctor/airgap.py", "source": "..."},
     "scratch": "/tmp/tts-doctor-reach-<parent pid>-..."}

and reads one JSON object back on the private pipe of tts_doctor.isolation.Child (the file
descriptor in argv[1]), whatever the imported code prints:

    {"python": "3.11.9", "sys_path": [...], "loaded": {module: file}, "failed": {module: why},
     "causes": {module: {"type": "ImportError", "import_error": true, "missing": "torchaudio"}},
     "seconds": 4.2, "airgap": {"connections": [...], "downloads": [...], ...}}

What it does, and why:

- The network is blocked before any entry is imported, by the air-gap audit of
  `smoke --offline` (doctor/airgap.py, one implementation for both): the parent sends its
  source in the request (`"airgap": {"file": ..., "source": ...}`) and it is executed here as
  a module that sys.modules does not list. It refuses every connection to an address that is
  not this machine, sets the hubs' offline switches (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE;
  MODELSCOPE_OFFLINE is set here too) and records every attempted connection (host, port, the
  Python frame that asked) and every runtime download (hub downloads, nltk.download, spaCy
  model installs, pip run at runtime) with the command that pre-fetches it. A model library
  that phones home at import time fails fast instead of hanging the check, and the answer's
  `airgap` says who tried (the `model.offline-import` finding).
- Each entry is imported on its own, under try/except BaseException (SystemExit included):
  one stack that fails to import (KAN-TTS missing for ModelScope's Sambert) still leaves the
  modules it loaded before failing in sys.modules, and the other entries are imported anyway.
  The parent walks the failed entry's imports statically (the fallback). `causes` says what
  kind of failure it was (the `model.entry-import` finding): the exception's type, whether it
  is an ImportError, and the module that was not found, looked up along the exception's
  chain: ModelScope's lazy modules raise a RuntimeError from the ModuleNotFoundError of
  kantts.
- Caches the libraries write at import time go to a temporary folder (MODELSCOPE_CACHE,
  HF_HOME, NUMBA_CACHE_DIR, MPLCONFIGDIR, XDG_CACHE_HOME): the doctor changes nothing it
  diagnoses. ModelScope builds its AST index of registered modules there (see below). The
  Hugging Face hub cache stays the real one (HF_HUB_CACHE, read only under HF_HUB_OFFLINE):
  a download at import time that the image's cache answers is not a network use.
- The answer is sys.modules with each module's source file: what really loaded.

ModelScope's lazy registry. `import modelscope` installs `LazyImportModule` objects for its
subpackages, and `pipeline(task=...)` finds the class registered for a task in an AST index
(`modelscope/utils/ast_utils.py`, built by scanning modelscope's files, cached under
MODELSCOPE_CACHE) and only then imports the module that registers it. Importing
`modelscope.pipelines` therefore loads almost nothing, and scanning the AST index would reach
every model of every task. The entry list names the modules the text-to-speech task resolves
to (`modelscope.pipelines.audio.text_to_speech_pipeline`, `modelscope.models.audio.tts`),
which are imported directly here; the lazy subpackage objects they pass through are real
modules in sys.modules with their `__file__`, so they count as loaded too. Imports such a
module makes inside functions (the lazily imported submodules) come from the parent's static
walk.
"""

import json
import os
import sys
import time


def _airgap(spec):
    """Execute doctor/airgap.py's source (sent by the parent) as a module and activate it.

    Compiled under its own file name, so that its frames are told apart from the imported
    code's, and kept out of sys.modules, so that it is not part of the closure."""
    import types

    module = types.ModuleType("_tts_doctor_airgap")
    module.__file__ = spec["file"]
    exec(compile(spec["source"], spec["file"], "exec"), module.__dict__)
    module.activate()
    return module


def _hub_cache():
    """The Hugging Face hub cache as the hub's client finds it (before HF_HOME moves)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return os.path.expanduser(os.environ[var])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "huggingface", "hub")


def _quiet_environment(scratch):
    hub = _hub_cache()
    os.environ.update({
        "MODELSCOPE_OFFLINE": "1", "NO_PROXY": "*",
        "HF_HUB_CACHE": hub,
        "MODELSCOPE_CACHE": os.path.join(scratch, "modelscope"),
        "HF_HOME": os.path.join(scratch, "hf"),
        "NUMBA_CACHE_DIR": os.path.join(scratch, "numba"),
        "MPLCONFIGDIR": os.path.join(scratch, "mpl"),
        "XDG_CACHE_HOME": os.path.join(scratch, "xdg"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    sys.dont_write_bytecode = True


def _source_file(module):
    """The .py file a module was loaded from, or None (builtins, extensions, namespaces)."""
    try:
        path = getattr(module, "__file__", None)
    except Exception:
        return None
    if not isinstance(path, str):
        return None
    if path.endswith((".pyc", ".pyo")):
        path = path[:-1]
    if not path.endswith(".py"):
        return None
    return os.path.normpath(os.path.abspath(path))


def cause(exc):
    """What kind of failure an entry's import was: the exception's type, whether it is an
    ImportError, and the module that was not found (the first ModuleNotFoundError along the
    exception's chain of causes and contexts, at most 8 links), or None."""
    missing = None
    seen = 0
    link = exc
    while link is not None and seen < 8:
        if isinstance(link, ModuleNotFoundError):
            name = getattr(link, "name", None)
            missing = name if isinstance(name, str) and name else None
            break
        link = link.__cause__ or link.__context__
        seen += 1
    return {"type": type(exc).__name__, "import_error": isinstance(exc, ImportError),
            "missing": missing}


def closure(entries):
    """Import each entry; the modules that loaded (name -> file), the failures (name ->
    "Type: message") and their causes (name -> `cause`)."""
    failed = {}
    causes = {}
    for name in entries:
        try:
            __import__(name)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from imported code too
            failed[name] = f"{type(exc).__name__}: {exc}"[:300]
            try:
                causes[name] = cause(exc)
            except Exception:  # a hostile exception object: the message is all there is
                pass
    loaded = {}
    for name, module in list(sys.modules.items()):
        path = _source_file(module)
        if path:
            loaded[name] = path
    return loaded, failed, causes


def _die_with_parent():
    """Be killed when the doctor dies, however it dies (Linux `PR_SET_PDEATHSIG`), or exit
    now if it is already gone: an import that hangs must not outlive a stopped check.
    The same as tts_doctor.isolation.die_with_parent, which this file cannot import."""
    parent = os.environ.get("TTS_DOCTOR_PARENT_PID")
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
        except Exception:
            pass
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(70)


def main():
    _die_with_parent()
    channel = int(sys.argv[1])  # the doctor's private pipe (tts_doctor.isolation.Child)
    request = json.loads(sys.stdin.read() or "{}")
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    # the doctor's temporary folder (removed by the doctor on every exit path it sees)
    scratch = request["scratch"]
    _quiet_environment(scratch)
    airgap = _airgap(request["airgap"])
    t0 = time.time()
    path_before = list(sys.path)
    loaded, failed, causes = closure(list(request.get("entries") or []))
    answer = {"python": ".".join(str(x) for x in sys.version_info[:3]), "sys_path": path_before,
              "loaded": loaded, "failed": failed, "causes": causes,
              "seconds": round(time.time() - t0, 3),
              "airgap": airgap.audit()}
    data = (json.dumps(answer) + "\n").encode("utf-8")
    sys.stdout.flush()
    while data:
        data = data[os.write(channel, data):]
    os._exit(0)  # no interpreter teardown of torch and friends: the answer is out


if __name__ == "__main__":
    main()
