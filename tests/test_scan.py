"""The usage scanner and the ELF reader that several probe families rely on."""

from __future__ import annotations

import pytest
from tts_doctor import elf, scan
from tts_doctor.scan import Pattern, guarded_lines, scan_source

SIGNAL = [Pattern("scipy.signal", n) for n in ("hann", "kaiser", "hamming")]


@pytest.mark.parametrize("source, hits", [
    (b"import scipy.signal as sps\nsps.hann(4)\n", [(2, "scipy.signal.hann")]),
    (b"from scipy import signal\nsignal.kaiser(4, 2)\n", [(2, "scipy.signal.kaiser")]),
    (b"from scipy.signal import (\n    hamming,\n    hann as h,\n)\n",
     [(1, "scipy.signal.hamming"), (1, "scipy.signal.hann")]),
    (b"import scipy\nscipy.signal.hann(3)\n", [(2, "scipy.signal.hann")]),
    (b'"""scipy.signal.hann is gone"""\nimport scipy.signal\n', []),  # a docstring is no use
    (b"import numpy as signal\nsignal.hann(3)\n", []),               # another `signal`
    (b"def broken(:\n scipy.signal.hann\n", []),                       # unparseable: no hit
])
def test_uses_are_resolved_through_imports_and_aliases(source, hits):
    assert scan_source(source, SIGNAL) == hits


def test_importing_a_removed_submodule_is_a_use():
    pats = [Pattern("torchaudio", "sox_effects")]
    assert scan_source(b"import torchaudio.sox_effects\n", pats) == \
        [(1, "torchaudio.sox_effects")]
    assert scan_source(b"from torchaudio.sox_effects import apply_effects_tensor\n", pats) == \
        [(1, "torchaudio.sox_effects")]


def test_guarded_lines_cover_fallbacks_only():
    source = (b"try:\n    from scipy.signal import hann\n"
              b"except ImportError:\n    from scipy.signal.windows import hann\n"
              b"x = hann(3) if hasattr(signal, 'hann') else None\n"
              b"y = signal.hann(4)\n")
    lines = guarded_lines(source)
    assert {2, 4, 5} <= lines and 6 not in lines


def test_scan_results_are_cached_per_distribution(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_DOCTOR_CACHE", str(tmp_path))
    first = scan.find_usages([Pattern("numba", "njit")])
    files = list((tmp_path / "scan").glob("*.json"))
    assert files, "nothing cached"
    second = scan.find_usages([Pattern("numba", "njit")])
    assert first == second


def test_elf_reads_needed_libraries_and_resolves_them():
    import numpy

    so = elf.extension_files(numpy.__path__[0])[0]
    info = elf.read(so)
    assert info.bits == 64 and info.needed
    res = elf.resolve(so)
    assert res.ok, res.missing
    with pytest.raises(elf.NotELF):
        elf.read(__file__)
