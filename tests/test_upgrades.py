"""Fixes name versions that exist (doctor/upgrades.py): "upgrade X" only to a release known to
be without the problem and newer than the installed one; otherwise the fix says
"no fixed release known: shim, pin or patch". A case of each kind, and a drift test over the
probe modules (no blind `--upgrade` anywhere)."""

from __future__ import annotations

import re
from pathlib import Path

from tts_doctor import dists, upgrades
from tts_doctor.probes import numba as numba_probes

from tests.conftest import REPO


def test_an_upgrade_is_offered_only_to_a_known_newer_fixed_release():
    known = upgrades.Upgrade("librosa", "0.9.2", "0.10.2")
    assert known.available
    assert known.command() == f"{dists.python()} -m pip install 'librosa>=0.10.2'"
    assert known.words() == "upgrade librosa to 0.10.2 or newer"
    # installed already is that release or newer: the problem is not one an upgrade removes
    same = upgrades.Upgrade("librosa", "0.10.2", "0.10.2")
    assert not same.available and same.command() is None
    assert same.words() == "librosa 0.10.2: no fixed release known: shim, pin or patch"
    # nothing known
    unknown = upgrades.upgrade("coqui-tts", "0.27.0", {"librosa": "0.10.2"})
    assert unknown.fixed_in is None and unknown.command() is None
    assert upgrades.NO_FIXED_RELEASE in unknown.words()
    # a plan of several: only the known one becomes a command, each package once
    plan = upgrades.plan([known, unknown, upgrades.Upgrade("Librosa", "0.9.2", "0.10.2")])
    assert plan.commands == (known.command(),)
    assert plan.words() == ("upgrade librosa to 0.10.2 or newer; for coqui-tts 0.27.0: "
                            "no fixed release known: shim, pin or patch")


def test_numba_that_predates_the_installed_numpy_names_a_numba_only_when_one_is_known():
    # the dev venv's real NumPy (2.4): newer than any numba release the table knows, so
    # numba's "needs NumPy 2.2 or less" gets a pin, not a blind "upgrade numba"
    np_line = ".".join(map(str, dists.release(dists.version("numpy"))[:2]))
    assert np_line not in numba_probes.NUMBA_FOR_NUMPY
    fix = numba_probes.import_fix(f"ImportError: Numba needs NumPy 2.2 or less. Got NumPy "
                                  f"{np_line}.")
    assert fix.commands == (f"{dists.python()} -m pip install 'numpy<2.3'",)
    assert upgrades.NO_FIXED_RELEASE in fix.description
    assert "upgrade numba" not in fix.description


def test_no_probe_writes_a_blind_upgrade():
    # `pip install --upgrade X` / `-U X` promise a newer X that no longer has the problem;
    # only doctor/upgrades.py may write an upgrade, and only to a release it can name
    bad = []
    for path in sorted((REPO / "doctor" / "probes").glob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""["'](?:--upgrade|-U)\b""", line) or \
                    re.search(r"extra=f?\"[^\"]*--upgrade", line):
                bad.append(f"{path.name}:{n}: {line.strip()}")
    assert not bad, "use tts_doctor.upgrades:\n" + "\n".join(bad)


def test_the_probe_reference_carries_no_blind_upgrade():
    text = Path(REPO / "docs" / "probes.md").read_text(encoding="utf-8")
    assert "--upgrade" not in text
