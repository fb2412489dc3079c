"""`tts-doctor smoke` end to end through the real CLI, on the CPU of this machine.

The reference engine (Sambert-style + HiFi-GAN, random weights), the real Piper voice, the
out-of-memory ladder under a memory cap injected into the engine (there is no GPU here), the
budget fit, the leak check against a planted leak, and bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

SCHEMA = json.loads((REPO / "doctor" / "report-schema.json").read_text())
SHORT = "Hello there. This is a smoke test."


def _findings(r) -> dict[str, dict]:
    return {f["id"]: f for f in r.json["findings"]}


def _valid(data: dict) -> None:
    import jsonschema

    jsonschema.validate(data, SCHEMA)


# --- the reference engine -----------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    r = run_cli("smoke", "--recipe", "reference-hifigan-v1", "--text", SHORT, "--json",
                "--out", str(out / "ref.wav"), "--html", str(out / "ref.html"),
                "--report", str(out / "ref.json"))
    return r, out


def test_reference_v1_end_to_end_on_cpu(reference_run):
    r, _out = reference_run
    assert r.returncode == 0, r
    data = r.json
    _valid(data)
    f = _findings(r)
    assert f["smoke.load"]["status"] == "ok"
    assert f["smoke.load"]["details"]["parameters"]["vocoder"] == 13_926_017
    assert "noise, not speech" in f["smoke.weights"]["summary"]
    assert f["smoke.synthesis"]["status"] == "ok" and f["smoke.ladder"]["status"] == "ok"
    for check in ("finite", "silence", "clipping", "dc-offset", "duration", "sample-rate"):
        assert f[f"output.{check}"]["status"] == "ok", f[f"output.{check}"]
    assert data["summary"]["categories"] == {"smoke": "ok", "output": "ok"}


def test_reference_report_has_the_smoke_section(reference_run):
    r, out = reference_run
    sec = r.json["smoke"]
    assert sec["engine"]["name"] == "reference" and sec["engine"]["device"] == "cpu"
    stages = {s["name"]: s for s in sec["stages"]}
    assert {"load", "frontend", "acoustic", "vocoder", "post"} <= set(stages)
    assert all(s["rss_peak"] > 0 and s["wall_s"] >= 0 for s in stages.values())
    assert stages["vocoder"]["torch_allocated_peak"] is None  # CPU: no allocator counters
    assert sec["timing"]["rtf"] > 0 and sec["audio"]["sample_rate"] == 22050
    tl = sec["timeline"]
    assert len(tl["t"]) == len(tl["rss"]) > 0 and tl["nvml_used"] is None
    assert [s[0] for s in tl["spans"]][:2] == ["load", "frontend"]
    assert sec["ladder"]["worked"] == "as-configured"
    assert json.loads((out / "ref.json").read_text())["smoke"]["engine"]["name"] == "reference"


def test_reference_writes_wav_and_html(reference_run):
    from scipy.io import wavfile  # an independent reader of what the doctor wrote

    r, out = reference_run
    rate, x = wavfile.read(out / "ref.wav")
    assert rate == 22050 and abs(len(x) / rate - r.json["smoke"]["audio"]["seconds"]) < 0.01
    page = (out / "ref.html").read_text()
    assert page.count("<img") >= 3 and "smoke.synthesis" in page
    assert sorted(p.name for p in out.iterdir()) == ["ref.html", "ref.json", "ref.wav"]


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
def test_reference_loads_a_real_weight_normed_generator_checkpoint(tmp_path):
    import torch
    from tts_doctor.smoke.engines import hifigan

    gen = hifigan.Generator(hifigan.CONFIGS["v2"])
    for m in gen.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            torch.nn.utils.weight_norm(m)
    torch.save({"generator": gen.state_dict()}, tmp_path / "g_02500000")
    r = run_cli("smoke", "--recipe", "reference-hifigan-v1", "--checkpoint",
                str(tmp_path / "g_02500000"), "--text", "Short text.", "--json")
    f = _findings(r)
    assert f["smoke.load"]["status"] == "ok", r
    assert f["smoke.load"]["details"]["parameters"]["vocoder"] == 925_985
    w = f["smoke.weights"]
    assert w["details"]["weight_norm"] is True and w["details"]["config"] == "v2"
    assert "weight norm folded" in w["summary"] and "not the recipe's V1" in w["summary"]
    assert f["smoke.synthesis"]["status"] == "ok"


def test_text_output_shows_stages_and_findings():
    r = run_cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v3", "--text",
                "Short text.")
    assert r.returncode == 0, r
    assert "Smoke synthesis: reference engine on cpu (fp32)" in r.stdout
    assert "vocoder" in r.stdout and "smoke.memory" in r.stdout
    assert "No issues found" in r.stdout


# --- Piper: real speech -------------------------------------------------------------------


@pytest.fixture(scope="module")
def piper_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("piper")
    r = run_cli("smoke", "--recipe", "piper", "--json", "--out", str(out / "piper.wav"))
    return r, out


def test_piper_real_voice_passes_every_check(piper_run):
    r, out = piper_run
    assert r.returncode == 0, r
    _valid(r.json)
    f = _findings(r)
    assert all(x["status"] in ("ok", "skip") for x in f.values()), f
    sec = r.json["smoke"]
    assert sec["engine"]["info"]["voice"] == "en_US-joe-medium.onnx"
    assert {"frontend", "acoustic+vocoder", "post"} <= {s["name"] for s in sec["stages"]}
    # two sentences: the first one's audio arrives before the whole synthesis is done
    assert sec["timing"]["first_audio_s"] < sec["timing"]["synthesis_s"]
    assert f["output.silence"]["details"]["rms"] > 0.02  # speech, not a whisper
    assert (out / "piper.wav").stat().st_size > 100_000


@pytest.mark.parametrize("gain, status", [("1", "ok"), ("0", "fail"), ("0.0001", "fail")])
def test_silenced_copy_of_piper_output_fails_the_silence_check(piper_run, gain, status):
    _, out = piper_run
    r = run_cli("smoke", "--recipe", "piper", "--callable",
                "tests.fakes_smoke.voices:from_wav", "--json",
                env={"SMOKE_WAV": str(out / "piper.wav"), "SMOKE_GAIN": gain})
    f = _findings(r)
    assert f["output.silence"]["status"] == status
    assert r.returncode == (0 if status == "ok" else 1), r
    if status == "fail":
        assert f["output.silence"]["fix"]["description"]
        assert f["output.sample-rate"]["status"] == "ok"  # still 22,050 Hz as the recipe says


# --- the ladder, on CPU, under a memory cap injected into the engine ---------------------


def test_ladder_steps_down_under_injected_memory_cap_on_cpu():
    text = "The quick brown fox jumps over the lazy dog. It was not amused, and it said so."
    r = run_cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v2", "--set",
                "memory_cap=7MiB", "--text", text, "--json")
    assert r.returncode == 0, r  # a lower rung worked: a warning, not a failure
    f = _findings(r)
    lad = r.json["smoke"]["ladder"]
    rungs = [(x["rung"], x["outcome"]) for x in lad["rungs"]]
    assert rungs[0] == ("as-configured", "oom")
    assert "injected cap" in lad["rungs"][0]["detail"]
    assert rungs[-1][1] == "ok" and lad["worked"] == rungs[-1][0]
    assert rungs[-1][0].startswith(("text-chunks-", "vocoder-chunks"))
    assert f["smoke.ladder"]["status"] == "warn"
    assert "--max-chars" in " ".join(f["smoke.ladder"]["fix"]["commands"]) or \
        rungs[-1][0] == "vocoder-chunks"
    assert f["output.finite"]["status"] == "ok" and f["output.silence"]["status"] == "ok"


def test_ladder_exhausted_under_injected_memory_cap_on_cpu_fails():
    r = run_cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v2", "--set",
                "memory_cap=64KiB", "--text", "A short one. Another short one.", "--json")
    assert r.returncode == 1, r
    f = _findings(r)
    assert f["smoke.ladder"]["status"] == "fail"
    assert {x["outcome"] for x in r.json["smoke"]["ladder"]["rungs"]} <= {"oom", "error"}
    assert "output.finite" not in f  # no audio, no audio checks


def test_ladder_off_reports_the_oom_under_injected_memory_cap_on_cpu():
    r = run_cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v2", "--set",
                "memory_cap=1MiB", "--no-ladder", "--text", "Hello.", "--json")
    assert r.returncode == 1, r
    assert len(r.json["smoke"]["ladder"]["rungs"]) == 1
    assert "--no-ladder" in _findings(r)["smoke.ladder"]["summary"]


def test_half_precision_nan_fails_its_rung_and_fp32_chunks_work():
    r = run_cli("smoke", "--callable", "tests.fakes_smoke.voices:half_breaks", "--text",
                "This sentence is long enough. It will not fit in fp32.", "--json")
    assert r.returncode == 0, r
    rungs = [(x["rung"], x["outcome"], x["plan"]["precision"])
             for x in r.json["smoke"]["ladder"]["rungs"]]
    assert rungs[0] == ("as-configured", "oom", "fp32")
    assert rungs[1][:2] == ("half-precision", "broken-audio")
    assert rungs[-1][1:] == ("ok", "fp32")
    f = _findings(r)
    assert f["smoke.precision"]["status"] == "warn" and "NaN" in f["smoke.precision"]["summary"]
    assert f["output.finite"]["status"] == "ok"


def test_explicit_fp16_that_gives_nan_fails():
    r = run_cli("smoke", "--callable", "tests.fakes_smoke.voices:half_breaks", "--text",
                "Short one.", "--precision", "fp16", "--json")
    assert r.returncode == 1, r
    f = _findings(r)
    assert f["smoke.precision"]["status"] == "fail"
    assert "--precision fp32" in f["smoke.precision"]["fix"]["commands"][0]


# --- budget -------------------------------------------------------------------------------


def test_ram_budget_fit_on_cpu():
    r = run_cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v2", "--text",
                "Hello there.", "--ram-budget", "8GiB", "--budget-lengths", "20,60,120",
                "--json")
    assert r.returncode == 0, r
    bud = r.json["smoke"]["budget"]
    assert bud["kind"] == "ram" and bud["basis"] == "process peak RSS"
    peaks = [p["peak"] for p in bud["points"]]
    assert len(peaks) == 3 and peaks[-1] > peaks[0]  # memory grows with the text
    assert bud["fits"] and bud["headroom"] > 0 and bud["longest_chars"] > 120
    assert bud["fit"]["slope_per_char"] > 0
    f = _findings(r)["smoke.budget"]
    assert f["status"] == "ok" and "longest text that fits" in f["summary"]


def test_ram_budget_too_small_fails_with_a_fix():
    r = run_cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v2", "--text",
                "Hello there.", "--ram-budget", "64MiB", "--budget-lengths", "20,40",
                "--json")
    assert r.returncode == 1, r
    f = _findings(r)["smoke.budget"]
    assert f["status"] == "fail" and "does not fit 64.0 MiB" in f["summary"]
    assert f["fix"]["description"]


def test_vram_budget_without_a_gpu_is_skipped():
    r = run_cli("smoke", "--callable", "tests.fakes_smoke.voices:speak", "--text", "Hi there.",
                "--vram-budget", "8GiB", "--json")
    assert r.returncode == 0, r
    assert _findings(r)["smoke.budget"]["status"] == "skip"


# --- leak check ---------------------------------------------------------------------------


@pytest.mark.parametrize("func, verdict", [("leaky", "fail"), ("leaky_torch", "fail"),
                                           ("speak", "ok")])
def test_leak_check_catches_a_planted_leak(func, verdict):
    r = run_cli("smoke", "--callable", f"tests.fakes_smoke.voices:{func}", "--text",
                "Hello there, general.", "--repeat", "4", "--json")
    f = _findings(r)["smoke.leak"]
    assert f["status"] == verdict, f
    assert r.returncode == (1 if verdict == "fail" else 0)
    rep = r.json["smoke"]["repeat"]
    assert len(rep["runs"]) == 4
    if verdict == "fail":
        assert "does not return to its baseline" in f["summary"] and f["fix"]["commands"]


def test_reference_engine_does_not_leak():
    r = run_cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v3", "--text",
                "Tiny.", "--repeat", "3", "--json")
    assert r.returncode == 0, r
    f = _findings(r)["smoke.leak"]
    assert f["status"] == "ok" and "live tensors" in f["details"]["basis"]


# --- other findings -----------------------------------------------------------------------


def test_memory_snapshot_on_cpu_says_why_nothing_was_recorded(tmp_path):
    snap = tmp_path / "snap.pickle"
    r = run_cli("smoke", "--callable", "tests.fakes_smoke.voices:speak", "--text", "Hi there.",
                "--memory-snapshot", str(snap), "--json")
    assert r.returncode == 0, r
    f = _findings(r)["smoke.memory-snapshot"]
    assert f["status"] == "skip" and "only for CUDA" in f["summary"]
    assert not snap.exists()


@pytest.mark.parametrize("func, failing", [("wrong_type", "smoke.synthesis"),
                                           ("raises", "smoke.synthesis"),
                                           ("clipped", "output.clipping")])
def test_a_broken_engine_is_a_failed_finding(func, failing):
    r = run_cli("smoke", "--callable", f"tests.fakes_smoke.voices:{func}", "--text",
                "Hello there, general.", "--json")
    assert r.returncode == 1, r
    f = _findings(r)[failing]
    assert f["status"] == "fail" and f["fix"]["description"]
    assert "Traceback" not in r.stderr


def test_staged_callable_marks_its_own_stages():
    r = run_cli("smoke", "--callable", "tests.fakes_smoke.voices:staged", "--text",
                "Hello there, general.", "--json")
    assert r.returncode == 0, r
    assert {s["name"] for s in r.json["smoke"]["stages"]} == {"frontend", "acoustic", "vocoder"}


# --- bad input: one line, exit 2, no traceback, nothing written ---------------------------


def _bad_input_cases(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "big.txt").write_text("word " * 210_000)  # about 1 MB
    (tmp / "garbage.bin").write_bytes(bytes(range(256)) * 64)
    (tmp / "corrupt.pt").write_bytes(b"PK\x03\x04 definitely not a zip of tensors")
    (tmp / "dir.pt").mkdir()
    ref = ["--recipe", "reference-hifigan-v1"]
    return [
        ([*ref, "--text", ""], "is empty"),
        ([*ref, "--text", "   \t  "], "is empty"),
        ([*ref, "--text-file", str(tmp / "big.txt")], "a smoke test takes at most"),
        ([*ref, "--text-file", str(tmp / "garbage.bin")], "binary data"),
        ([*ref, "--text", "a\x01b"], "binary data"),
        ([*ref, "--checkpoint", str(tmp / "missing.pt")], "does not exist"),
        ([*ref, "--checkpoint", str(tmp / "corrupt.pt")], "not a readable PyTorch checkpoint"),
        ([*ref, "--checkpoint", str(tmp / "dir.pt")], "is a directory"),
        (["--engine", "tacotron9", "--text", "hi"], "Invalid value for '--engine'"),
        (["--text", "hi"], "choose a model"),
        ([*ref, "--vram-budget", "lots"], "is not a size"),
        ([*ref, "--device", "tpu"], "--device"),
        ([*ref, "--budget-lengths", "10"], "at least two"),
        ([*ref, "--precision", "fp16", "--recipe", "piper"], "runs fp32 only"),
        (["--callable", "no_such_module_xyz:speak", "--text", "hi"], "cannot import"),
        (["--callable", "not a spec", "--text", "hi"], "package.module:function"),
        (["--recipe", "no-such-recipe"], "no such recipe"),
        ([*ref, "--set", "vocoder=hifigan-v9"], "hifigan-v9"),
        ([*ref, "--out", str(tmp)], "is a directory"),
    ]


def test_bad_input_is_a_one_line_usage_error(tmp_path):
    inputs = tmp_path / "inputs"
    outputs = tmp_path / "outputs"
    inputs.mkdir()
    outputs.mkdir()
    for args, needle in _bad_input_cases(inputs):
        outs = [] if "--out" in args else ["--out", str(outputs / "x.wav")]
        r = run_cli("smoke", *args, *outs, "--html", str(outputs / "x.html"))
        assert r.returncode == 2, (args, r)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == ""
        assert list(outputs.iterdir()) == [], args  # nothing written, no temp file either


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom doctor.cli import main\ntry:\n    main(['smoke', '--help'])\n"
            "except SystemExit:\n    pass\nsys.stderr.write(' '.join(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO)
    loaded = set(proc.stderr.split())
    assert "tts_doctor.commands.smoke" in loaded and "--vram-budget" in proc.stdout
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "numpy", "scipy")}
