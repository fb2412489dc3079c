"""The options `check` and `fix` share: probe selection (--only/--skip) and probe settings
(--set KEY=VALUE), parsed and validated for the command line (a bad value is one line, exit 2).

The library (tts_doctor.api) takes the parsed values; this module is what turns flags into
them, so that no command imports another command's internals.
"""

from __future__ import annotations

from typing import Any, Optional

import click
from tts_doctor.errors import UserError
from tts_doctor.registry import ProbeSpec

# The `--set` keys the built-in probes read (tests/test_cli_hardening.py checks this list
# against the probes' code). A key under a category that only plugins define is accepted too.
KNOWN_OPTIONS: dict[str, str] = {
    "model.dir": "a local model folder to judge",
    "model.offline": "judge as if offline (no hub)",
    "piper.voice": "a Piper voice (.onnx) to judge with its .onnx.json",
    "piper.config": "the voice's config when it is not VOICE.onnx.json",
    "piper.speaker": "the speaker id or name the deployment passes",
    "numba.resampy": "call resampy for real (run) or never (skip)",
    "numba.jit-budget": "seconds the numba JIT may take",
    "scipy.paths": "extra source folders scanned for SciPy calls (os.pathsep-separated)",
    "ttsfrd.resource": "the ttsfrd resource folder",
    "ttsfrd.lang": "the ttsfrd front-end language",
}


def split_patterns(values: tuple[str, ...], flag: Optional[str] = None) -> tuple[str, ...]:
    """`--only a,b --only c` -> ('a', 'b', 'c'). With `flag`, an empty value (`--only ''`)
    is a usage error rather than silently meaning "everything"."""
    out = []
    for v in values:
        parts = [p.strip() for p in v.split(",") if p.strip()]
        if not parts and flag:
            raise UserError(f"{flag} {v!r}: empty pattern (give probe ids or categories; see "
                            "`tts-doctor check --list-checks`)")
        out += parts
    return tuple(out)


def select_probes(only: tuple[str, ...], skip: tuple[str, ...]) -> tuple[
        tuple[str, ...], tuple[str, ...], list[ProbeSpec]]:
    """The --only/--skip patterns and the probes they select; refuses an empty selection."""
    from tts_doctor import registry

    only_p, skip_p = split_patterns(only, "--only"), split_patterns(skip, "--skip")
    specs = registry.select(only_p, skip_p)
    if not specs:
        raise UserError(f"nothing would be checked: --skip {','.join(skip_p)} leaves no "
                        "probe to run (see `tts-doctor check --list-checks`)")
    return only_p, skip_p, specs


def _plugin_categories() -> set[str]:
    from tts_doctor import registry

    return {s.category for s in registry.all_probes()
            if not s.func.__module__.startswith("tts_doctor.probes")}


def parse_options(values: tuple[str, ...]) -> dict[str, Any]:
    """`--set key=value` pairs for probes (e.g. ttsfrd.resource=/opt/resource); an empty or
    unknown key is a usage error naming the known ones (a typo must not be ignored)."""
    out: dict[str, Any] = {}
    plugin_cats: Optional[set[str]] = None
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        key, value = item.split("=", 1)
        key = key.strip()
        known = ", ".join(KNOWN_OPTIONS)
        if not key:
            raise UserError(f"--set {item!r}: empty key (known keys: {known})")
        if key not in KNOWN_OPTIONS:
            if plugin_cats is None:
                plugin_cats = _plugin_categories()
            if key.split(".", 1)[0] not in plugin_cats:
                raise UserError(f"--set {key}: unknown key (known keys: {known})")
        out[key] = value
    return out
