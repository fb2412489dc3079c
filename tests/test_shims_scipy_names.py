"""shims.scipy_names and the in-process hooks (shims.activate), on the development SciPy 1.17,
which lacks every removed name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.signal
import scipy.signal.windows
from tts_doctor.shims import scipy_names

REMOVED_113 = scipy_names.SIGNAL_WINDOWS_UNTIL_1_13


@pytest.fixture
def patched_signal():
    """scipy.signal and scipy.integrate of this process, patched, and restored afterwards."""
    added = {m: scipy_names.patch(m) for m in (scipy.signal, scipy.integrate, scipy.linalg)}
    try:
        yield added
    finally:
        for m in added:
            scipy_names.unpatch(m)


def test_this_scipy_lacks_the_names():
    assert not any(hasattr(scipy.signal, n) for n in ("hann", "kaiser", "hanning"))
    assert not any(hasattr(scipy.integrate, n) for n in ("simps", "trapz", "cumtrapz"))


def test_every_window_is_restored_with_a_warning_naming_its_home(patched_signal):
    expected = set(scipy.signal.windows.__all__) - {"get_window"}
    assert expected | {"hanning"} <= set(patched_signal[scipy.signal])
    assert set(REMOVED_113) <= expected
    for name in sorted(expected):
        fn = getattr(scipy.signal, name)
        assert fn.__tts_doctor_shim__ == "scipy_names"
        assert fn.__wrapped__ is getattr(scipy.signal.windows, name)
        assert fn.__name__ == name and fn.__module__ == "scipy.signal"
    with pytest.warns(DeprecationWarning, match=r"scipy.signal.hann .* scipy.signal.windows"
                                                r".hann") as record:
        w = scipy.signal.hann(1024)
    assert len(record) == 1
    np.testing.assert_array_equal(w, scipy.signal.windows.hann(1024))
    with pytest.warns(DeprecationWarning, match="windows.hann"):
        np.testing.assert_array_equal(scipy.signal.hanning(16, sym=False),
                                      scipy.signal.windows.hann(16, sym=False))
    with pytest.warns(DeprecationWarning, match="windows.kaiser"):
        np.testing.assert_array_equal(scipy.signal.kaiser(64, 8.6),
                                      scipy.signal.windows.kaiser(64, 8.6))
    with pytest.warns(DeprecationWarning, match="windows.gaussian"):
        np.testing.assert_array_equal(scipy.signal.gaussian(51, std=7),
                                      scipy.signal.windows.gaussian(51, std=7))


def test_from_import_works_once_patched(patched_signal):
    from scipy.signal import kaiser

    with pytest.warns(DeprecationWarning):
        assert kaiser(8, 5.0).shape == (8,)


def test_integrate_forwards_adapt_the_old_signatures(patched_signal):
    y, x = np.array([1.0, 2.0, 4.0, 8.0, 9.0]), np.array([0.0, 0.5, 1.5, 2.0, 3.0])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert scipy.integrate.trapz(y, x) == scipy.integrate.trapezoid(y, x)
        # simpson made x keyword-only: the old positional call must still work
        assert scipy.integrate.simps(y, x) == scipy.integrate.simpson(y, x=x)
        np.testing.assert_array_equal(scipy.integrate.cumtrapz(y, x, initial=0),
                                      scipy.integrate.cumulative_trapezoid(y, x, initial=0))
    homes = [str(w.message) for w in record]
    assert [w.category for w in record] == [DeprecationWarning] * 3
    assert "scipy.integrate.trapezoid" in homes[0] and "scipy.integrate.simpson" in homes[1]
    assert "cumulative_trapezoid" in homes[2]
    with pytest.raises(TypeError, match="even"), pytest.warns(DeprecationWarning):
        scipy.integrate.simps(y, x, even="avg")


def test_linalg_names_forward_to_numpy(patched_signal):
    with pytest.warns(DeprecationWarning, match="numpy.tril"):
        np.testing.assert_array_equal(scipy.linalg.tril(np.ones((3, 3))),
                                      np.tril(np.ones((3, 3))))


def test_existing_names_are_never_replaced():
    fake = types.ModuleType("scipy.signal")

    def hann(m):
        return "the module's own"

    fake.hann = hann
    added = scipy_names.patch(fake)
    assert fake.hann is hann and "hann" not in added and "kaiser" in added
    assert set(scipy_names.unpatch(fake)) == set(added) and fake.hann is hann
    assert not hasattr(fake, "kaiser")


def test_missing_reports_absent_and_shimmed(patched_signal):
    fake = types.ModuleType("scipy.integrate")
    assert set(scipy_names.missing(fake)) == {"simps", "trapz", "cumtrapz"}
    assert set(scipy_names.missing(scipy.integrate)) == {"simps", "trapz", "cumtrapz"}


def _run(code: str, **env: str) -> dict:
    full = {**os.environ, **env}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


ACTIVATE_FIRST = """
import json, sys, warnings
warnings.simplefilter("ignore")
from tts_doctor import shims
before = shims.activate()                  # the default: scipy_names only
assert "scipy" not in sys.modules          # activating imports nothing heavy
from scipy.signal import kaiser, hann      # patched on import, before the from-import
import scipy.integrate, scipy.signal
out = {"before": before, "kaiser": kaiser.__tts_doctor_shim__,
       "trapz": scipy.integrate.trapz([1, 2]).item(),
       "resample": getattr(scipy.signal.resample, "__tts_doctor_shim__", None),
       "status": shims.status()}
shims.activate(["resample"])               # the opt-in, only when named
out["opted"] = scipy.signal.resample.__tts_doctor_shim__
out["removed"] = shims.deactivate()
out["after"] = [hasattr(scipy.signal, "hann"), getattr(scipy.signal.resample,
                "__tts_doctor_shim__", None)]
print(json.dumps(out))
"""


def test_activate_patches_on_import_and_deactivate_undoes_it():
    out = _run(ACTIVATE_FIRST)
    assert out["before"]["active"] and out["before"]["patched"] == {}
    assert out["kaiser"] == "scipy_names" and out["trapz"] == 1.5
    assert out["resample"] is None and out["opted"] == "resample"
    assert out["status"]["source"] == "activate"
    assert {"hann", "kaiser"} <= set(out["status"]["patched"]["scipy.signal"])
    assert "resample" not in out["status"]["patched"]["scipy.signal"]
    assert out["status"]["patched"]["scipy.integrate"] == ["cumtrapz", "simps", "trapz"]
    assert "scipy.signal.hann" in out["removed"] and "scipy.signal.resample" in out["removed"]
    assert out["after"] == [False, None]


ACTIVATE_LATE = """
import json, scipy.signal
from tts_doctor import shims
shims.activate(["scipy_names"])     # scipy.signal already imported: patched now
print(json.dumps([hasattr(scipy.signal, "hann"),
                  getattr(scipy.signal.resample, "__tts_doctor_shim__", None)]))
"""


def test_activate_after_import_patches_at_once_and_only_what_was_asked():
    assert _run(ACTIVATE_LATE) == [True, None]


def test_disabled_by_environment_variable():
    assert _run(ACTIVATE_LATE, TTS_DOCTOR_SHIMS="0") == [False, None]


def test_activate_rejects_unknown_names():
    from tts_doctor import shims

    with pytest.raises(ValueError, match="unknown hooked shim"):
        shims.activate(["scipy_nmaes"])
    with pytest.raises(ValueError, match=r"from tts_doctor\.shims\.mel import MelSpectrogram"):
        shims.activate(["mel"])
