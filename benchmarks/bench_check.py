"""`tts-doctor check` (every probe) against `python -m torch.utils.collect_env`, the tool users
paste into bug reports today; and the cost of `tts-doctor --help`."""

from __future__ import annotations

import sys

from _harness import BIN, Section, command, interleave


def run(repeats: int) -> list[Section]:
    doctor = str(BIN / "tts-doctor")
    rows = interleave({
        "python -m torch.utils.collect_env": command(sys.executable, "-m",
                                                     "torch.utils.collect_env"),
        "tts-doctor check (all probes)": command(doctor, "check", "--json", ok_codes=(0, 1)),
    }, repeats)
    check = Section(
        "tts-doctor check vs torch's collect_env",
        "Both inspect the same environment (this repository's .venv: torch 2.13.0 CPU, "
        "numpy, scipy, numba, resampy, soxr, onnxruntime, piper). collect_env only reports "
        "versions; check also runs the behaviour probes. Ratio below 1 means check is faster.",
        f"python benchmarks/run.py --only check --repeats {repeats}", rows,
        baseline="python -m torch.utils.collect_env", unit="s")
    help_rows = interleave({
        "python -c pass": command(sys.executable, "-c", "pass"),
        "tts-doctor --help": command(doctor, "--help"),
        "tts-doctor check --list-checks": command(doctor, "check", "--list-checks"),
    }, repeats * 2)
    helps = Section(
        "Start-up: tts-doctor --help",
        "The CLI imports no torch, numpy or scipy for help and listing (tested in "
        "tests/test_cli.py); this measures what is left: the interpreter and click.",
        f"python benchmarks/run.py --only check --repeats {repeats}", help_rows,
        baseline="python -c pass")
    return [check, helps]
