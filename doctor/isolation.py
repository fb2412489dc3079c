"""Child processes that may crash: spawning, the pipe protocol, the watchdog, death reports.

Both `check`'s worker (tts_doctor.worker) and `smoke`'s synthesis child
(tts_doctor.smoke.isolate) run diagnosed native code in a child process of the diagnosed
interpreter. This module is the one place that

- starts such a child with stdout and stderr sent to an unlinked capture file (C++ code that
  prints cannot corrupt the protocol) and a private pipe for JSON events, one object a line;
- ties the child's life to the doctor's: the child asks the kernel for SIGKILL when its parent
  dies (Linux `PR_SET_PDEATHSIG`, so even `kill -9` of the CLI leaves no child), and the doctor
  kills every live child's process group on exit, SIGTERM, SIGHUP and Ctrl-C;
- names a child's death (signal, exit code) and the innermost frames of a crash.

The child half (`child_channel`, `die_with_parent`) runs inside the diagnosed interpreter and
uses only the standard library of CPython 3.7+.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Optional

OUTPUT_TAIL = 4000
PARENT_ENV = "TTS_DOCTOR_PARENT_PID"
TEMP_PREFIX = "tts-doctor-"

# ------------------------------------------------------------------ child side (stdlib, 3.7)


def die_with_parent() -> None:
    """In a child: be killed when the doctor dies, however it dies (Linux), or exit now if it
    is already gone."""
    parent = os.environ.get(PARENT_ENV)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:
            pass
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(70)  # the doctor died before we could ask


def child_channel(fd: int) -> Callable[[dict[str, Any]], None]:
    """In a child: the function that sends one JSON event to the doctor."""
    proto = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def send(event: dict[str, Any]) -> None:
        proto.write(json.dumps(event, default=str) + "\n")
        proto.flush()

    return send


# ------------------------------------------------------------------ doctor side


def _group_nice(pid: int, value: Optional[int] = None) -> Optional[int]:
    """Read (or, with `value`, set) the nice value of a process's autogroup; None where there
    are no autogroups or it cannot be done. Setting is rate-limited by the kernel for an
    unprivileged user (EAGAIN within 100 ms of the last change): retried for half a second."""
    path = f"/proc/{pid}/autogroup"
    try:
        if value is None:
            with open(path, encoding="ascii") as fh:
                return int(fh.read().split("nice")[-1])
        for _ in range(6):
            try:
                with open(path, "w", encoding="ascii") as fh:
                    fh.write(str(value))
                return value
            except BlockingIOError:
                time.sleep(0.1)
    except (OSError, ValueError):
        pass
    return None


def yield_cpu(child: Child, step: int, until: threading.Event) -> None:
    """Let a child give way to the doctor's critical path (the usage index of a cold check)
    until `until` is set: its session's nice value goes up by `step`, and back afterwards.
    Linux autogroups: each child is a session of its own, and the scheduler shares the CPU
    between sessions before it looks at a process's nice value. A process's own nice value is
    left alone: an unprivileged user could not lower it again. Without autogroups, nothing
    changes."""
    proc = child.proc
    if proc is None or until.is_set():
        return
    before = _group_nice(proc.pid)
    if before is None or _group_nice(proc.pid, min(before + step, 19)) is None:
        return

    def restore() -> None:
        until.wait()
        if proc.poll() is None:  # still our child: the pid is not another process's yet
            _group_nice(proc.pid, before)

    threading.Thread(target=restore, daemon=True, name="tts-doctor-yield").start()


_SIGNAL_WORDS = {
    "SIGSEGV": "segmentation fault",
    "SIGABRT": "abort",
    "SIGBUS": "bus error",
    "SIGILL": "illegal instruction",
    "SIGFPE": "floating-point exception",
    "SIGKILL": "killed (out of memory, or by another process)",
    "SIGTERM": "terminated",
}


def describe_exit(returncode: int, who: str = "the worker process") -> tuple[str, dict[str, Any]]:
    """A child's death in words, and the facts behind them."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        word = _SIGNAL_WORDS.get(name, "")
        return (f"{who} was killed by {name}" + (f" ({word})" if word else ""),
                {"signal": name, "returncode": returncode})
    return (f"{who} exited with code {returncode} (os._exit or exit() called from inside "
            "the probed code)", {"returncode": returncode})


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def crash_stack(output: str) -> list[str]:
    """The innermost frames of a faulthandler dump, without the doctor's own frames.

    With several threads dumped, the crashing one is headed "Current thread".
    """
    at = output.rfind("Current thread")
    if at >= 0:
        output = output[at:]
    frames = []
    for line in output.splitlines():
        m = _FRAME.match(line)
        if not m:
            if frames and not line.strip():
                break
            continue
        path = m.group("file").replace(os.sep, "/")
        if "/doctor/" in path or "/tts_doctor/" in path or path == "<string>":
            continue
        frames.append(f"{m.group('file')}:{m.group('line')} in {m.group('func')}")
    return frames[:5]


