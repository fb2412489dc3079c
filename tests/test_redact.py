"""Redaction rules on their own (the end-to-end check is in test_report_contract)."""

from __future__ import annotations

import pytest
from tts_doctor.redact import Redactor, environment


@pytest.mark.parametrize("text, secret", [
    ("pip install -i https://user:hunter22@host/simple x", "hunter22"),
    ("git+https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/a/b", "ghp_abcdefghij"),
    ("https://hub.example/file?token=abcdef123456&x=1", "abcdef123456"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ("aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE"),
    ("password=correcthorse battery", "correcthorse"),
    ("hf_AbCdEfGhIjKlMnOpQrStUv was logged", "hf_AbCdEfGhIjKlMnOpQrStUv"),
    ("sk-proj-abcdefghijklmnopqrstuvwx in a log", "sk-proj-abcdefghij"),
])
def test_patterns_are_scrubbed(text, secret):
    assert secret not in Redactor({}).text(text)


def test_values_of_secret_named_variables_are_scrubbed_anywhere():
    red = Redactor({"MY_TOKEN": "opaque-value-42", "HOME": "/root"})
    assert red.text("cmd --x opaque-value-42") == "cmd --x ***"
    assert red.data({"k": ["opaque-value-42"]}) == {"k": ["***"]}
    assert red.text("/root/x") == "/root/x"  # not a secret name, not scrubbed


def test_environment_is_allowlisted():
    env = environment({"CUDA_HOME": "/usr/local/cuda", "AWS_SECRET_ACCESS_KEY": "x" * 20,
                       "TTS_DOCTOR_TOKEN": "abcdefgh", "RANDOM": "1"})
    assert env == {"CUDA_HOME": "/usr/local/cuda", "TTS_DOCTOR_TOKEN": "***"}


def test_folders_named_with_a_hash_suffix_stay_readable():
    """Venvs, cache entries and build folders carry content hashes: not secrets."""
    from tts_doctor.redact import Redactor

    r = Redactor(environ={})
    for path in ("/ci/.cache/test-envs/ort-gpu-9a3684d0fbd6/bin/python",
                 "/ci/.cache/test-envs/doctor-pipx-3ff2e790e6ca",
                 "/ci/.cache/test-envs/piper-no-ort-a25c69d6d2fc/bin/python",
                 "/root/.cache/pypoetry/virtualenvs/tts-app-Xy12AbCd-py3.11/bin/python"):
        assert r.text(path) == path
    # a random token is still masked, also when it sits after a word
    assert "***" in r.text("/srv/models/token-Zk3q9XvB7pLm2RtY8wQe4NcA")
