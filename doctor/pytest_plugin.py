"""pytest plugin (entry point `pytest11`): inert unless `--tts-doctor` is given."""

from __future__ import annotations

from typing import Any


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("tts-doctor")
    group.addoption("--tts-doctor", action="store", nargs="?", const="", default=None,
                    metavar="RECIPE", help="Run `tts-doctor check` once at session start.")
