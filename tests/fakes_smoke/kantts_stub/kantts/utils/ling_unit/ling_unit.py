"""KanTtsLinguisticUnit: the one stubbed name ModelScope calls while loading a voice."""

from __future__ import annotations

from typing import Any


class KanTtsLinguisticUnit:
    def __init__(self, config: Any):
        self.config = config

    def get_unit_size(self) -> dict[str, int]:
        return {}
