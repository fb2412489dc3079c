"""The smoke modules one by one, in-process and fast: text, sizes, audio checks, ladder,
budget fit, leak verdict, profiler, injected memory cap."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest
from tts_doctor.finding import Status
from tts_doctor.smoke import audio_checks, budget, ladder, leak, wav
from tts_doctor.smoke import text as textmod
from tts_doctor.smoke.engine import Engine, EngineConfigError, create
from tts_doctor.smoke.profiler import Profiler, Timeline
from tts_doctor.smoke.sizes import fmt_bytes, parse_size

# --- text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, needle", [
    ("", "empty"), ("   \n\t ", "empty"), ("abc\x00def", "NUL"), ("ok \x07 bell", r"U\+0007"),
    ("broken \ufffd decode", r"U\+FFFD"), ("!!! ... ???", "no letters"),
    ("a" * (textmod.MAX_TEXT_CHARS + 1), "at most"),
])
def test_text_validation_refuses(bad, needle):
    with pytest.raises(textmod.TextError, match=needle):
        textmod.validate(bad)


def test_text_validation_keeps_unicode_text():
    assert textmod.validate("  欢迎大家来体验。Grüße!\n") == "欢迎大家来体验。Grüße!"


def test_read_file_refuses_binary_and_huge_and_non_utf8(tmp_path):
    (tmp_path / "bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "big").write_text("word " * 300_000)
    (tmp_path / "latin1").write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(textmod.TextError, match="binary"):
        textmod.read_file(str(tmp_path / "bin"))
    with pytest.raises(textmod.TextError, match="1,500,000 bytes"):
        textmod.read_file(str(tmp_path / "big"))
    with pytest.raises(textmod.TextError, match="not UTF-8"):
        textmod.read_file(str(tmp_path / "latin1"))
    with pytest.raises(textmod.TextError, match="cannot read"):
        textmod.read_file(str(tmp_path / "missing"))


def test_chunks_follow_sentences_then_words():
    text = ("The first sentence is here. The second one follows it closely! A third? "
            "And a very long fourth sentence that goes on, and on, and on well past the limit.")
    chunks = textmod.chunk(text, 40)
    assert all(len(c) <= 40 for c in chunks)
    assert chunks[0] == "The first sentence is here."
    assert " ".join(chunks).split() == text.split()  # nothing lost, nothing invented
    assert textmod.chunk(text, None) == [text]
    assert textmod.sentences("你好。再见！好的") == ["你好。", "再见！", "好的"]


def test_lengthen_reaches_the_length_with_whole_words():
    out = textmod.lengthen("The quick brown fox.", 100)
    assert 100 <= len(out) <= 120 and set(out.split()) <= {"The", "quick", "brown", "fox."}


# --- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("8GiB", 8 * 2 ** 30), ("8G", 8 * 2 ** 30),
                                         ("8GB", 8 * 10 ** 9), ("512 MiB", 512 * 2 ** 20),
                                         ("1.5GiB", 3 * 2 ** 29), ("1048576", 2 ** 20)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["", "eight", "8XB", "-1G", "0", "GiB"])
def test_parse_size_refuses(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_fmt_bytes():
    assert fmt_bytes(3 * 2 ** 29) == "1.50 GiB"
    assert fmt_bytes(312 * 2 ** 20) == "312.0 MiB"
    assert fmt_bytes(None) == "-"


# --- audio checks -------------------------------------------------------------------------


def _tone(seconds: float, rate: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _by_id(findings):
    return {f.id: f for f in findings}


def test_audio_checks_pass_a_plausible_tone():
    text = "x" * 40  # 2.8 s expected
    got = _by_id(audio_checks.check(_tone(2.8), 16000, text, audio_cfg={"sample_rate": 16000}))
    assert {f.status for f in got.values()} == {Status.OK}
    assert set(got) == {"output.finite", "output.silence", "output.clipping", "output.dc-offset",
                        "output.duration", "output.sample-rate"}


@pytest.mark.parametrize("make, failing", [
    (lambda: _tone(2.8) * 0, "output.silence"),
    (lambda: _tone(2.8) * 1e-5, "output.silence"),
    (lambda: np.where(np.arange(44800) % 5 == 0, np.nan, _tone(2.8)), "output.finite"),
    (lambda: np.clip(_tone(2.8) * 40, -1, 1), "output.clipping"),
    (lambda: _tone(0.2), "output.duration"),
    (lambda: _tone(30), "output.duration"),
])
def test_audio_checks_fail_with_a_fix(make, failing):
    got = _by_id(audio_checks.check(make(), 16000, "x" * 40))
    assert got[failing].status is Status.FAIL
    assert got[failing].fix is not None and got[failing].fix.description


def test_dc_offset_warns_and_sample_rate_mismatch_fails():
    got = _by_id(audio_checks.check(_tone(2.8) + 0.1, 16000, "x" * 40,
                                    audio_cfg={"sample_rate": 22050}))
    assert got["output.dc-offset"].status is Status.WARN
    assert got["output.sample-rate"].status is Status.FAIL
    assert "22050" in got["output.sample-rate"].summary
    assert got["output.sample-rate"].fix is not None


def test_duration_expectation_counts_cjk_characters_as_syllables():
    assert audio_checks.expected_seconds("x" * 10) == pytest.approx(0.7)
    assert audio_checks.expected_seconds("你好世界") == pytest.approx(0.88)
    assert audio_checks.expected_seconds("你好", seconds_per_char=0.5) == 1.0
    got = _by_id(audio_checks.check(_tone(4.0), 16000, "欢迎使用语音合成服务。"))
    assert got["output.duration"].status is Status.OK


def test_half_precision_nan_points_at_fp32():
    bad = _tone(2.8)
    bad[::3] = np.nan
    got = _by_id(audio_checks.check(bad, 16000, "x" * 40, precision="fp16"))
    assert "fp32" in " ".join(got["output.finite"].fix.commands)


# --- waveforms ----------------------------------------------------------------------------


def test_to_mono_float_accepts_the_usual_shapes_and_refuses_others():
    assert wav.to_mono_float(np.array([[0, 16384]], dtype=np.int16)).tolist() == [0.0, 0.5]
    assert wav.to_mono_float([[0.1], [0.2]]).shape == (2,)
    with pytest.raises(Exception, match="shape"):
        wav.to_mono_float(np.zeros((2, 100)))
    with pytest.raises(Exception, match="dtype"):
        wav.to_mono_float(["a", "b"])


def test_crossfade_concat_length_and_continuity():
    a, b = np.ones(100, np.float32), np.ones(50, np.float32)
    out = wav.crossfade_concat([a, b], 10)
    assert len(out) == 140 and np.allclose(out, 1.0)


def test_wav_write_is_atomic_and_sanitizes(tmp_path):
    from scipy.io import wavfile  # an independent reader of what the doctor wrote

    x = _tone(0.5)
    x[10] = np.nan
    path = tmp_path / "sub" / "a.wav"
    wav.write(str(path), x, 16000)
    rate, y = wavfile.read(path)
    assert rate == 16000 and len(y) == len(x) and y[10] == 0 and y.dtype == np.int16
    assert np.abs(y[100:].astype(np.float32) / 32767 - x[100:]).max() < 1e-4
    assert [p.name for p in path.parent.iterdir()] == ["a.wav"]


@pytest.mark.parametrize("dtype, width", [("<i2", 2), ("<i4", 4), ("u1", 1)])
def test_wav_read_scales_integer_pcm(tmp_path, dtype, width):
    from scipy.io import wavfile

    x = (np.sin(np.arange(800) / 10) * 0.5).astype(np.float32)
    if width == 1:
        pcm = (x * 127 + 128).round().astype(np.uint8)
    else:
        pcm = (x * (2 ** (8 * width - 1) - 1)).round().astype(dtype)
    path = tmp_path / "p.wav"
    wavfile.write(path, 8000, pcm)
    y, rate = wav.read(str(path))
    assert rate == 8000 and y.dtype == np.float32 and np.abs(y - x).max() < 1.0 / 100


# --- ladder (a fake engine: memory need grows with the text) ------------------------------


class _Budgeted(Engine):
    """Runs out of memory when text length / (2 if half) exceeds `limit` characters."""

    name = "fake"
    precisions = ("fp32", "fp16", "bf16")
    vocoder_chunks = True

    def __init__(self, limit: int, half_nan: bool = False, error: bool = False):
        super().__init__({})
        self.limit, self.half_nan, self.error = limit, half_nan, error
        self.calls: list[tuple[str, str, Any]] = []

    def load(self, device: str, precision: str) -> None:
        self.device, self.precision = device, precision

    def synthesize(self, text: str):
        import torch

        self.calls.append((self.precision, text, self.vocoder_chunk))
        if self.error:
            raise ValueError("a bug, not memory")
        need = len(text) / (2 if self.precision != "fp32" else 1)
        if self.vocoder_chunk:
            need /= 4
        if need > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        x = _tone(0.07 * len(text))
        if self.precision != "fp32" and self.half_nan:
            x[::2] = np.nan
        return x, 16000


TEXT = ("The first sentence is here and it is long. The second sentence follows it. "
        "And then a third one, which ends the paragraph.")


def test_ladder_first_rung_works():
    eng = _Budgeted(limit=10_000)
    out = ladder.run(eng, TEXT, ladder.Plan("cpu", "fp32"), Profiler())
    assert out.worked == 0 and [r.outcome for r in out.rungs] == ["ok"]


def test_ladder_steps_to_half_precision_then_text_chunks():
    eng = _Budgeted(limit=40)
    out = ladder.run(eng, TEXT, ladder.Plan("cpu", "fp32"), Profiler())
    names = [(r.name, r.outcome) for r in out.rungs]
    assert names[0] == ("as-configured", "oom")
    assert names[1] == ("half-precision", "oom")
    assert names[-1][1] == "ok" and names[-1][0].startswith("text-chunks-")
    assert out.plan.precision == "bf16" and out.plan.max_chars <= 80
    assert len(out.samples) > 0


def test_ladder_half_precision_nan_counts_as_failed_and_returns_to_fp32():
    eng = _Budgeted(limit=70, half_nan=True)  # fp32 needs 122, half 61
    out = ladder.run(eng, TEXT, ladder.Plan("cpu", "fp32"), Profiler())
    outcomes = [r.outcome for r in out.rungs]
    assert outcomes[:2] == ["oom", "broken-audio"]
    assert out.plan.precision == "fp32" and out.rungs[out.worked].name.startswith("text-chunks")
    assert not np.isnan(out.samples).any()


def test_ladder_explicit_fp16_that_breaks_goes_to_full_precision():
    eng = _Budgeted(limit=10_000, half_nan=True)
    out = ladder.run(eng, TEXT, ladder.Plan("cpu", "fp16"), Profiler(), allow_precision=False)
    assert [(r.name, r.outcome) for r in out.rungs] == [("as-configured", "broken-audio"),
                                                        ("full-precision", "ok")]


def test_ladder_every_rung_oom_and_off_and_error():
    eng = _Budgeted(limit=1)
    out = ladder.run(eng, TEXT, ladder.Plan("cpu", "fp32"), Profiler())
    assert out.worked is None and {r.outcome for r in out.rungs} == {"oom"}
    assert out.rungs[-1].name == "vocoder-chunks"  # no cpu rung: already on the CPU
    off = ladder.run(_Budgeted(limit=1), TEXT, ladder.Plan("cpu", "fp32"), Profiler(),
                     enabled=False)
    assert len(off.rungs) == 1 and off.worked is None
    err = ladder.run(_Budgeted(limit=1, error=True), TEXT, ladder.Plan("cpu", "fp32"),
                     Profiler())
    assert len(err.rungs) == 1 and err.error["type"] == "ValueError"


def test_ladder_recognizes_mps_and_ort_out_of_memory():
    assert ladder.is_oom(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert ladder.is_oom(RuntimeError("Failed to allocate memory for requested buffer of size"))
    assert not ladder.is_oom(RuntimeError("shape mismatch"))


# --- budget fit and leak verdict ----------------------------------------------------------


def test_budget_fit_and_verdict():
    pts = [budget.Point(c, 100 * 2 ** 20 + c * 2 ** 20) for c in (50, 100, 200)]
    v = budget.verdict({"points": pts}, 500 * 2 ** 20, 80, None)
    assert v["fits"] and v["longest_chars"] == 400
    assert math.isclose(v["fit"]["slope_per_char"], 2 ** 20) and v["fit"]["r2"] > 0.999
    small = budget.verdict({"points": pts}, 150 * 2 ** 20, 80, None)
    assert not small["fits"] and small["longest_chars"] == 50 and small["headroom"] < 0
    oom = budget.verdict({"points": [*pts[:2], budget.Point(200, None, oom=True)]},
                         10 * 2 ** 30, 80, None)
    assert oom["oom_at_chars"] == 200 and oom["longest_chars"] == 199


def test_leak_judge():
    mib = 2 ** 20
    flat = [{"rss": 300 * mib + d} for d in (0, 2 * mib, -1 * mib, 1 * mib)]
    assert leak.judge(flat, cuda=False)["verdict"] == "ok"
    stairs = [{"rss": 300 * mib + i * 10 * mib} for i in range(4)]
    assert leak.judge(stairs, cuda=False)["verdict"] == "leak"
    one_step = [{"rss": 300 * mib}, {"rss": 340 * mib}, {"rss": 340 * mib}, {"rss": 340 * mib}]
    assert leak.judge(one_step, cuda=False)["verdict"] == "ok"  # a plateau: allocator caching
    cuda = [{"rss": 0, "torch_allocated": 10 * mib + i * 4 * mib} for i in range(3)]
    assert leak.judge(cuda, cuda=True)["verdict"] == "leak"
    assert leak.judge(flat[:1], cuda=False)["verdict"] == "not-enough-runs"


# --- profiler -----------------------------------------------------------------------------


def test_timeline_stays_bounded():
    tl = Timeline(max_points=64)
    for i in range(10_000):
        tl.add(i * 0.01, i, None, None)
    assert len(tl.t) < 64 and tl.stride >= 128 and tl.t[0] == 0.0 and tl.t[-1] > 90


def test_profiler_records_stage_peaks_and_samples():
    prof = Profiler(sample_hz=50)
    prof.start()
    with prof.synthesis() as timing:
        with prof.stage("acoustic"):
            big = np.ones(64 * 2 ** 20 // 8)  # 64 MiB, touched
            time.sleep(0.15)
            del big
        prof.mark_first_audio()
        with prof.stage("post"):
            pass
    prof.stop()
    recs = {s["name"]: s for s in prof.stages()}
    assert recs["acoustic"]["rss_rise"] >= 60 * 2 ** 20
    assert recs["post"]["rss_rise"] < 8 * 2 ** 20
    assert recs["acoustic"]["torch_allocated_peak"] is None  # no GPU here
    assert timing["first_audio_s"] <= timing["wall_s"]
    assert len(prof.timeline.t) >= 3 and prof.spans[0][0] == "acoustic"


# --- injected memory cap ------------------------------------------------------------------


def test_memory_cap_counts_activations_not_weights_or_views():
    import torch
    from tts_doctor.smoke.memcap import MemoryCap

    w = torch.ones(1024, 1024)  # 4 MiB of "weights", allocated before the cap
    with torch.inference_mode(), MemoryCap(3 * 2 ** 20) as cap:
        v = w.t()  # a view: no new memory
        x = torch.ones(256, 1024)  # 1 MiB
        y = x @ v  # 1 MiB more
        del x
        assert cap.live == 2 ** 20 and cap.peak == 2 * 2 ** 20
        with pytest.raises(torch.OutOfMemoryError, match="injected cap"):
            torch.ones(1024, 1024)
        del y


# --- engine registry ----------------------------------------------------------------------


def test_unknown_engine_and_bad_options():
    with pytest.raises(EngineConfigError, match="unknown engine"):
        create("tacotron9", {})
    with pytest.raises(EngineConfigError, match="vocoder"):
        create("reference", {"vocoder": "hifigan-v9"})
    with pytest.raises(EngineConfigError, match="seed"):
        create("reference", {"seed": "twelve"})
    with pytest.raises(EngineConfigError, match="memory_cap"):
        create("reference", {"memory_cap": "lots"})
