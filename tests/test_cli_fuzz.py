"""A property-based fuzzer over the real CLI (issue 12): whatever the user types, the doctor
answers with exit 0, 1 or 2, never a traceback, never a hang, never a stray file, never a
secret.

Hypothesis draws a subcommand, its flags and values (numbers including nan/inf/huge, random
patterns and keys) and the kind of every file it names: a report, a recipe, a FIFO, a
character device (made with mknod in the workspace, never /dev/null itself), a directory, a
symlink loop, a dangling symlink, binary and non-UTF-8 files, a huge sparse file, a read-only
file, a missing path, a missing folder. Every call runs `python -m tts_doctor` as a
subprocess under a timeout (a hang fails the test; nothing is timed), with the environment
seeded with secrets of no known shape, in a fresh workspace and a private TMPDIR; afterwards
only the files the command was told to write may have changed.

Kept affordable for a 2-core machine: `check` runs only in-process probes (python,
packages), smoke stops at argument validation (a missing --callable module, in-process) and
the example counts are small (about a minute in all; `TTS_DOCTOR_FUZZ_EXAMPLES` scales them).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from tests.planted_secrets import FRAGMENTS, SECRET_ENV

SCALE = float(os.environ.get("TTS_DOCTOR_FUZZ_EXAMPLES", "1"))
CALL_TIMEOUT = 90  # seconds; a call that takes longer is a hang
FUZZ = settings(deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KINDS = ("report", "report2", "recipe", "fifo", "chardev", "dir", "loop", "dangling",
         "binary", "latin1", "huge", "empty", "readonly", "missing", "missing_dir")
OUT_KINDS = ("new", "existing", "readonly", "fifo", "chardev", "dir", "loop", "dangling",
             "missing_dir", "symlink")


def _report(host: str, status: str) -> dict[str, Any]:
    return {"schema_version": "1.0", "host": host,
            "findings": [{"id": "python.platform", "status": status, "category": "python",
                          "summary": "python " + status}],
            "summary": {"counts": {status: 1}, "categories": {"python": status}}}


class Workspace:
    """A fresh folder per example, files made on demand by kind."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tts-doctor-fuzz-"))
        self.tmp = self.root / "tmp"
        self.tmp.mkdir()
        self.n = 0
        self.outputs: set[Path] = set()
        self.frozen: set[Path] = set()  # outputs that must not change at all (read-only)
        self.nodes: set[Path] = set()   # outputs that must stay what they are (FIFO, device)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _name(self, suffix: str) -> str:
        self.n += 1
        return f"f{self.n}{suffix}"

    def make(self, kind: str, suffix: str = ".json") -> str:
        name = self._name(suffix)
        p = self.root / name
        if kind == "report":
            p.write_text(json.dumps(_report("good-host", "ok")))
        elif kind == "report2":
            p.write_text(json.dumps(_report("bad-host", "fail")))
        elif kind == "recipe":
            shutil.copy(REPO / "recipes" / "piper.toml", p)
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "chardev":
            try:
                os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            except OSError:
                return name + ".missing"
        elif kind == "dir":
            p.mkdir()
        elif kind == "loop":
            p.symlink_to(self.root / (name + ".other"))
            (self.root / (name + ".other")).symlink_to(p)
        elif kind == "dangling":
            p.symlink_to(self.root / (name + ".nothing"))
        elif kind == "binary":
            p.write_bytes(bytes(range(256)) * 4)
        elif kind == "latin1":
            p.write_bytes('name = "caf\xe9"\n{"a": "\xe9"}'.encode("latin-1"))
        elif kind == "huge":
            with open(p, "wb") as f:
                f.truncate(20 * 1024 * 1024)
        elif kind == "empty":
            p.write_bytes(b"")
        elif kind == "readonly":
            p.write_text(json.dumps(_report("ro-host", "warn")))
            p.chmod(0o444)
        elif kind == "missing":
            pass
        elif kind == "missing_dir":
            return f"nodir{self.n}/{name}"
        return name

    def output(self, kind: str, suffix: str) -> str:
        """A path for an output option; remembered as allowed to change."""
        if kind == "new":
            name = self._name(suffix)
        elif kind == "existing":
            name = self.make("report", suffix)
        elif kind == "symlink":
            target = self.make("report", suffix)
            name = self._name(suffix)
            (self.root / name).symlink_to(self.root / target)
            self.outputs.add(self.root / target)
        else:
            name = self.make(kind, suffix)
        if kind == "dangling":  # followed on purpose: its target may be created
            self.outputs.add(self.root / (name + ".nothing"))
        if kind in ("readonly", "dir", "loop"):
            self.frozen.add(self.root / name)
        elif kind in ("fifo", "chardev"):
            self.nodes.add(self.root / name)
        self.outputs.add(self.root / name)
        return name

    def listing(self) -> dict[str, tuple[int, int, int]]:
        """Every entry under the workspace (TMPDIR included): type, size, mtime."""
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st_ = os.lstat(p)
                out[str(p.relative_to(self.root))] = (stat.S_IFMT(st_.st_mode), st_.st_size,
                                                      st_.st_mtime_ns)
        return out


