"""A real, healthy Kokoro stack (kokoro 0.9.4 from PyPI with what it pulls: torch 2.13 CPU,
transformers 5, misaki 0.9.4 with spaCy 3.8 and phonemizer-fork, espeakng-loader; about 90
distributions). Verdicts must match what happens when the deployment runs: the closure import
really loads kokoro; phonemizer finds espeak-ng through espeakng-loader because misaki sets
the library up when it is imported (no false `fail`); the one real gap is the spaCy model
misaki downloads at first use."""

from __future__ import annotations

import pytest

from tests.harness.venvs import EnvSpec

KOKORO = EnvSpec("kokoro", steps=(("install", "kokoro==0.9.4"),))

pytestmark = [pytest.mark.venv, pytest.mark.slow]


@pytest.fixture(scope="module")
def report(make_env, tmp_path_factory):
    venv = make_env(KOKORO)
    cwd = tmp_path_factory.mktemp("kokoro")
    return venv, cwd, None


def test_the_kokoro_stack_passes_with_only_the_spacy_model_to_prefetch(cli, report):
    venv, cwd, _ = report
    r = cli("check", "--json", "--python", str(venv.python), env={
        "TTS_DOCTOR_CACHE": str(cwd / "cache")}, cwd=cwd, timeout=900)
    bad = {f["id"]: f["summary"] for f in r.json["findings"]
           if f["status"] in ("fail", "error")}
    assert bad == {}, bad
    assert r.returncode == 0, r
    offline = r.finding("model.offline-import")
    assert offline["status"] == "ok", offline
    assert "kokoro" in offline["details"]["entries"]
    espeak = r.finding("frontend.espeak")
    assert espeak["status"] == "ok", espeak
    assert "espeakng-loader" in espeak["summary"]
    spacy = r.finding("frontend.spacy-model")
    assert spacy["status"] == "warn"
    assert spacy["fix"]["commands"] == [f"{venv.python} -m spacy download en_core_web_sm"]


# kokoro-onnx 0.6.1, the ONNX port (onnxruntime, phonemizer, espeakng-loader, numpy): its
# tokenizer points phonemizer at the bundled espeak-ng when kokoro_onnx is imported
KOKORO_ONNX = EnvSpec("kokoro-onnx", steps=(("install", "kokoro-onnx==0.6.1"),))


def test_kokoro_onnx_is_a_known_stack_and_its_espeak_setup_counts(cli, make_env, tmp_path):
    # before kokoro_onnx was a known stack, no entry point was known: frontend.espeak warned
    # that nothing showed its espeak-ng set-up runs
    venv = make_env(KOKORO_ONNX)
    r = cli("check", "--json", "--python", str(venv.python), env={
        "TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r
    bad = {f["id"]: f["summary"] for f in r.json["findings"] if f["status"] in
           ("warn", "fail", "error")}
    assert bad == {}, bad
    entry = r.finding("model.entry-import")
    assert entry["status"] == "ok" and entry["details"]["roles"] == {
        "kokoro_onnx": "stack:kokoro_onnx"}, entry
    espeak = r.finding("frontend.espeak")
    assert espeak["status"] == "ok" and "kokoro_onnx/tokenizer.py" in espeak["summary"], espeak
