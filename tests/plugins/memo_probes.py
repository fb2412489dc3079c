"""Memo probes for the facts-memo tests (tests/test_memo.py): each observes one kind of thing
a memo must notice changing, or must never keep.

Loaded through TTS_DOCTOR_PLUGINS=memo_probes with this folder on PYTHONPATH. Every
collector reports its process id: facts judged from the memo carry the id of the check that
observed them. Paths come from MEMO_TEST_DIR.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tts_doctor import footprint
from tts_doctor.finding import ok
from tts_doctor.registry import probe

_MAPPED: list = []


def _dir() -> str:
    return os.environ.get("MEMO_TEST_DIR", "/nonexistent")


def _read(ctx):
    with open(os.path.join(_dir(), "data.txt"), encoding="utf-8") as fh:
        return {"content": fh.read(), "pid": os.getpid()}


def _exists(ctx):
    mark = os.path.join(_dir(), "mark")
    footprint.depends(mark)
    return {"exists": os.path.exists(mark), "pid": os.getpid()}


def _writable(ctx):
    folder = os.path.join(_dir(), "box")
    footprint.depends(folder, access=True)
    try:
        with open(os.path.join(folder, ".probe"), "w") as fh:
            fh.write("x")
        os.unlink(os.path.join(folder, ".probe"))
        writable = True
    except OSError:
        writable = False
    return {"writable": writable, "pid": os.getpid()}


def _scratch(ctx):
    """Like onnxruntime's telemetry database: a data file the collector itself rewrites and
    maps on every run (not an input of its facts)."""
    import mmap
    import time

    path = os.path.join(_dir(), "scratch.db")
    with open(path, "wb") as fh:
        fh.write(str(time.time()).ljust(64).encode())
    with open(path, "r+b") as fh:
        mapped = mmap.mmap(fh.fileno(), 64)
    _MAPPED.append(mapped)  # stays mapped, as a database's is
    size = len(mapped[:])
    return {"size": size, "pid": os.getpid()}


def _program(ctx):
    out = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
    return {"answer": out.stdout.strip(), "pid": os.getpid()}


def _secret(ctx):
    return {"token": os.environ.get("HF_TOKEN", ""), "pid": os.getpid()}


def _plain(ctx):
    return {"pid": os.getpid()}


def _judge(facts):
    return ok(f"observed by {facts['pid']}", **facts)


@probe("memotest.read", title="reads a file", isolated=True, collect=_read, memo=True)
def read(ctx, facts):
    return _judge(facts)


@probe("memotest.exists", title="tests a declared path for existence", isolated=True,
       collect=_exists, memo=True)
def exists(ctx, facts):
    return _judge(facts)


@probe("memotest.writable", title="tests a declared folder for writability", isolated=True,
       collect=_writable, memo=True)
def writable(ctx, facts):
    return _judge(facts)


@probe("memotest.scratch", title="rewrites and maps a scratch file of its own", isolated=True,
       collect=_scratch, memo=True)
def scratch(ctx, facts):
    return _judge(facts)


@probe("memotest.program", title="runs a program (never kept)", isolated=True,
       collect=_program, memo=True)
def program(ctx, facts):
    return _judge(facts)


@probe("memotest.secret", title="observes a secret (never kept)", isolated=True,
       collect=_secret, memo=True)
def secret(ctx, facts):
    return _judge(facts)


@probe("memotest.home", title="a memo probe of the doctor's process", collect=_plain,
       memo=True)
def home(ctx, facts):
    return _judge(facts)


@probe("memotest.live", title="not a memo probe: observes every time", isolated=True,
       collect=_plain)
def live(ctx, facts):
    return _judge(facts)