class ChildDied(Exception):
    """The child's pipe closed: it exited or was killed. `how` says which, in words."""

    def __init__(self, how: str, details: dict[str, Any]):
        super().__init__(how)
        self.how = how
        self.details = details

    def last_words(self) -> str:
        """`how`, and the last line the child printed, if any."""
        out = str(self.details.get("output") or "").strip().splitlines()
        return f"{self.how}: {out[-1]}" if out else self.how


class ChildStalled(Exception):
    """No event from the child within the time allowed."""


_LIVE: set[Child] = set()
_TEMP: set[str] = set()
# re-entrant: the signal handler's cleanup() runs on the main thread, which may hold it
_LOCK = threading.RLock()
_STOPPING: list[bool] = []  # set by cleanup(): no child starts after it


def temp_dir(kind: str) -> str:
    """A private temporary folder removed on every exit path the doctor sees (and, after a
    `kill -9`, by the next run: its name carries the owner's pid)."""
    sweep_stale()
    # under the lock: a cleanup() running now either removes this folder or stops it being
    # made (OSError), as for Child.start; a folder made after cleanup would outlive the doctor
    with _LOCK:
        if _STOPPING:
            raise OSError("tts-doctor is stopping")
        path = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}-{os.getpid()}-")
        _TEMP.add(path)
    return path


def stopping() -> bool:
    """Whether cleanup() has begun (a signal, or the interpreter's exit)."""
    return bool(_STOPPING)


def remove_temp(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with _LOCK:
        _TEMP.discard(path)


_SWEPT: list[bool] = []
_STALE = re.compile(rf"^{TEMP_PREFIX}(support|smoke|work|reach|usage)-(\d+)-")


def sweep_stale() -> None:
    """Remove folders that a doctor killed with SIGKILL left behind (owner pid not alive)."""
    if _SWEPT:
        return
    _SWEPT.append(True)
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        m = _STALE.match(name)
        if not m or int(m.group(2)) == os.getpid():
            continue
        if not _alive(int(m.group(2))):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs. A zombie does not: a child of a killed doctor is
    reparented, and a container's init may never reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def cleanup() -> None:
    """Kill every live child's process group and remove the doctor's temporary folders."""
    with _LOCK:
        _STOPPING.append(True)
        children, temps = list(_LIVE), list(_TEMP)
    # the SIGTERMs of the children that clean up after themselves go out first, then the
    # others are killed (a worker cannot see the index process end and start one of its
    # own), then the first are waited for, together
    for child in children:
        child.terminate()
    for child in sorted(children, key=lambda c: c.grace > 0):
        child.kill()
    for path in temps:
        remove_temp(path)


_HANDLED: list[bool] = []


def install_handlers() -> None:
    """Clean up on exit, SIGTERM and SIGHUP (from the main thread; idempotent)."""
    if _HANDLED or threading.current_thread() is not threading.main_thread():
        return
    _HANDLED.append(True)
    atexit.register(cleanup)

    def on_signal(signum: int, frame: Any) -> None:
        cleanup()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, on_signal)
        except (OSError, ValueError):
            pass


