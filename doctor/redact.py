"""Redaction: reports get pasted into public issue trackers, so secrets never reach them.

Two rules. Environment variables enter a report only from an allowlist (CUDA_*, PYTORCH_*,
HF_HOME...). And every string of every report, in every format, is scrubbed: the values of
secret-looking variables of this process, credentials inside URLs, secret query parameters,
and well-known token shapes (Hugging Face, GitHub, OpenAI-style, AWS, Slack, GitLab, bearer).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

ALLOWED_NAMES = frozenset({
    "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HUGGINGFACE_HUB_CACHE",
    "TRANSFORMERS_CACHE", "TRANSFORMERS_OFFLINE", "MODELSCOPE_CACHE", "MODELSCOPE_DOMAIN",
    "TORCH_HOME", "XDG_CACHE_HOME", "HOME", "LD_LIBRARY_PATH", "LD_PRELOAD", "PATH",
    "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
    "NO_COLOR", "CI", "GITHUB_ACTIONS", "LANG", "LC_ALL",
})
ALLOWED_PREFIXES = ("CUDA_", "NVIDIA_", "PYTORCH_", "TORCH_", "NUMBA_", "ORT_", "CUDNN_",
                    "NCCL_", "TTS_DOCTOR_")

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH|SESSION|COOKIE",
    re.IGNORECASE)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host  ->  scheme://***@host
    (re.compile(r"(?P<s>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@"), r"\g<s>" + MASK + "@"),
    # ?token=...&key=...
    (re.compile(r"(?P<k>[?&;](?:access_?token|token|api_?key|key|password|passwd|secret|sig|"
                r"signature|auth|X-Amz-Signature|X-Amz-Credential)=)[^&#\s\"']+",
                re.IGNORECASE), r"\g<k>" + MASK),
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MASK),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), MASK),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{16,}"), MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), MASK),
    (re.compile(r"(?P<b>\bBearer\s+)[A-Za-z0-9._~+/-]{8,}=*", re.IGNORECASE), r"\g<b>" + MASK),
    # password=..., token: ... in free text (log lines, command output)
    (re.compile(r"(?P<k>\b(?:password|passwd|pwd|secret|token|api_key)\s*[=:]\s*)"
                r"[^\s,;\"']{4,}", re.IGNORECASE), r"\g<k>" + MASK),
]


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    values = {v for k, v in environ.items() if is_secret_name(k) and len(v) >= 4}
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Scrubs strings; built once per report from the process environment."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.secrets = _secret_values(os.environ if environ is None else environ)

    def text(self, s: str) -> str:
        for value in self.secrets:
            if value in s:
                s = s.replace(value, MASK)
        for pattern, repl in _PATTERNS:
            s = pattern.sub(repl, s)
        return s

    def data(self, obj: Any) -> Any:
        """A copy of a JSON-able structure with every string (keys too) scrubbed."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {self.text(str(k)): self.data(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.data(v) for v in obj]
        return obj


def allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowlisted environment variables, secret-named ones masked, values scrubbed."""
    environ = os.environ if environ is None else environ
    red = Redactor(environ)
    out = {}
    for name in sorted(environ):
        if not allowed(name):
            continue
        out[name] = MASK if is_secret_name(name) else red.text(environ[name])
    return out