def run(ws: Workspace, args: list[str]) -> subprocess.CompletedProcess[str]:
    """One CLI call, checked against every property; returns the completed process."""
    env = {**os.environ, **SECRET_ENV, "TMPDIR": str(ws.tmp), "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("TTS_DOCTOR_DEBUG", None)
    before = ws.listing()
    try:
        proc = subprocess.run([sys.executable, "-m", "tts_doctor", *args], cwd=ws.root,
                              env=env, capture_output=True, text=True, errors="replace",
                              timeout=CALL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {CALL_TIMEOUT} s (a hang?): tts-doctor {args}")
    where = f"tts-doctor {args}\nrc={proc.returncode}\nstdout={proc.stdout[-2000:]}\n" \
            f"stderr={proc.stderr[-2000:]}"
    assert proc.returncode in (0, 1, 2), where
    assert "Traceback" not in proc.stdout + proc.stderr, where
    assert "internal error" not in proc.stderr, where
    if proc.returncode == 2:
        assert proc.stderr.strip(), where
        assert proc.stderr.strip().splitlines()[-1].startswith("tts-doctor: error:"), where
    texts = [proc.stdout, proc.stderr]
    after = ws.listing()
    for p in ws.frozen | ws.nodes:
        key = str(p.relative_to(ws.root))
        if p in ws.frozen:
            assert before.get(key) == after.get(key), f"{key} was changed\n{where}"
        else:
            assert before[key][0] == after.get(key, (None,))[0], f"{key} was replaced\n{where}"
    allowed = {str(p.relative_to(ws.root)) for p in ws.outputs}
    changed = {k for k in set(before) | set(after)
               if before.get(k) != after.get(k) and k not in allowed}
    assert not changed, f"files changed outside the named outputs: {sorted(changed)}\n{where}"
    for p in ws.outputs:
        if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK):
            texts.append(p.read_text(errors="replace"))
    for text in texts:
        for fragment in FRAGMENTS:
            assert fragment not in text, f"secret {fragment!r} in the output of {where}"
    return proc


# What an argv can hold: no NUL byte, no lone surrogate (the OS cannot pass them at all).
ARG_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))


def arg_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=ARG_CHARS, max_size=max_size)


NUMBERS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e10", "1e309", "-1", "0", "0.05", "0.1", "5",
                     "86400", "86401", "", " ", "1_0", "0x10", "abc"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**30, max_value=10**30).map(str))
PATTERN = st.one_of(st.sampled_from(["*", "", ",", "python", "packages", "python.*", "nope",
                                     "python,,", "[", "?", "cuda.*", "  "]),
                    arg_text(12))
SET_ITEM = st.one_of(
    st.sampled_from(["=v", "unknown.key=1", "ttsfrd.resource=/x", "model.offline=1",
                     "novalue", "=", "scipy.paths="]),
    st.tuples(arg_text(10), arg_text(10)).map(lambda kv: f"{kv[0]}={kv[1]}"))
FREE_TEXT = arg_text(60)
SOMETIMES = st.sampled_from([True, False, False, False])


@st.composite
def check_call(draw: Any) -> list[Any]:
    args: list[Any] = ["check"]
    if draw(st.booleans()):
        args += ["--list-checks"]
        for _ in range(draw(st.integers(0, 2))):
            args += [draw(st.sampled_from(["--only", "--skip"])), draw(PATTERN)]
        if draw(st.booleans()):
            args.append("--json")
        return args
    args += ["--only", draw(st.sampled_from(["python,packages", "python", "python.platform",
                                             "packages"]))]
    # each invalid ingredient is drawn rarely, so that many runs go all the way to the writes
    if draw(SOMETIMES):
        args += ["--skip", draw(PATTERN)]
    if draw(SOMETIMES):
        args += [f"--timeout={draw(NUMBERS)}"]
    if draw(SOMETIMES):
        args += ["--set", draw(SET_ITEM)]
    args += ["--format", draw(st.sampled_from(["text", "json", "github", "json", "xml"]))]
    for flag, suffix in (("--report", ".json"), ("--junit", ".xml"), ("--save-facts", ".json")):
        if draw(st.booleans()):
            args += [flag, ("OUT", draw(st.sampled_from(("new", "existing", "symlink",
                                                         *OUT_KINDS))), suffix)]
    if draw(SOMETIMES):
        args += ["--recipe", ("IN", draw(st.sampled_from(("recipe", "recipe", *KINDS))),
                              ".toml")]
    if draw(SOMETIMES):
        args += ["--jobs", draw(st.sampled_from(["0", "1", "4", "x"]))]
    return args


