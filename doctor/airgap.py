"""The air-gap audit: block the network at the socket level and record who tried to use it.

`activate()` runs inside the diagnosed interpreter (the smoke child, later `check`'s import of
the entry modules), before any of the model's code is imported. It

- sets the hubs' offline switches (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE, HF_DATASETS_OFFLINE;
  ModelScope 1.40 has no global switch, so its downloads meet the blocked socket like any
  other) and PIP_NO_INDEX for a pip run as a subprocess;
- replaces `socket.socket.connect`, `connect_ex`, `socket.create_connection` and
  `socket.getaddrinfo` with versions that refuse every address that is not this machine
  (loopback and Unix sockets stay allowed: they are not the network) and record the host,
  the port and the Python frame that asked, the way an air-gapped container would answer
  (`socket.gaierror` for a name lookup, `OSError(ENETUNREACH)` for a connect);
- wraps the runtime downloaders when their modules are imported (Hugging Face Hub
  `hf_hub_download`/`snapshot_download`, ModelScope `snapshot_download`/`model_file_download`,
  `nltk.download`, spaCy's `spacy.cli.download`) and watches `subprocess.Popen` and
  `os.system` for pip run at runtime, recording each with the command that pre-fetches it
  into the image.

`deactivate()` restores everything (an `--in-process` run must leave the doctor usable) and
`audit()` returns what was seen as plain JSON-able data. Only the standard library of
CPython 3.7+ is used: this module runs in the target interpreter. `check` runs it too, in
its closure import (doctor/reach.py executes this file's source, sent in the request), so
activating it must stay cheap: nothing here runs per import or per audited event except the
finder's name test.
"""

from __future__ import annotations

import errno
import importlib.abc
import json
import os
import shlex
import socket
import sys
import threading
import traceback
from typing import Any, Callable, Optional

# The hubs' offline switches, and pip's (a pip the model runs as a subprocess is outside the
# socket block; with no index it fails as it would in an air-gapped image).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "PIP_NO_INDEX": "1"}

# Frames in these files are plumbing, not the code that decided to use the network.
_PLUMBING = ("socket.py", "ssl.py", "/http/", "/urllib/", "/urllib3/", "/requests/",
             "/httpx/", "/httpcore/", "/aiohttp/", "/asyncio/", "/airgap.py", "/h11/",
             "/anyio/", "/selectors.py", "/subprocess.py")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_MAX_EVENTS = 200

_lock = threading.Lock()
_state: dict[str, Any] = {"active": False, "saved": {}, "env": {}, "finder": None,
                          "connections": [], "downloads": [], "wrapped": []}


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES or host == "":
        return True
    if host.startswith("127.") or host in ("::1", "0:0:0:0:0:0:0:1", "0.0.0.0", "::"):
        return True
    return host.startswith("::ffff:127.")


def _frames() -> tuple[Optional[str], list[str]]:
    """(the innermost frame outside the network plumbing, the last frames of the stack)."""
    stack = [f for f in traceback.extract_stack()[:-1]
             if not f.filename.replace("\\", "/").endswith("/airgap.py")]
    shown = [f"{f.filename}:{f.lineno} in {f.name}" for f in stack[-8:]]
    for f in reversed(stack):
        name = f.filename.replace("\\", "/")
        if not any(p in name for p in _PLUMBING):
            return f"{f.filename}:{f.lineno} in {f.name}", shown
    return (shown[-1] if shown else None), shown


def _record(kind: str, item: dict[str, Any]) -> None:
    with _lock:
        bucket = _state[kind]
        if len(bucket) < _MAX_EVENTS:
            bucket.append(item)


def _blocked_connection(host: Any, port: Any, via: str) -> None:
    frame, stack = _frames()
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    _record("connections", {"host": None if host is None else str(host),
                            "port": port if isinstance(port, int) else (
                                int(port) if str(port).isdigit() else port),
                            "via": via, "frame": frame, "stack": stack})