class Child:
    """One child process of the diagnosed interpreter and the thread reading its pipe.

    `python -c boot <fd> *args`: the boot code calls `die_with_parent()` and writes events
    with `child_channel(fd)`.
    """

    def __init__(self, python: str, boot: str, args: tuple[str, ...] = (),
                 env: Optional[dict[str, str]] = None, stdin: Any = subprocess.PIPE,
                 cwd: Optional[str] = None, grace: float = 0.0):
        self.python = python
        # seconds a SIGTERM gets before the SIGKILL of `kill`: for a child that cleans up
        # after children and folders of its own (the usage index process)
        self.grace = grace
        self.boot = boot
        self.args = args
        self.env = dict(os.environ if env is None else env)
        self.env[PARENT_ENV] = str(os.getpid())
        self.stdin = stdin
        self.cwd = cwd
        self.events: queue.Queue[Optional[dict[str, Any]]] = queue.Queue()
        # unlinked at once: nothing is left behind, whatever kills whom
        self.capture = tempfile.TemporaryFile(prefix=TEMP_PREFIX + "output-")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self._terminated: Optional[float] = None  # when `terminate` sent its SIGTERM

    def start(self) -> None:
        """Spawn the child; ChildDied if the interpreter cannot be run at all."""
        read_fd, write_fd = os.pipe()
        # under the lock: a cleanup() running now either sees this child or stops it starting
        with _LOCK:
            if _STOPPING:
                os.close(read_fd)
                os.close(write_fd)
                raise ChildDied("tts-doctor is stopping", {})
            try:
                self.proc = subprocess.Popen(
                    [self.python, "-c", self.boot, str(write_fd), *self.args],
                    stdin=self.stdin, stdout=self.capture, stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,), env=self.env, cwd=self.cwd, start_new_session=True,
                )
            except OSError as exc:
                os.close(read_fd)
                os.close(write_fd)
                raise ChildDied(f"could not start {self.python}: {exc}", {}) from exc
            _LIVE.add(self)
        os.close(write_fd)
        threading.Thread(target=self._read, args=(read_fd,), daemon=True).start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                try:
                    self.events.put(json.loads(line))
                except ValueError:
                    continue
        self.events.put(None)

    def send(self, obj: dict[str, Any]) -> None:
        """One JSON line on the child's stdin (ignored if the child is gone: `next` says how)."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            pass

    def output_since(self, offset: int = 0) -> str:
        """What the child printed since `offset` (its last OUTPUT_TAIL characters)."""
        try:
            end = os.fstat(self.capture.fileno()).st_size
            start = max(offset, end - OUTPUT_TAIL)
            return os.pread(self.capture.fileno(), max(end - start, 0), start).decode(
                "utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def next(self, timeout: float, offset: int = 0, who: str = "the worker process"
             ) -> dict[str, Any]:
        """The next event; ChildStalled after `timeout` s, ChildDied when the pipe closes."""
        try:
            event = self.events.get(timeout=max(timeout, 0.01))
        except queue.Empty:
            raise ChildStalled() from None
        if event is None:
            assert self.proc is not None
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                rc = self.proc.returncode if self.proc.returncode is not None else -9
            how, details = describe_exit(rc, who)
            output = self.output_since(offset)
            if output.strip():
                details["output"] = output
            self._forget()
            raise ChildDied(how, details)
        return event

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        self._forget()
        return rc

    def terminate(self) -> None:
        """With `grace`: the SIGTERM that begins it (once), so that `kill` waits only for what
        is left of it; cleanup() sends every child's before it waits for any."""
        if self.proc is None or self.grace <= 0 or self._terminated is not None or \
                self.proc.poll() is not None:
            return
        try:
            self.proc.terminate()
        except OSError:
            pass
        self._terminated = time.monotonic()

    def kill(self) -> None:
        """SIGKILL the child's whole process group (it may have started helpers); with
        `grace`, a SIGTERM first."""
        if self.proc is not None and self.proc.poll() is None and self.grace > 0:
            self.terminate()
            sent = time.monotonic() if self._terminated is None else self._terminated
            try:
                self.proc.wait(timeout=max(sent + self.grace - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                try:
                    self.proc.kill()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._forget()

    def close(self) -> None:
        """Stop the child: every result is in hand, so it is killed rather than left to tear
        down torch or LLVM (up to a second of interpreter shutdown), and its output dropped."""
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.kill()
        try:
            self.capture.close()
        except OSError:
            pass

    def _forget(self) -> None:
        with _LOCK:
            _LIVE.discard(self)
