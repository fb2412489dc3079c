"""Redaction: reports get pasted into public issue trackers, so secrets never reach them.

Two rules. Environment variables enter a report only from an allowlist (CUDA_*, PYTORCH_*,
HF_HOME...). And every string of every report, in every format, and every error message is
scrubbed: the values of secret-looking variables of this process (8 characters or more, so a
short value never blanks ordinary words), credentials inside URLs, secret query parameters,
well-known token shapes (Hugging Face, GitHub, OpenAI-style, AWS, Slack, GitLab, bearer),
JWTs, PEM blocks, and any run of 18+ characters that looks random rather than made of words
(`looks_random`): a raw token hidden as a path component of TORCH_HOME is masked like a named
one. Kept readable: paths, versions, file names, UUIDs (GPU ids), and hex digests of a known
length (32, 40, 56, 64, 96, 128 digits: md5, git, sha256...). A random hex token of such a
length, or an all-lowercase random token, is not recognized - no heuristic is perfect, which
is why the allowlist comes first.
"""

from __future__ import annotations

import collections
import math
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
# Matched by the pattern above but holding no secret (a socket path, a session *type*).
_NOT_SECRET_NAMES = frozenset({
    "SSH_AUTH_SOCK", "XAUTHORITY", "XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_CLASS",
    "XDG_SESSION_DESKTOP", "XDG_SESSION_PATH", "XDG_SEAT_PATH", "DESKTOP_SESSION",
    "DBUS_SESSION_BUS_ADDRESS", "GNOME_DESKTOP_SESSION_ID",
})
# A secret value shorter than this is not searched for inside other text: "tty" or "user"
# would blank every ordinary word ("[Errno 13]" became "*** 13]"). The variable itself is
# still masked whole by `environment`.
MIN_SECRET_VALUE = 8

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

# PEM blocks (a private key in an NVIDIA_* variable), whole; a truncated one to its end.
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}-----.*?(?:-----END [A-Z0-9 ]{0,40}-----|\Z)",
                  re.DOTALL)
# JWTs: base64url header (always starting "eyJ", i.e. '{"'), payload and signature.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*)?")
# Candidates for the randomness test: base64 blobs (may contain '/'), then path components.
_BLOB = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]{24,}")
_RUN = re.compile(r"(?<![A-Za-z0-9+=_-])[A-Za-z0-9+=_-]{18,}")
_PATH_PART = re.compile(r"^[a-z0-9._-]+$")  # "tmp", "lib64": a folder name, not base64
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_CONSONANTS = re.compile(r"[^aeiouy0-9]{4,}")
_HEX = re.compile(r"^(?:[0-9a-f]+|[0-9A-F]+)$")
_HASH_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}")
MIN_RANDOM_LENGTH = 18


def _plausible_word(word: str) -> bool:
    """A word-like piece of an identifier: has a vowel, no 4-consonant cluster (or digits)."""
    if word.isdigit():
        return len(word) >= 2
    low = word.lower()
    return len(word) >= 3 and any(c in "aeiouy" for c in low) and not _CONSONANTS.search(low)