def _address(address: Any) -> tuple[Any, Any]:
    if isinstance(address, tuple) and len(address) >= 2:
        return address[0], address[1]
    return address, None


def _install_socket() -> None:
    saved = _state["saved"]
    saved["connect"] = socket.socket.connect
    saved["connect_ex"] = socket.socket.connect_ex
    saved["getaddrinfo"] = socket.getaddrinfo
    saved["create_connection"] = socket.create_connection
    real_connect, real_connect_ex = saved["connect"], saved["connect_ex"]
    real_getaddrinfo, real_create = saved["getaddrinfo"], saved["create_connection"]

    def refused(host: Any, port: Any) -> OSError:
        return OSError(errno.ENETUNREACH, "network blocked by tts-doctor --offline "
                                          f"(connect to {host}:{port})")

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host, port = _address(address)
            if not _is_local(host):
                _blocked_connection(host, port, "socket.connect")
                raise refused(host, port)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host, port = _address(address)
            if not _is_local(host):
                _blocked_connection(host, port, "socket.connect_ex")
                return errno.ENETUNREACH
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            _blocked_connection(host, port, "socket.getaddrinfo")
            raise socket.gaierror(socket.EAI_NONAME, f"name lookup of {host} blocked by "
                                                     "tts-doctor --offline")
        return real_getaddrinfo(host, port, *args, **kwargs)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        host, port = _address(address)
        if not _is_local(host):
            _blocked_connection(host, port, "socket.create_connection")
            raise refused(host, port)
        return real_create(address, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket.create_connection = create_connection


def _restore_socket() -> None:
    saved = _state["saved"]
    if "connect" in saved:
        socket.socket.connect = saved.pop("connect")  # type: ignore[method-assign]
        socket.socket.connect_ex = saved.pop("connect_ex")  # type: ignore[method-assign]
        socket.getaddrinfo = saved.pop("getaddrinfo")
        socket.create_connection = saved.pop("create_connection")


# --- runtime downloads ----------------------------------------------------------------------


def _py(code: str) -> list[str]:
    return ["python", "-c", code]


def _join(argv: list[str]) -> str:
    """`shlex.join` (3.8+): what the command looks like in a shell."""
    return " ".join(shlex.quote(a) for a in argv)


def _lit(value: Any) -> str:
    """A Python literal (a JSON string is one; None stays None)."""
    return "None" if value is None else json.dumps(str(value), ensure_ascii=False)


def _hf_command(kind: str, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> tuple[str, list[str]]:
    repo = kwargs.get("repo_id", args[0] if args else None)
    if kind == "hf_hub_download":
        filename = kwargs.get("filename", args[1] if len(args) > 1 else None)
        code = ("from huggingface_hub import hf_hub_download; "
                f"hf_hub_download({_lit(repo)}, {_lit(filename)})")
        return f"{repo}/{filename}", _py(code)
    code = f"from huggingface_hub import snapshot_download; snapshot_download({_lit(repo)})"
    return str(repo), _py(code)


def _ms_command(kind: str, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> tuple[str, list[str]]:
    model = kwargs.get("model_id", kwargs.get("repo_id", args[0] if args else None))
    if kind == "model_file_download":
        path = kwargs.get("file_path", args[1] if len(args) > 1 else None)
        code = ("from modelscope.hub.file_download import model_file_download; "
                f"model_file_download({_lit(model)}, {_lit(path)})")
        return f"{model}/{path}", _py(code)
    code = f"from modelscope import snapshot_download; snapshot_download({_lit(model)})"
    return str(model), _py(code)


def _nltk_command(kind: str, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[str, list[str]]:
    what = kwargs.get("info_or_id", args[0] if args else None)
    target = "all" if what is None else str(what)
    return target, ["python", "-m", "nltk.downloader", target]


def _spacy_command(kind: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[str, list[str]]:
    model = kwargs.get("model", args[0] if args else None)
    return str(model), ["python", "-m", "spacy", "download", str(model)]


# module -> [(function name, kind, describe)]
_DOWNLOADERS: dict[str, list[tuple[str, str, Callable[..., tuple[str, list[str]]]]]] = {
    "huggingface_hub.file_download": [("hf_hub_download", "huggingface", _hf_command)],
    "huggingface_hub._snapshot_download": [("snapshot_download", "huggingface", _hf_command)],
    "modelscope.hub.snapshot_download": [("snapshot_download", "modelscope", _ms_command)],
    "modelscope.hub.file_download": [("model_file_download", "modelscope", _ms_command)],
    "nltk.downloader": [("download", "nltk", _nltk_command)],
    "spacy.cli.download": [("download", "spacy", _spacy_command)],
}


def _wrap(module: Any, attr: str, kind: str,
          describe: Callable[..., tuple[str, list[str]]]) -> None:
    original = getattr(module, attr, None)
    if original is None or getattr(original, "__tts_doctor_airgap__", False):
        return
    fname = original.__name__ if hasattr(original, "__name__") else attr

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        frame, stack = _frames()
        try:
            what, argv = describe(fname, args, kwargs)
        except Exception:  # describing must never break the call
            what, argv = "?", []
        item = {"kind": kind, "function": f"{module.__name__}.{attr}", "what": what,
                "argv": argv, "command": _join(argv), "frame": frame, "stack": stack,
                "outcome": "running"}
        _record("downloads", item)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            item["outcome"] = "failed"
            item["error"] = (f"{type(exc).__name__}: {exc}")[:300]
            raise
        # nltk.download reports failure by returning False; a cached file comes back as a path
        item["outcome"] = "failed" if result is False else "returned"
        return result

    wrapper.__tts_doctor_airgap__ = True  # type: ignore[attr-defined]
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    wrapper.__name__ = fname
    setattr(module, attr, wrapper)
    if module.__name__ == "nltk.downloader" and "nltk" in sys.modules:
        nltk = sys.modules["nltk"]
        if getattr(nltk, "download", None) is original:
            nltk.download = wrapper
            _state["wrapped"].append((nltk, "download", original))
    _state["wrapped"].append((module, attr, original))


def _patch_loaded(name: str) -> None:
    module = sys.modules.get(name)
    if module is None:
        return
    for attr, kind, describe in _DOWNLOADERS.get(name, ()):
        _wrap(module, attr, kind, describe)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the downloaders right after their modules execute (nothing is imported early)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _DOWNLOADERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None \
                    and hasattr(spec.loader, "exec_module"):
                loader = spec.loader
                real_exec = loader.exec_module

                def exec_module(module: Any, _real: Any = real_exec) -> None:
                    _real(module)
                    _patch_loaded(name)

                try:
                    loader.exec_module = exec_module  # type: ignore[method-assign]
                except (AttributeError, TypeError):
                    return None
                return spec
        return None


_PIP = ("pip", "pip3")


_SEPARATORS = ("&&", "||", ";", "|")
_WRAPPERS = ("sudo", "env", "exec", "nohup", "command", "time")


def _is_python(word: str) -> bool:
    base = os.path.basename(word)
    return word == sys.executable or base.startswith(("python", "pypy"))


def _pip_args(args: Any) -> Optional[list[str]]:
    """The `pip install ...` arguments of a command line, or None when it is not one.

    pip counts only in command position (first, after a shell separator, `sudo`/`env`, or
    `VAR=value`), as `pip`/`pip3`/`pip3.X` or `PYTHON [options] -m pip`, with `install` as
    its subcommand: `python -c '...' pip install x` or `echo pip install` is not pip."""
    if isinstance(args, (str, bytes)):
        try:
            args = shlex.split(args.decode() if isinstance(args, bytes) else args)
        except ValueError:  # unbalanced quotes: not a command line this can read
            return None
    try:
        argv = [os.fsdecode(a) for a in args]
    except TypeError:
        return None
    start = True
    for i, word in enumerate(argv):
        if word in _SEPARATORS:
            start = True
            continue
        if not start:
            continue
        name = word.split("=", 1)[0]
        if os.path.basename(word) in _WRAPPERS or ("=" in word and name.isidentifier()):
            continue  # still in command position
        start = False
        rest: Optional[list[str]] = None
        base = os.path.basename(word)
        if base in _PIP or base.startswith("pip3."):
            rest = argv[i + 1:]
        elif _is_python(word):
            j = i + 1
            while j < len(argv) and argv[j].startswith("-") and argv[j] not in ("-m", "-c"):
                j += 1
            if j + 1 < len(argv) and argv[j] == "-m" and argv[j + 1] == "pip":
                rest = argv[j + 2:]
        if rest is None:
            continue
        for k, r in enumerate(rest):
            if r in _SEPARATORS:
                rest = rest[:k]
                break
        if next((r for r in rest if not r.startswith("-")), None) == "install":
            return rest
    return None


def _seen_command(args: Any, via: str) -> None:
    """Record a `pip install` run as a subprocess (any other command passes unrecorded)."""
    if not _state["active"]:
        return
    rest = _pip_args(args)
    if rest is None:
        return
    frame, stack = _frames()
    packages = [a for a in rest if a != "install"]
    argv = ["pip", "install", *(a for a in packages if not a.startswith("-"))]
    _record("downloads", {"kind": "pip", "function": via, "what": " ".join(packages),
                          "argv": argv, "command": _join(argv), "frame": frame,
                          "stack": stack, "outcome": "started"})


def _install_process_watch() -> None:
    """Watch pip run at runtime: `subprocess.Popen` (run, call, check_output... all start
    their child there) and `os.system`. A wrapper costs nothing until a process starts; an
    audit hook (`sys.addaudithook`) would run on every audited event of the imports (tens of
    thousands while torch imports), and cannot be removed again."""
    import subprocess

    saved = _state["saved"]
    saved["execute_child"] = real_execute = subprocess.Popen._execute_child  # type: ignore
    saved["system"] = real_system = os.system

    def _execute_child(self: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        try:
            _seen_command(args, "subprocess.Popen")
        except Exception:  # watching must never break the call
            pass
        return real_execute(self, args, *rest, **kwargs)

    def system(command: Any) -> int:
        try:
            _seen_command(command, "os.system")
        except Exception:
            pass
        return real_system(command)

    subprocess.Popen._execute_child = _execute_child  # type: ignore[attr-defined]
    os.system = system


def _restore_process_watch() -> None:
    saved = _state["saved"]
    if "execute_child" in saved:
        import subprocess

        subprocess.Popen._execute_child = saved.pop("execute_child")  # type: ignore
        os.system = saved.pop("system")


def activate() -> None:
    """Block the network, set the offline switches, watch the downloaders (idempotent)."""
    if _state["active"]:
        return
    _state["connections"] = []
    _state["downloads"] = []
    _state["env"] = {k: os.environ.get(k) for k in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    _install_socket()
    finder = _Finder()
    _state["finder"] = finder
    sys.meta_path.insert(0, finder)
    for name in _DOWNLOADERS:
        _patch_loaded(name)
    _install_process_watch()
    _state["active"] = True


def deactivate() -> None:
    """Undo `activate()`: sockets, environment, finder and wrapped downloaders."""
    if not _state["active"]:
        return
    _state["active"] = False
    _restore_socket()
    _restore_process_watch()
    for key, value in _state["env"].items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    finder = _state["finder"]
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    for module, attr, original in reversed(_state["wrapped"]):
        setattr(module, attr, original)
    _state["wrapped"] = []


def audit() -> dict[str, Any]:
    """What was seen since `activate()`: connections and downloads (JSON-able)."""
    with _lock:
        return {"env": dict(OFFLINE_ENV),
                "connections": [dict(c) for c in _state["connections"]],
                "downloads": [dict(d) for d in _state["downloads"]]}
