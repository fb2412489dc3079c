"""Probes that break their worker on purpose, for the runner's fault-injection tests.

Loaded through TTS_DOCTOR_PLUGINS=faulty_probes with this folder on PYTHONPATH. Which probes
misbehave is chosen by the test through `--only`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

from tts_doctor.finding import ok
from tts_doctor.registry import probe


@probe("fault.segfault", title="dereferences NULL", isolated=True)
def segfault(ctx):
    ctypes.string_at(0)
    return ok("unreachable")


@probe("fault.abort", title="calls abort()", isolated=True)
def abort(ctx):
    os.abort()


@probe("fault.hang", title="sleeps for an hour", isolated=True)
def hang(ctx):
    time.sleep(3600)
    return ok("unreachable")


@probe("fault.exit", title="calls os._exit(7)", isolated=True)
def exit_(ctx):
    os._exit(7)


@probe("fault.kill", title="sends itself SIGKILL", isolated=True)
def kill(ctx):
    os.kill(os.getpid(), signal.SIGKILL)


@probe("fault.raises", title="raises ValueError", isolated=True)
def raises(ctx):
    raise ValueError("planted failure")


@probe("fault.noisy", title="writes to fds 1 and 2 from below Python, then passes",
       isolated=True)
def noisy(ctx):
    os.write(1, b'{"event": "finding", "finding": null}\nprepare tts engine failed\n')
    os.write(2, b"stderr chatter\n")
    print("python print")
    return ok("survived its own output")


@probe("fault.healthy", title="passes", isolated=True)
def healthy(ctx):
    return ok("fine", pid=os.getpid())


@probe("fault.inprocess-hang", title="hangs in the parent process", isolated=False)
def inprocess_hang(ctx):
    time.sleep(3600)
    return ok("unreachable")


@probe("torch.lane-neighbour", title="a healthy probe in the torch lane (imports nothing)",
       isolated=True)
def lane_neighbour(ctx):
    return ok("fine", pid=os.getpid())
