"""Issue 12, hostile input: each reproduction as a test through the real CLI (a subprocess).

Bad input is one line and exit 2 before any work; outputs are written by what they are
(atomic replace, write-through for devices and FIFOs, refusal for read-only files); inputs are
regular files of bounded size read without blocking; no secret reaches any output format.
Device nodes are made with mknod in a temporary folder (never /dev/full itself: a regression
would replace the machine's device); those tests skip where mknod is not allowed.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import stat
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tts_doctor.commands.check import KNOWN_OPTIONS
from tts_doctor.redact import Redactor, looks_random

from tests.conftest import REPO, run_cli
from tests.planted_secrets import FRAGMENTS, HF, JWT, RAW1, SECRET_ENV

CHEAP = ("check", "--only", "python.platform")


def _one_error_line(r, needle: str) -> None:
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("tts-doctor: error:"), r.stderr
    assert needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def _mknod(path: Path, major: int, minor: int) -> None:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")


# --- outputs: checked before any work, never a silent mkdir -------------------------------

@pytest.mark.parametrize("flag", ["--report", "--junit"])
def test_check_output_into_a_missing_folder_is_exit_2_and_creates_nothing(tmp_path, flag):
    r = run_cli(*CHEAP, flag, str(tmp_path / "missing" / "r.out"), cwd=tmp_path)
    _one_error_line(r, "does not exist")
    assert not (tmp_path / "missing").exists()
    assert r.stdout == ""  # refused before the probes ran


def test_smoke_out_into_a_missing_folder_is_exit_2_and_creates_nothing(tmp_path):
    r = run_cli("smoke", "--engine", "reference", "--text", "Hello there.", "--out",
                "newdir/sub/x.wav", cwd=tmp_path)
    _one_error_line(r, "does not exist")
    assert not (tmp_path / "newdir").exists()


def test_output_into_a_read_only_folder_is_exit_2_run_as_nobody():
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the CLI as an unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="tts-doctor-ro-"))
    try:
        top.chmod(0o755)
        ro = top / "ro"
        ro.mkdir(mode=0o555)
        ro.chmod(0o555)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
               sys.executable, "-m", "tts_doctor", *CHEAP, "--report", str(ro / "r.json")]
        env = {**os.environ, "HOME": str(top)}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=top, env=env,
                              timeout=120)
        assert proc.returncode == 2, proc
        assert "is not writable" in proc.stderr, proc.stderr
        assert list(ro.iterdir()) == []
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_read_only_file_is_not_replaced(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("keep me\n")
    target.chmod(0o444)
    r = run_cli(*CHEAP, "--report", str(target), cwd=tmp_path)
    _one_error_line(r, "read-only (mode 0444)")
    assert target.read_text() == "keep me\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444


def test_symlink_is_followed_deliberately_the_link_stays(tmp_path):
    real = tmp_path / "reports" / "latest-real.json"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    r = run_cli(*CHEAP, "--report", str(link), cwd=tmp_path)
    assert r.returncode == 0, r
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text())["schema_version"].startswith("1.")


def test_symlink_loop_as_output_is_exit_2(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    r = run_cli(*CHEAP, "--report", str(tmp_path / "a"), cwd=tmp_path)
    _one_error_line(r, "symlink loop")


def test_character_device_is_written_through_not_replaced(tmp_path):
    node = tmp_path / "null"
    _mknod(node, 1, 3)  # what /dev/null is
    r = run_cli(*CHEAP, "--report", str(node), "--junit", str(node), cwd=tmp_path)
    assert r.returncode == 0, r
    assert stat.S_ISCHR(node.stat().st_mode)


def test_full_device_is_exit_2_with_a_clean_message_and_stays_a_device(tmp_path):
    node = tmp_path / "full"
    _mknod(node, 1, 7)  # what /dev/full is: every write fails with ENOSPC
    r = run_cli(*CHEAP, "--report", str(node), cwd=tmp_path)
    _one_error_line(r, "No space left on device")
    assert stat.S_ISCHR(node.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["full"]  # no stray temporary file


def test_report_to_dev_stdout_writes_to_the_open_stdout(tmp_path):
    was_link = os.path.islink("/dev/stdout")
    r = run_cli(*CHEAP, "--report", "/dev/stdout", "--format", "text", cwd=tmp_path)
    assert r.returncode == 0, r
    assert r.stdout.lstrip().startswith("{")  # the JSON report first, then the text report
    assert '"schema_version"' in r.stdout and "python.platform" in r.stdout
    assert os.path.islink("/dev/stdout") == was_link


def test_fifo_output_without_reader_is_exit_2_not_a_hang(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    r = run_cli(*CHEAP, "--report", str(fifo), cwd=tmp_path, timeout=120)
    _one_error_line(r, "no reader")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_fifo_output_with_a_reader_gets_the_report(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # held open: the writer has a reader
    try:
        r = run_cli(*CHEAP, "--report", str(fifo), cwd=tmp_path, timeout=120)
        assert r.returncode == 0, r
        data = os.read(reader, 1 << 20)  # a one-probe report fits the pipe's buffer
    finally:
        os.close(reader)
    assert json.loads(data)["schema_version"].startswith("1.")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


# --- inputs: regular, bounded, UTF-8, never blocking --------------------------------------

@pytest.mark.parametrize("content, needle", [
    (b"\xff\xfe\x00\x01binary", "binary data"),
    (b'name = "caf\xe9"\n', "not UTF-8"),
])
def test_recipe_that_is_not_utf8_text_is_exit_2(tmp_path, content, needle):
    (tmp_path / "r.toml").write_bytes(content)
    r = run_cli("check", "--recipe", "./r.toml", "--only", "python.platform", cwd=tmp_path)
    _one_error_line(r, needle)


def test_recipe_that_is_a_fifo_is_exit_2_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "r.toml")
    r = run_cli("check", "--recipe", "./r.toml", "--only", "python.platform", cwd=tmp_path,
                timeout=120)
    _one_error_line(r, "a FIFO")


def test_huge_recipe_is_refused_by_its_size_not_read(tmp_path):
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: no disk used
    r = run_cli("check", "--recipe", str(big), "--only", "python.platform", cwd=tmp_path)
    _one_error_line(r, "over the limit of 1 MiB")


def test_diff_input_that_is_a_fifo_is_exit_2_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "good.json")
    (tmp_path / "bad.json").write_text(json.dumps(_report([("a.b", "ok")])))
    r = run_cli("diff", "good.json", "bad.json", cwd=tmp_path, timeout=120)
    _one_error_line(r, "a FIFO")


def test_summarize_skips_a_fifo_in_a_folder_and_reads_the_rest(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    os.mkfifo(folder / "stuck.json")
    (folder / "host1.json").write_text(json.dumps(_report([("a.b", "ok")], host="host1")))
    r = run_cli("summarize", str(folder), "--json", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r
    assert [h["host"] for h in r.json["hosts"]] == ["host1"]
    assert "stuck.json: a FIFO" in r.stderr


def test_summarize_of_only_a_fifo_is_exit_2(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    os.mkfifo(folder / "stuck.json")
    r = run_cli("summarize", str(folder), cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r
    assert "no readable tts-doctor report" in r.stderr and "Traceback" not in r.stderr


def test_text_file_that_is_a_fifo_or_a_device_is_exit_2(tmp_path):
    os.mkfifo(tmp_path / "words")
    r = run_cli("smoke", "--engine", "reference", "--text-file", "words", cwd=tmp_path,
                timeout=120)
    _one_error_line(r, "a FIFO")
    r = run_cli("smoke", "--engine", "reference", "--text-file", "/dev/zero", cwd=tmp_path,
                timeout=120)
    _one_error_line(r, "a character device")


def _report(findings, host="h", **extra):
    return {"schema_version": "1.0", "host": host,
            "findings": [{"id": i, "status": s, "summary": f"{i} is {s}",
                          "category": i.split(".")[0]} for i, s in findings], **extra}


@pytest.mark.parametrize("report, needle", [
    ({"schema_version": "1.0", "findings": 5}, "'findings' is a number, expected a list"),
    ({"schema_version": "1.0", "findings": [{"status": "ok"}]}, "findings[0] has no 'id'"),
    ({"schema_version": "1.0", "findings": [{"id": "a.b", "status": "great"}]},
     "status 'great', expected one of"),
    ({"schema_version": "1.0", "findings": [], "summary": {"categories": {"a": "meh"}}},
     "summary.categories.a is 'meh'"),
    ({"schema_version": 1, "findings": []}, "is not 1.x"),
])
@pytest.mark.parametrize("command", ["diff", "summarize"])
def test_report_of_the_wrong_shape_is_exit_2_naming_the_field(tmp_path, report, needle,
                                                               command):
    (tmp_path / "x.json").write_text(json.dumps(report))
    (tmp_path / "good.json").write_text(json.dumps(_report([("a.b", "ok")])))
    args = ["diff", "x.json", "good.json"] if command == "diff" else ["summarize", "x.json"]
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_deeply_nested_json_is_exit_2(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    r = run_cli("diff", "deep.json", "deep.json", cwd=tmp_path)
    _one_error_line(r, "nested too deeply")


# --- numbers and selections ---------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e10", "-1", "abc"])
@pytest.mark.parametrize("command", [("check", "--only", "python.platform"),
                                     ("smoke", "--engine", "reference", "--text", "Hi there.")])
def test_timeouts_must_be_finite_and_in_range(tmp_path, value, command):
    r = run_cli(*command, f"--timeout={value}", cwd=tmp_path)
    _one_error_line(r, "--timeout")


def test_smoke_sample_rate_must_be_finite(tmp_path):
    r = run_cli("smoke", "--engine", "reference", "--text", "Hi there.", "--sample-hz=nan",
                cwd=tmp_path)
    _one_error_line(r, "not a finite number")


@pytest.mark.parametrize("setting, needle", [
    ("unknown.key=1", "--set unknown.key: unknown key"),
    ("=v", "empty key"),
])
def test_set_rejects_unknown_and_empty_keys_naming_the_known_ones(setting, needle):
    r = run_cli(*CHEAP, "--set", setting)
    _one_error_line(r, needle)
    assert "ttsfrd.resource" in r.stderr  # the known keys are named


def test_set_keeps_accepting_the_known_keys():
    r = run_cli(*CHEAP, "--set", "ttsfrd.resource=/nowhere", "--json")
    assert r.returncode == 0, r


def test_known_options_cover_every_key_the_probes_read():
    read = set()
    for path in (REPO / "doctor" / "probes").glob("*.py"):
        read |= set(re.findall(r"ctx\.options\.get\(\s*\"([^\"]+)\"", path.read_text()))
    assert read, "the probes read no option: the pattern is stale"
    assert read <= set(KNOWN_OPTIONS), read - set(KNOWN_OPTIONS)


def test_skip_everything_is_exit_2_saying_nothing_would_be_checked():
    r = run_cli("check", "--skip", "*")
    _one_error_line(r, "nothing would be checked")


@pytest.mark.parametrize("flag", ["--only", "--skip"])
def test_an_empty_pattern_is_exit_2_not_everything(flag):
    r = run_cli("check", flag, "", "--list-checks")
    _one_error_line(r, "empty pattern")


# --- secrets ------------------------------------------------------------------------------

def _assert_clean(text: str, where: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"{fragment!r} reached {where}"


def test_planted_secrets_reach_no_output_format(tmp_path):
    summary = tmp_path / "summary.md"
    outputs = []
    for fmt in ("json", "text", "github"):
        r = run_cli("check", "--only", "python,packages", "--format", fmt, "-v",
                    "--report", str(tmp_path / f"{fmt}.json"),
                    "--junit", str(tmp_path / f"{fmt}.xml"), cwd=tmp_path,
                    env={**SECRET_ENV, "GITHUB_STEP_SUMMARY": str(summary)})
        assert r.returncode in (0, 1), r
        outputs += [(f"{fmt} stdout", r.stdout), (f"{fmt} stderr", r.stderr)]
    for f in sorted(tmp_path.iterdir()):
        outputs.append((f.name, f.read_text()))
    for where, text in outputs:
        _assert_clean(text, where)
    variables = json.loads((tmp_path / "json.json").read_text())["environment"]["variables"]
    # scrubbed, not dropped: the readable part of each value stays
    assert variables["TORCH_HOME"] == "/srv/***/torch"
    assert variables["NUMBA_CACHE_DIR"].startswith("/var/cache/")
    assert variables["CUDA_MPS_PIPE_DIRECTORY"] == "/tmp/mps/***"


def test_diff_and_summarize_scrub_paths_and_report_contents(tmp_path):
    folder = tmp_path / HF
    folder.mkdir()
    r = run_cli("diff", f"{HF}/missing.json", f"{HF}/missing.json", cwd=tmp_path)
    assert r.returncode == 2, r
    _assert_clean(r.stderr + r.stdout, "the diff error")
    leaky = _report([("a.b", "fail")], host="h1",
                    environment={"variables": dict(SECRET_ENV)})
    leaky["findings"][0]["summary"] = f"token {RAW1} in {JWT}"
    (folder / "bad.json").write_text(json.dumps(leaky))
    (folder / "good.json").write_text(json.dumps(_report([("a.b", "ok")], host="h0")))
    for args in (["diff", f"{HF}/good.json", f"{HF}/bad.json"],
                 ["diff", "--json", f"{HF}/good.json", f"{HF}/bad.json"],
                 ["summarize", HF], ["summarize", "--json", HF]):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode in (0, 1), r
        assert "a.b" in r.stdout or "h1" in r.stdout
        _assert_clean(r.stdout + r.stderr, " ".join(args))


def test_short_secret_values_do_not_blank_ordinary_words():
    red = Redactor({"XDG_SESSION_TYPE": "tty", "MY_TOKEN": "[Errno", "HOME": "/root"})
    assert red.text("[Errno 13] Permission denied") == "[Errno 13] Permission denied"
    assert red.text("on tty1 as user") == "on tty1 as user"
    long = Redactor({"DEPLOY_TOKEN": "opaque-value-42"})
    assert long.text("cmd --x opaque-value-42") == "cmd --x ***"


@pytest.mark.parametrize("text", [
    "/work/venv/lib/python3.11/site-packages/nvidia_cublas_cu12-12.8.4.1.dist-info",
    "torch 2.13.0+cpu, cp311-cp311-manylinux_2_28_x86_64.whl",
    "CUDA_VISIBLE_DEVICES=GPU-5a3c2d1e-8f9b-4c6d-a1e2-3f4b5c6d7e8f",
    "models--hexgrad--Kokoro-82M/snapshots/0123456789abcdef0123456789abcdef01234567",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True,max_split_size_mb:128",
    "/usr/local/cuda-12.8/targets/x86_64-linux/lib/libcudart.so.12",
    "libgomp-a34b3233.so.1 from torch.libs",
    "NumbaDeprecationWarning: The 'nopython' keyword argument was not supplied",
])
def test_ordinary_paths_versions_and_digests_stay_readable(text):
    assert Redactor({}).text(text) == text


def test_random_tokens_are_recognized_without_a_known_shape():
    rnd = random.Random(12)
    alphabet = string.ascii_letters + string.digits
    tokens = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(24, 48)))
              for _ in range(500)]
    caught = sum(looks_random(t) for t in tokens)
    assert caught >= 0.97 * len(tokens), caught  # measured: about 99%


def test_real_distribution_names_and_paths_are_not_taken_for_tokens():
    import importlib.metadata as md

    names = {f"{d.metadata['Name']}-{d.version}" for d in md.distributions()}
    names |= set(sys.path)
    masked = sorted(n for n in names if Redactor({}).text(n) != n)
    assert not masked


def test_explain_reads_a_bounded_utf8_stdin():
    with open("/dev/zero", "rb") as endless:
        proc = subprocess.run([sys.executable, "-m", "tts_doctor", "explain", "-"],
                              stdin=endless, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc
    assert "over 1,048,576 bytes" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tts_doctor", "explain", "-"],
                          input=b"\xff\xfe", capture_output=True, timeout=120)
    assert proc.returncode == 2 and b"not UTF-8" in proc.stderr, proc


@pytest.mark.parametrize("command", [["check"], ["smoke"], ["fix"], ["diff"], ["summarize"],
                                     ["explain"], ["docs"], ["recipes", "show"],
                                     ["shims", "install"]])
def test_every_help_page_renders(command):
    r = run_cli(*command, "--help")
    assert r.returncode == 0 and "Usage:" in r.stdout and not r.stderr, r


def test_control_characters_in_a_value_keep_the_error_on_one_line():
    r = run_cli("check", "--set", "0\r0=1")  # found by the fuzzer
    _one_error_line(r, "--set 0\\r0: unknown key")
    r = run_cli("diff", "a\nb\x1b[31m.json", "x.json")
    _one_error_line(r, "a\\nb\\x1b[31m.json")
