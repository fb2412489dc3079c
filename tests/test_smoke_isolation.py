"""Smoke synthesis runs in a watched child: model code that segfaults, aborts or hangs ends
as a `smoke.run` error finding, never as a dead doctor, and no partial WAV is left."""

from __future__ import annotations

import textwrap

import pytest

VOICES = textwrap.dedent('''
    import ctypes, os, time
    import numpy as np

    def segfault(text):
        ctypes.string_at(0)

    def aborts(text):
        os.abort()

    def hangs(text):
        time.sleep(3600)

    def fine(text):
        t = np.arange(16000) / 16000
        return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000
''')


@pytest.fixture
def voices(tmp_path):
    (tmp_path / "crashy_voices.py").write_text(VOICES)
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize("function, words", [("segfault", "SIGSEGV"), ("aborts", "SIGABRT")])
def test_a_crash_in_model_code_is_a_finding(cli, voices, tmp_path, function, words):
    out = tmp_path / "out.wav"
    r = cli("smoke", "--callable", f"crashy_voices:{function}", "--text", "Hello there.",
            "--out", str(out), "--json", env=voices)
    assert r.returncode == 1, r
    f = r.finding("smoke.run")
    assert f["status"] == "error"
    assert words in f["summary"] and "synthesizing" in f["summary"]
    if function == "segfault":
        assert any("crashy_voices.py" in frame for frame in f["details"]["stack"])
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.wav")] == []


def test_a_hang_is_stopped_by_the_watchdog(cli, voices):
    r = cli("smoke", "--callable", "crashy_voices:hangs", "--text", "Hello there.", "--json",
            "--timeout", "8", env=voices)
    assert r.returncode == 1, r
    f = r.finding("smoke.run")
    assert f["status"] == "error" and "timed out after 8 s" in f["summary"]


def test_the_same_voice_in_process_and_isolated_gives_the_same_audio_verdicts(cli, voices):
    iso = cli("smoke", "--callable", "crashy_voices:fine", "--text", "Hello there.", "--json",
              env=voices)
    inproc = cli("smoke", "--callable", "crashy_voices:fine", "--text", "Hello there.",
                 "--json", "--in-process", env=voices)
    assert iso.returncode == inproc.returncode == 0, (iso, inproc)
    verdicts = [{f["id"]: f["status"] for f in r.json["findings"]} for r in (iso, inproc)]
    assert verdicts[0] == verdicts[1]
    assert iso.json["smoke"]["audio"]["sample_rate"] == 16000


@pytest.mark.parametrize("function, args, words", [
    ("segfault", (), "smoke crashed while synthesizing"),
    ("hangs", ("--timeout", "5"), "smoke timed out after 5 s"),
])
def test_a_crash_or_hang_in_text_mode_is_reported_not_a_traceback(cli, voices, function, args,
                                                                   words):
    """Text mode printed the profile from the child's section and died with KeyError 'text'
    when the child sent none (issue 12)."""
    r = cli("smoke", "--callable", f"crashy_voices:{function}", "--text", "Hello there.", *args,
            env=voices)
    assert r.returncode == 1, r
    assert "Traceback" not in r.stderr and "KeyError" not in r.stderr + r.stdout, r
    assert "Smoke synthesis: callable engine" in r.stdout
    assert "smoke.run" in r.stdout and words in r.stdout
