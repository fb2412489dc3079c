"""shims.resample: lengths, dtypes, axes, errors, measured quality, and the scipy drop-in."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st
from tts_doctor.shims import resample as rs
from tts_doctor.shims.resample import output_length, resample, signal_resample

BACKENDS = rs.available_backends()
RATES = [(44100, 16000), (22050, 24000), (48000, 24000), (16000, 44100), (8000, 22050),
         (24000, 22050), (3, 2)]


def tone(sr: float, freq: float, seconds: float = 1.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)


def interior(n: int) -> slice:
    return slice(n // 10, n - n // 10)


def tone_snr_db(orig: int, target: int, freq: float, backend: str, quality: str) -> float:
    y = resample(tone(orig, freq), orig, target, backend=backend, quality=quality)
    ref = 0.5 * np.sin(2 * np.pi * freq * np.arange(len(y)) / target)
    s = interior(len(y))
    return 10 * np.log10(np.sum(ref[s] ** 2) / np.sum((y[s] - ref[s]) ** 2))


def alias_rejection_db(orig: int, target: int, freq: float, backend: str,
                       quality: str) -> float:
    """Input power over output power for a tone above the new Nyquist (it should vanish)."""
    x = tone(orig, freq)
    y = resample(x, orig, target, backend=backend, quality=quality)
    return 10 * np.log10(np.mean(x ** 2) / np.mean(y[interior(len(y))] ** 2))


def test_all_backends_installed_in_the_development_environment():
    assert BACKENDS == ["soxr", "scipy", "resampy"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("orig, target", RATES)
@pytest.mark.parametrize("n", [1, 2, 7, 11, 1000, 1001, 4410])
def test_length_is_the_exact_ceiling_for_every_backend(backend, orig, target, n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    y = resample(x, orig, target, backend=backend)
    assert len(y) == math.ceil(n * target / orig) == output_length(n, orig, target)
    assert y.dtype == np.float32


def test_rounding_rule_is_exact_rational_arithmetic():
    # 44100 -> 16000 is 160/441: 441 samples give exactly 160, one more gives 161
    assert output_length(441, 44100, 16000) == 160
    assert output_length(442, 44100, 16000) == 161
    assert output_length(3, 2, 3) == 5  # 4.5 -> 5
    assert output_length(11, 3, 2) == 8  # 7.33 -> 8 (soxr alone gives 7, resampy 7)
    assert output_length(10, 22050.0, 24000.0) == 11


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3000), rates=st.sampled_from([*RATES, (11025, 16000), (96000, 44100)]),
       dtype=st.sampled_from([np.float32, np.float64]), ndim=st.integers(1, 3),
       data=st.data(), backend=st.sampled_from(["soxr", "scipy"]))
def test_property_shape_dtype_axis(n, rates, dtype, ndim, data, backend):
    orig, target = rates
    axis = data.draw(st.integers(-ndim, ndim - 1))
    shape = [2, 3][: ndim - 1]
    shape.insert(axis % ndim, n)
    x = np.random.default_rng(n).standard_normal(shape).astype(dtype)
    y = resample(x, orig, target, axis=axis, backend=backend)
    expect = list(shape)
    expect[axis % ndim] = math.ceil(n * target / orig)
    assert list(y.shape) == expect and y.dtype == dtype and np.isfinite(y).all()
    # N-D is the same as resampling each 1-D line on its own
    lines = np.moveaxis(x, axis, -1).reshape(-1, n)
    one = np.stack([resample(line, orig, target, backend=backend) for line in lines])
    np.testing.assert_allclose(np.moveaxis(y, axis, -1).reshape(one.shape), one,
                               rtol=1e-5, atol=1e-5 if dtype == np.float32 else 1e-10)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 2000), rates=st.sampled_from(RATES),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_property_resampy_lengths(n, rates, dtype):
    orig, target = rates
    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    y = resample(x, orig, target, backend="resampy", quality="kaiser_fast")
    assert len(y) == math.ceil(n * target / orig) and y.dtype == dtype


def test_equal_rates_return_a_copy():
    x = np.ones(10, np.float32)
    y = resample(x, 16000, 16000)
    assert y is not x and np.array_equal(x, y)


# Measured here (python /tmp quality script, 1 s tones, 10% trimmed at each end):
# tone SNR dB (44.1k->16k 1 kHz / 22.05k->24k 3 kHz / 48k->24k 5 kHz):
#   soxr hq 133.3/131.2/131.9, soxr vhq 185.2/180.8/215.8, soxr lq 109.8/114.8/116.2,
#   resampy kaiser_best 89.1/140.9/156.8, kaiser_fast 50.9/102.8/110.7,
#   scipy mq (resample_poly's default) 59.2/57.5/73.6, scipy hq 109.3/90.5/110.2,
#   scipy vhq 120.1/117.2/187.7.
# Thresholds sit a few dB under the worst measured case of each.
SNR_FLOOR = {("soxr", "hq"): 125, ("soxr", "vhq"): 170, ("soxr", "lq"): 105,
             ("resampy", "kaiser_best"): 85, ("resampy", "kaiser_fast"): 47,
             ("scipy", "mq"): 55, ("scipy", "hq"): 86, ("scipy", "vhq"): 112}
# alias rejection dB (48k->16k 12 kHz / 48k->16k 9 kHz / 44.1k->16k 10 kHz):
#   soxr hq 236.8/146.5/142.8, vhq 199.4/191.4/199.0, lq 130.5/109.4/130.4,
#   resampy kaiser_best 96.9/89.8/106.0, kaiser_fast 74.6/67.9/70.5,
#   scipy mq 67.8/30.6/57.3 (resample_poly's cut-off sits at the new Nyquist: a tone just
#   above it leaks), scipy hq 98.8/90.9/109.5, scipy vhq 136.1/109.1/125.6.
ALIAS_FLOOR = {("soxr", "hq"): 135, ("soxr", "vhq"): 185, ("soxr", "lq"): 105,
               ("resampy", "kaiser_best"): 85, ("resampy", "kaiser_fast"): 63,
               ("scipy", "mq"): 27, ("scipy", "hq"): 87, ("scipy", "vhq"): 105}


@pytest.mark.parametrize("backend, quality", list(SNR_FLOOR))
def test_tone_snr(backend, quality):
    worst = min(tone_snr_db(44100, 16000, 1000, backend, quality),
                tone_snr_db(22050, 24000, 3000, backend, quality),
                tone_snr_db(48000, 24000, 5000, backend, quality))
    assert worst >= SNR_FLOOR[(backend, quality)], worst


@pytest.mark.parametrize("backend, quality", list(ALIAS_FLOOR))
def test_alias_rejection(backend, quality):
    worst = min(alias_rejection_db(48000, 16000, 12000, backend, quality),
                alias_rejection_db(48000, 16000, 9000, backend, quality),
                alias_rejection_db(44100, 16000, 10000, backend, quality))
    assert worst >= ALIAS_FLOOR[(backend, quality)], worst


def test_float32_keeps_float32_accuracy():
    y = resample(tone(44100, 1000).astype(np.float32), 44100, 16000)
    ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(y)) / 16000)
    s = interior(len(y))
    assert y.dtype == np.float32
    assert np.max(np.abs(y[s] - ref[s])) < 1e-5


# --- errors: clear, never a pass-through ---------------------------------------------------

def test_seed_invalid_filter_sinc_best_is_a_clear_error_never_the_input():
    """The seed recipe called resampy with filter='sinc_best' (not a resampy filter), caught
    the error and returned the input: audio at the wrong rate, silently."""
    x = tone(22050, 440).astype(np.float32)
    for backend in ("resampy", "auto"):
        with pytest.raises(ValueError, match="sinc_best") as info:
            resample(x, 22050, 16000, backend=backend, quality="sinc_best")
        assert "kaiser_best" in str(info.value)  # the message lists the valid names


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "sox"}, "unknown resample backend 'sox'"),
    ({"backend": "soxr", "quality": "kaiser_best"}, "valid: vhq, hq"),
    ({"backend": "scipy", "quality": "qq"}, "for resample backend 'scipy'"),
    ({"quality": "best"}, "unknown resample quality"),
])
def test_unknown_backend_or_quality(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resample(np.zeros(100, np.float32), 2, 1, **kwargs)


@pytest.mark.parametrize("x, orig, target, match", [
    (np.array([0.0, np.nan, 1.0]), 2, 1, "NaN or infinite"),
    (np.array([0.0, np.inf]), 2, 1, "NaN or infinite"),
    (np.zeros(0, np.float32), 2, 1, "empty"),
    (np.zeros((3, 0)), 2, 1, "empty"),
    (np.zeros(10), 0, 1, "orig_sr must be a positive"),
    (np.zeros(10), 2, -16000, "target_sr must be a positive"),
    (np.zeros(10), float("nan"), 1, "orig_sr"),
    (np.zeros(10), 2, True, "target_sr"),
    (np.zeros(10, np.int16), 2, 1, "float32 or float64"),
    (np.float64(1.0), 2, 1, "scalar"),
])
def test_bad_input_is_a_value_error(x, orig, target, match):
    with pytest.raises(ValueError, match=match):
        resample(x, orig, target)


def test_axis_out_of_range():
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        resample(np.zeros((2, 10)), 2, 1, axis=2)


def test_polyphase_refuses_a_ratio_it_cannot_handle_and_says_what_to_use():
    with pytest.raises(ValueError, match="use backend='soxr'"):
        resample(np.zeros(100), 44100.5, 16000, backend="scipy")
    assert len(resample(np.zeros(100), 44100.5, 16000, backend="soxr")) == 37


def test_backend_failure_is_a_runtime_error_naming_it(monkeypatch):
    import soxr

    def broken(*args, **kwargs):
        raise MemoryError("no memory")

    monkeypatch.setattr(soxr, "resample", broken)
    with pytest.raises(RuntimeError, match="with soxr failed: MemoryError"):
        resample(np.zeros(100, np.float32), 2, 1, backend="soxr")


# --- the drop-in for scipy.signal.resample -------------------------------------------------

def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signature_is_scipys():
    assert _params(signal_resample) == _params(scipy.signal.resample)


def test_dropin_returns_what_scipy_returns():
    x = np.random.default_rng(0).standard_normal((4, 1000))
    for args, kwargs in [((x, 731), {}), ((x, 731), {"axis": 1}), ((x[0], 2000), {}),
                         ((x.astype(np.float32), 500), {"axis": -1})]:
        ours, theirs = signal_resample(*args, **kwargs), scipy.signal.resample(*args, **kwargs)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    t = np.arange(1000) * 0.01 + 3.0
    y, new_t = signal_resample(x[0], 731, t=t)
    y2, t2 = scipy.signal.resample(x[0], 731, t=t)
    assert y.shape == y2.shape
    np.testing.assert_allclose(new_t, t2, rtol=1e-12)
    ints = signal_resample(np.arange(100, dtype=np.int16), 50)
    assert ints.dtype == scipy.signal.resample(np.arange(100, dtype=np.int16), 50).dtype


def test_dropin_agrees_with_the_fft_method_inside_the_signal():
    """FFT resampling treats the signal as periodic; band-limited resampling as silence
    outside it. With tapered edges the two must agree."""
    n = 4801  # 4801 = 4801 (prime): the FFT method's slow case
    x = tone(48000, 997, n / 48000) * scipy.signal.windows.tukey(n, 0.2)
    ours, theirs = signal_resample(x, 1600), scipy.signal.resample(x, 1600)
    assert np.max(np.abs(ours - theirs)) < 1e-3


@pytest.mark.parametrize("kwargs", [{"window": "hann"}, {"domain": "freq"}])
def test_dropin_forwards_fft_semantics_to_scipy(kwargs):
    x = np.random.default_rng(1).standard_normal(256)
    if kwargs.get("domain") == "freq":
        x = np.fft.fft(x)
    np.testing.assert_array_equal(signal_resample(x, 100, **kwargs),
                                  scipy.signal.resample(x, 100, **kwargs))


def test_dropin_forwards_complex_and_nonfinite_input():
    z = np.exp(1j * np.linspace(0, 10, 300))
    np.testing.assert_array_equal(signal_resample(z, 100), scipy.signal.resample(z, 100))
    bad = np.array([1.0, np.nan, 2.0, 3.0])
    assert np.isnan(signal_resample(bad, 2)).all()  # what SciPy does, not an exception


def test_patch_marks_and_unpatch_restores():
    import types

    fake = types.ModuleType("scipy.signal")
    fake.resample = scipy.signal.resample
    assert rs.patch(fake) == ["resample"]
    assert fake.resample.__tts_doctor_shim__ == "resample"
    assert fake.resample.__wrapped__ is scipy.signal.resample
    assert rs.patch(fake) == []  # idempotent
    assert fake.resample(np.zeros(100), 50).shape == (50,)
    assert rs.unpatch(fake) == ["resample"] and fake.resample is scipy.signal.resample