def looks_random(s: str) -> bool:
    """Whether a run of token characters looks like a random token rather than words.

    Measured (benchmarks-style, not asserted on speed) on 5,000 random tokens per shape and on
    60,000 real file and folder names of a Python installation: about 99% of base64/base62
    tokens of 20+ characters are caught, about 0.1% of real names are masked.
    """
    s = _UUID.sub("-", s)
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", s) if p]
    # "ort-gpu-9a3684d0fbd6", "doctor-pipx-3ff2e790e6ca": words with a short content-hash
    # suffix name a folder (a venv, a cache entry, a build), not a secret
    # ("piper-no-ort-a25c69d6d2fc", "tts-on-gpu-...": short words like "no" and "on" count,
    # beside at least one word-like one)
    words_only = [p for p in parts if not (_HEX.match(p) and 6 <= len(p) <= 16)]
    pieces = [w for p in words_only for w in _WORD.findall(p)]
    if len(parts) >= 2 and words_only and len(words_only) < len(parts) and \
            any(_plausible_word(w) for w in pieces) and all(
            _plausible_word(w) or (len(w) <= 2 and w.isalpha()) for w in pieces):
        return False
    alnum = "".join(parts)
    n = len(alnum)
    if n < MIN_RANDOM_LENGTH:
        return False
    if _HEX.match(alnum):
        if alnum.isdigit() or (len(parts) == 1 and n in _HASH_LENGTHS):
            return False  # a number, or a digest of a known length
        return (n >= 20 and sum(c.isdigit() for c in alnum) >= 3
                and sum(c.isalpha() for c in alnum) >= 3)
    classes = sum((any(c.islower() for c in alnum), any(c.isupper() for c in alnum),
                   any(c.isdigit() for c in alnum)))
    if classes < 2:
        return False
    counts = collections.Counter(alnum)
    entropy = -sum(v / n * math.log2(v / n) for v in counts.values())
    if entropy < 3.3:
        return False
    words = [w for p in parts for w in _WORD.findall(p)]
    if n / len(words) < 2.0:
        return True
    expected_distinct = 62 * (1 - (61 / 62) ** n)
    if len(counts) < 0.8 * expected_distinct:
        return False  # letters repeat as in words
    letters = [c for c in alnum if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    rises = sum(a.islower() and b.isupper() for a, b in zip(alnum, alnum[1:]))
    if letters and 0.3 <= upper / len(letters) <= 0.7 and rises >= max(3, n / 6):
        return True  # case mixed at random, not CamelCase (one rise a word of 4+ letters)
    wordy = sum(len(w) for w in words if _plausible_word(w))
    return wordy / n < 0.6


def _mask_random(match: re.Match[str]) -> str:
    text = match.group()
    return MASK if looks_random(text) else text


def _mask_blob(match: re.Match[str]) -> str:
    """A base64 blob ('/' inside): the runs of its '/'-separated parts between folder-like
    parts ("tmp", "lib64") are tested, so a path keeps its folders and loses its token."""
    text = match.group()
    parts = text.split("/")
    out: list[str] = []
    group: list[str] = []

    def flush() -> None:
        if group:
            joined = "/".join(group)
            out.append(MASK if looks_random(joined) else joined)
            group.clear()

    for part in parts:
        if (len(part) >= 3 and _PATH_PART.match(part)) or not part:
            flush()
            out.append(part)
        else:
            group.append(part)
    flush()
    return "/".join(out)


def scrub_tokens(s: str) -> str:
    """Mask PEM blocks, JWTs and random-looking runs (no environment needed)."""
    if "-----BEGIN" in s:
        s = _PEM.sub(MASK, s)
    if "eyJ" in s:
        s = _JWT.sub(MASK, s)
    s = _BLOB.sub(_mask_blob, s)
    return _RUN.sub(_mask_random, s)


def holds_secret(text: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `text` holds a secret: a secret variable's value, a credential pattern (a
    token, a password in a URL), a PEM block or a JWT. What must never be written to a cache
    (tts_doctor.memo); random-looking runs, which reports also mask, are often hashes and do
    not count."""
    if any(v in text for v in _secret_values(os.environ if environ is None else environ)):
        return True
    if any(p.search(text) for p, _ in _PATTERNS):
        return True
    return "-----BEGIN" in text or ("eyJ" in text and bool(_JWT.search(text)))


def is_secret_name(name: str) -> bool:
    return name.upper() not in _NOT_SECRET_NAMES and bool(_SECRET_NAME.search(name))


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    values = {v for k, v in environ.items()
              if is_secret_name(k) and len(v) >= MIN_SECRET_VALUE}
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
        return scrub_tokens(s)

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
