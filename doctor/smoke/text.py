"""The text to synthesize: validated, split at sentence boundaries, lengthened for budgets.

A smoke test must refuse input that cannot be meant as text (empty, whitespace only, binary
data, megabytes of it) with one clear sentence, before any model is loaded.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from tts_doctor.errors import UserError

# 20,000 characters is about 20 minutes of read speech: enough for any budget question.
MAX_TEXT_CHARS = 20_000
_ALLOWED_CONTROL = {"\t", "\n", "\r", "\f", "\v"}
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；…])[\"'”’)\]]*\s+|(?<=[。！？；])")
_CLAUSE_END = re.compile(r"(?<=[,:，、：])\s*")


class TextError(UserError, ValueError):
    """Text that cannot be synthesized; the message says why in one sentence."""


def validate(text: str, source: str = "the text") -> str:
    """The text, stripped, or TextError: empty, whitespace, too long, binary or unspeakable."""
    if not text or not text.strip():
        raise TextError(f"{source} is empty (give the words to speak with --text or "
                        "--text-file, or use a recipe's smoke.text)")
    if len(text) > MAX_TEXT_CHARS:
        raise TextError(f"{source} is {len(text):,} characters; a smoke test takes at most "
                        f"{MAX_TEXT_CHARS:,} (to measure long inputs use --vram-budget / "
                        "--ram-budget, which extrapolate from several lengths)")
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if ch == "\ufffd" or cat == "Cs" or (cat == "Cc" and ch not in _ALLOWED_CONTROL):
            what = "a NUL byte" if ch == "\x00" else f"U+{ord(ch):04X}"
            raise TextError(f"{source} looks like binary data, not text ({what} at "
                            f"character {i})")
    if not any(unicodedata.category(c)[0] in "LN" for c in text):
        raise TextError(f"{source} has no letters or digits to speak")
    return text.strip()


def read_file(path: str, stdin_bytes: bytes | None = None) -> str:
    """Read a UTF-8 text file ('-' is stdin), refusing binary files and huge ones early."""
    limit = MAX_TEXT_CHARS * 4 + 1  # UTF-8 is at most 4 bytes a character
    name = "standard input" if path == "-" else path
    if path == "-":
        data = (stdin_bytes or b"")[:limit]
    else:
        p = Path(path)
        try:
            size = p.stat().st_size
            with p.open("rb") as f:
                data = f.read(limit)
        except OSError as exc:
            raise TextError(f"cannot read {name}: {exc.strerror or exc}") from None
        if size > limit:
            raise TextError(f"{name} is {size:,} bytes; a smoke test takes at most "
                            f"{MAX_TEXT_CHARS:,} characters")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise TextError(f"{name} looks like binary data, not text (a NUL byte at offset "
                        f"{nul})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TextError(f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start})") from None
    return validate(text, name)


def sentences(text: str) -> list[str]:
    """Split at sentence ends (. ! ? ; and their CJK forms), keeping the punctuation."""
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


def _split_long(piece: str, max_chars: int) -> list[str]:
    """A sentence longer than max_chars: split at clauses, then words, then characters."""
    if len(piece) <= max_chars:
        return [piece]
    out: list[str] = []
    for unit_re in (_CLAUSE_END, re.compile(r"\s+")):
        units = [u for u in unit_re.split(piece) if u]
        if len(units) > 1:
            joiner = " "
            current = ""
            for u in units:
                candidate = f"{current}{joiner}{u}".strip() if current else u
                if len(candidate) <= max_chars:
                    current = candidate
                else:
                    if current:
                        out.extend(_split_long(current, max_chars))
                    current = u
            if current:
                out.extend(_split_long(current, max_chars))
            return out
    return [piece[i:i + max_chars] for i in range(0, len(piece), max_chars)]


def chunk(text: str, max_chars: int | None) -> list[str]:
    """Pack whole sentences into chunks of at most max_chars (None: one chunk)."""
    if not max_chars or len(text) <= max_chars:
        return [text]
    chunks: list[str] = []
    current = ""
    for sentence in sentences(text):
        for piece in _split_long(sentence, max_chars):
            candidate = f"{current} {piece}" if current else piece
            if len(candidate) <= max_chars:
                current = candidate
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def lengthen(text: str, n_chars: int) -> str:
    """A text of about n_chars made of whole words of `text`, repeated as needed."""
    words = text.split()
    out: list[str] = []
    length = 0
    i = 0
    while length < n_chars:
        w = words[i % len(words)]
        out.append(w)
        length += len(w) + (1 if len(out) > 1 else 0)
        i += 1
    result = " ".join(out)
    return result if len(result) <= n_chars + 20 else result[:n_chars]
