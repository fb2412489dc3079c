"""Generated documentation cannot drift, every failure family is detected by a probe (or has a
written reason why not), and `tts-doctor explain` recognises every family's own signature."""

from __future__ import annotations

from pathlib import Path

import pytest
from tts_doctor.families import FAMILIES, match
from tts_doctor.registry import all_probes

REPO = Path(__file__).resolve().parents[1]


def test_generated_docs_are_up_to_date(cli):
    r = cli("docs", "--check", "--out-dir", str(REPO / "docs"))
    assert r.returncode == 0, r.stderr + "\nrun `tts-doctor docs` (or `make docs`) and commit"


def test_every_builtin_probe_has_a_docstring_and_known_families():
    ids = {f.id for f in FAMILIES}
    for spec in all_probes():
        if not spec.func.__module__.startswith("tts_doctor.probes"):
            continue
        assert (spec.func.__doc__ or "").strip(), f"{spec.id} has no docstring"
        assert set(spec.families) <= ids, f"{spec.id}: unknown family {spec.families}"


def test_every_family_has_a_probe_or_a_written_reason():
    covered = {fam for s in all_probes() for fam in s.families}
    reasons = (REPO / "docs" / "probes-coverage.md").read_text()
    for fam in FAMILIES:
        assert fam.id in covered or f"| {fam.id} |" in reasons, f"{fam.id} is not covered"


@pytest.mark.parametrize("family", [f for f in FAMILIES if f.patterns], ids=lambda f: f.id)
def test_explain_recognises_each_signature(family):
    assert family in match(family.signature)


def test_explain_cli(cli):
    r = cli("explain", "RuntimeError: CUDA error: no kernel image is available for execution "
                       "on the device")
    assert r.returncode == 0
    assert "C3 GPU architecture" in r.stdout
    r = cli("explain", "everything is fine")
    assert r.returncode == 1
    r = cli("explain", "")
    assert r.returncode == 2
