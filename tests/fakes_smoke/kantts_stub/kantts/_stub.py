"""The one behaviour of every stubbed function: say it is a stub."""

from __future__ import annotations

from typing import Any


def not_real(*_: Any, **__: Any) -> Any:
    raise RuntimeError("tests/fakes_smoke/kantts_stub: KAN-TTS is not installable here")
