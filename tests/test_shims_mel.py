"""shims.mel.MelSpectrogram: shapes, log modes, dtypes, backend choice, and parity with librosa
(in a harness environment that has it) and with torchaudio (where torchaudio loads)."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tts_doctor.shims import mel as melmod
from tts_doctor.shims.mel import MelSpectrogram, melscale_fbanks

from tests.harness.envs import TORCHAUDIO_BROKEN
from tests.harness.envs_shims import SHIMS_LIBROSA
from tests.harness.source import source_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def chirp(sr: int = 22050, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * (200 + 800 * t) * t)
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def max_rel(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest error relative to the reference's peak (elementwise relative error is
    meaningless for the zeros of a filterbank)."""
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


@settings(max_examples=25, deadline=None)
@given(n_fft=st.sampled_from([16, 64, 200, 256, 400, 512]), data=st.data(),
       n_mels=st.integers(1, 64), sample_rate=st.sampled_from([8000, 16000, 22050, 24000]),
       center=st.booleans(), lead=st.sampled_from([(), (2,), (2, 3)]),
       log=st.sampled_from(melmod.LOG_MODES), power=st.sampled_from([1.0, 2.0]),
       norm=st.sampled_from([None, "slaney"]), mel_scale=st.sampled_from(["htk", "slaney"]))
def test_property_shapes_and_batches(n_fft, data, n_mels, sample_rate, center, lead, log,
                                     power, norm, mel_scale):
    win = data.draw(st.integers(max(2, n_fft // 4), n_fft))
    hop = data.draw(st.integers(1, win))
    length = data.draw(st.integers(n_fft, 3 * n_fft))
    m = MelSpectrogram(sample_rate, n_fft=n_fft, win_length=win, hop_length=hop,
                       n_mels=n_mels, center=center, log=log, power=power, norm=norm,
                       mel_scale=mel_scale)
    x = torch.randn(*lead, length)
    y = m(x)
    frames = 1 + length // hop if center else 1 + (length - n_fft) // hop
    assert y.shape == (*lead, n_mels, frames) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    if log is None:
        assert (y >= 0).all()
    if lead:
        first = m(x.reshape(-1, length)[0])
        torch.testing.assert_close(y.reshape(-1, n_mels, frames)[0], first)


def test_log_modes_are_the_documented_formulas():
    x = torch.from_numpy(chirp())
    kw = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "n_mels": 80}
    raw = MelSpectrogram(**kw)(x)
    torch.testing.assert_close(MelSpectrogram(**kw, log="log")(x),
                               torch.log(torch.clamp(raw, min=1e-5)))
    torch.testing.assert_close(MelSpectrogram(**kw, log="log-offset")(x), torch.log(raw + 1e-9))
    torch.testing.assert_close(MelSpectrogram(**kw, log="db")(x),
                               10 * torch.log10(torch.clamp(raw, min=1e-10)))
    mag = MelSpectrogram(**kw, power=1.0)(x)
    torch.testing.assert_close(MelSpectrogram(**kw, power=1.0, log="db")(x),
                               20 * torch.log10(torch.clamp(mag, min=1e-10)))
    db = MelSpectrogram(**kw, log="db", top_db=80.0)(torch.stack([x, 0.01 * x]))
    for item in db:
        assert item.max() - item.min() <= 80.0 + 1e-4


def test_half_input_is_computed_in_float32_and_half_modules_keep_exact_filters():
    x = torch.from_numpy(chirp())
    m = MelSpectrogram(22050, n_fft=1024, hop_length=256, n_mels=80, log="log")
    ref = m(x.half().float())
    out = m(x.half())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)
    m.half()  # converts the buffers, as for any module
    assert m.fb.dtype == torch.float16
    torch.testing.assert_close(m(x.half()), ref)  # recomputed from the formula, not rounded
    assert m(x.double()).dtype == torch.float64


def test_backend_here_is_pure_torch_and_says_why():
    m = MelSpectrogram()
    if melmod.importlib.util.find_spec("torchaudio") is None:
        assert (m.backend, m.backend_reason) == ("torch", "torchaudio is not installed")
    assert MelSpectrogram(backend="torch").backend == "torch"
    with pytest.raises(ValueError, match="unknown mel backend 'sox'"):
        MelSpectrogram(backend="sox")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"log": "ln"}, ValueError, "log must be one of"),
    ({"onesided": False}, ValueError, "onesided=False"),
    ({"win_length": 800}, ValueError, "win_length"),
    ({"f_min": 9000.0}, ValueError, "f_min < f_max"),
    ({"power": None}, ValueError, "power"),
    ({"norm": "area"}, ValueError, "norm must be"),
    ({"mel_scale": "bark"}, ValueError, "mel_scale must be"),
])
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        MelSpectrogram(16000, n_fft=400, **kwargs)