@st.composite
def cheap_call(draw: Any) -> list[Any]:
    which = draw(st.sampled_from(["diff", "summarize", "explain", "recipes", "smoke",
                                  "facts"]))
    if which == "facts":  # judging a facts file: any input kind, maybe a conflicting flag
        args = ["check", "--facts", ("IN", draw(st.sampled_from(KINDS)), ".json")]
        args += draw(st.sampled_from([[], ["--json"], ["--recipe", "piper"],
                                      ["--only", "python"]]))
        return args
    if which == "diff":
        args: list[Any] = ["diff", ("IN", draw(st.sampled_from(KINDS)), ".json"),
                           ("IN", draw(st.sampled_from(KINDS)), ".json")]
        if draw(st.booleans()):
            args.append("--json")
        return args
    if which == "summarize":
        args = ["summarize"]
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(st.sampled_from((*KINDS, "folder")))
            args.append(("IN", kind, ".json"))
        args += draw(st.sampled_from([[], ["--json"], ["--markdown"]]))
        return args
    if which == "explain":
        return ["explain", draw(st.one_of(FREE_TEXT, st.sampled_from(
            ["", " ", "-", "ImportError: cannot import name 'hann' from 'scipy.signal'",
             "CUDA error: no kernel image is available for execution on the device"])))]
    if which == "recipes":
        sub = draw(st.sampled_from(["list", "show", "validate"]))
        if sub == "list":
            return ["recipes", "list", *draw(st.sampled_from([[], ["--json"]]))]
        target = draw(st.one_of(st.sampled_from(["piper", "nope", ""]),
                                st.just(("IN", draw(st.sampled_from(KINDS)), ".toml"))))
        return ["recipes", sub, target]
    # smoke: argument validation only (a missing --callable module, in-process)
    args = ["smoke", "--in-process", "--engine", "callable", "--callable",
            "tts_doctor_fuzz_absent:synthesize"]
    text_choice = draw(st.sampled_from(["text", "file", "none"]))
    if text_choice == "text":
        args += ["--text", draw(st.one_of(FREE_TEXT, st.just("Hello there.")))]
    elif text_choice == "file":
        args += ["--text-file", ("IN", draw(st.sampled_from(KINDS)), ".txt")]
    if draw(st.booleans()):
        args += [f"--timeout={draw(NUMBERS)}"]
    if draw(st.booleans()):
        args += [f"--sample-hz={draw(NUMBERS)}"]
    for flag, suffix in (("--out", ".wav"), ("--html", ".html"), ("--report", ".json")):
        if draw(st.booleans()):
            args += [flag, ("OUT", draw(st.sampled_from(OUT_KINDS)), suffix)]
    if draw(st.booleans()):
        args += ["--vram-budget", draw(st.sampled_from(["8GiB", "nan GiB", "-1", "1e400GB",
                                                        "", "GiB"]))]
    return args


def materialize(ws: Workspace, args: list[Any]) -> list[str]:
    out = []
    for a in args:
        if isinstance(a, tuple) and a[0] == "IN":
            if a[1] == "folder":
                folder = ws.root / ws._name("")
                folder.mkdir()
                sub = Workspace.__new__(Workspace)
                sub.root, sub.n, sub.outputs = folder, 0, set()
                for kind in ("report", "fifo", "binary", "loop", "report2"):
                    sub.make(kind)
                out.append(folder.name)
            else:
                out.append(ws.make(a[1], a[2]))
        elif isinstance(a, tuple) and a[0] == "OUT":
            out.append(ws.output(a[1], a[2]))
        else:
            out.append(a)
    return out


def _run_example(args: list[Any]) -> None:
    ws = Workspace()
    try:
        run(ws, materialize(ws, args))
    finally:
        ws.close()


@settings(FUZZ, max_examples=max(1, int(30 * SCALE)))
@given(args=check_call())
def test_fuzz_check(args):
    _run_example(args)


@settings(FUZZ, max_examples=max(1, int(60 * SCALE)))
@given(args=cheap_call())
def test_fuzz_cheap_subcommands(args):
    _run_example(args)