def test_non_float_input_is_a_type_error():
    with pytest.raises(TypeError, match="floating-point"):
        MelSpectrogram()(torch.zeros(1000, dtype=torch.int16))


def test_filterbank_rows_peak_at_the_mel_points():
    fb = melscale_fbanks(513, 0.0, 11025.0, 10, 22050, None, "htk")
    assert fb.shape == (513, 10) and float(fb.max()) <= 1.0 and float(fb.min()) == 0.0
    peaks = fb.argmax(dim=0)
    assert bool((peaks[1:] > peaks[:-1]).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu_fp32_and_fp16():
    x = torch.from_numpy(chirp())
    m = MelSpectrogram(22050, n_fft=1024, hop_length=256, n_mels=80, log="log")
    ref = m(x)
    mc = m.to("cuda")
    torch.testing.assert_close(mc(x.cuda()).cpu(), ref, rtol=1e-4, atol=1e-4)
    assert mc(x.cuda().half()).dtype == torch.float32


# --- parity: librosa (in its own environment), torchaudio (where it loads) -------------------

CONFIGS = [
    # (sample_rate, n_fft, n_mels, f_min, f_max, htk, norm): HiFi-GAN 22.05k, Whisper-like
    # 16k, KAN-TTS 24k (fmin 50) and 48k (fmax 12 kHz), plain torchaudio defaults.
    (22050, 1024, 80, 0.0, 8000.0, False, "slaney"),
    (16000, 400, 80, 0.0, 8000.0, False, "slaney"),
    (24000, 1024, 80, 50.0, 12000.0, False, "slaney"),
    (48000, 4096, 128, 0.0, 12000.0, True, "slaney"),
    (16000, 400, 128, 0.0, 8000.0, True, None),
    (22050, 2048, 64, 30.0, 11025.0, False, None),
]

LIBROSA_SCRIPT = r"""
import json, sys, warnings
import numpy as np
import librosa
warnings.simplefilter("ignore")
configs, signal_path, out_path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
x = np.load(signal_path)
out = {"version": np.array(librosa.__version__)}
for i, (sr, n_fft, n_mels, fmin, fmax, htk, norm) in enumerate(configs):
    out[f"fb{i}"] = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                        fmax=fmax, htk=htk, norm=norm, dtype=np.float32)
out["spec"] = librosa.feature.melspectrogram(
    y=x, sr=22050, n_fft=1024, hop_length=256, win_length=1024, window="hann", center=True,
    pad_mode="reflect", power=2.0, n_mels=80, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
np.savez(out_path, **out)
"""


@pytest.mark.venv
@pytest.mark.slow
def test_parity_with_librosa(make_env, tmp_path):
    venv = make_env(SHIMS_LIBROSA)
    x = chirp()
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([str(venv.python), "-c", LIBROSA_SCRIPT, json.dumps(CONFIGS),
                           str(tmp_path / "x.npy"), str(tmp_path / "ref.npz")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    ref = np.load(tmp_path / "ref.npz")
    assert str(ref["version"]) == "0.11.0"
    errors = []
    for i, (sr, n_fft, n_mels, fmin, fmax, htk, norm) in enumerate(CONFIGS):
        ours = melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr, norm,
                               "htk" if htk else "slaney").numpy().T
        errors.append(max_rel(ours, ref[f"fb{i}"]))
    # measured: 7.8e-8 of the peak at worst, 1.2e-7 elementwise (float32 rounding of the
    # same float64 formula)
    assert max(errors) <= 1e-5, errors
    m = MelSpectrogram(22050, n_fft=1024, hop_length=256, f_max=8000.0, n_mels=80,
                       norm="slaney", mel_scale="slaney", backend="torch")
    spec = m(torch.from_numpy(x)).numpy()
    assert spec.shape == ref["spec"].shape
    # measured: 1.8e-7 of the peak (both compute the STFT in float32)
    assert max_rel(spec, ref["spec"]) <= 1e-5


def _torchaudio_reason() -> str:
    loads, why = melmod.torchaudio_loads()
    return "" if loads else why


@pytest.mark.skipif(bool(_torchaudio_reason()), reason="torchaudio does not load here: "
                    + _torchaudio_reason())
@pytest.mark.parametrize("config", CONFIGS)
def test_parity_with_torchaudio(config):
    import torchaudio

    sr, n_fft, n_mels, fmin, fmax, htk, norm = config
    scale = "htk" if htk else "slaney"
    x = torch.from_numpy(chirp(sr))
    ours = MelSpectrogram(sr, n_fft=n_fft, hop_length=n_fft // 4, f_min=fmin, f_max=fmax,
                          n_mels=n_mels, norm=norm, mel_scale=scale, backend="torch")
    theirs = torchaudio.transforms.MelSpectrogram(sr, n_fft=n_fft, hop_length=n_fft // 4,
                                                  f_min=fmin, f_max=fmax, n_mels=n_mels,
                                                  norm=norm, mel_scale=scale)
    assert max_rel(ours(x).numpy(), theirs(x).numpy()) <= 1e-5
    fb = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr,
                                               norm, scale)
    assert max_rel(ours.fb.numpy(), fb.numpy()) <= 1e-5
    via = MelSpectrogram(sr, n_fft=n_fft, hop_length=n_fft // 4, f_min=fmin, f_max=fmax,
                         n_mels=n_mels, norm=norm, mel_scale=scale, backend="torchaudio")
    assert max_rel(via(x).numpy(), ours(x).numpy()) <= 1e-5


CHOOSE = """
import json, sys
import tts_doctor.shims.mel as m
if sys.argv[1] == "force-pairing":
    m.torchaudio_pairing = lambda: (True, "pairing forced by the test")
mel = m.MelSpectrogram(22050, n_fft=1024, hop_length=256, n_mels=80)
y = mel(__import__("torch").zeros(1, 22050))
print(json.dumps([mel.backend, mel.backend_reason, list(y.shape),
                  "torchaudio" in sys.modules]))
"""


@pytest.mark.venv
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["metadata", "force-pairing"])
def test_broken_torchaudio_falls_back_to_torch_without_importing_it(make_env, mode):
    """torch 2.13 CPU with torchaudio 2.11 (a CUDA build; `import torchaudio` fails). By
    metadata the pair is refused without importing torchaudio; with the version check forced
    to pass (simulated pairing), the subprocess check catches the failing import."""
    venv = make_env(TORCHAUDIO_BROKEN)
    env = {**os.environ, "PYTHONPATH": source_path()}
    proc = subprocess.run([str(venv.python), "-c", CHOOSE, mode], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    backend, reason, shape, imported = json.loads(proc.stdout.strip().splitlines()[-1])
    assert backend == "torch" and shape == [1, 80, 87] and imported is False
    if mode == "metadata":
        assert "torchaudio 2.11.0 is built for another torch release" in reason
    else:
        assert reason.startswith("torchaudio does not load:") and (
            "libc10_cuda" in reason or "undefined symbol" in reason or "Error" in reason)
