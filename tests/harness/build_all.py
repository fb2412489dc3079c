"""Build every test environment up front: `python -m tests.harness.build_all [NAME ...]`.

Collects the EnvSpec objects of tests/harness/envs*.py, builds the missing ones (the cached
ones are reused) and prints how long each took.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import tests.harness as harness
from tests.harness.venvs import EnvSpec, EnvUnavailable, build


def all_specs() -> dict[str, EnvSpec]:
    specs: dict[str, EnvSpec] = {}
    for mod in pkgutil.iter_modules(harness.__path__):
        if mod.name.startswith("envs"):
            module = importlib.import_module(f"tests.harness.{mod.name}")
            for value in vars(module).values():
                if isinstance(value, EnvSpec):
                    specs[value.name] = value
    return specs


def main(names: list[str]) -> int:
    specs = all_specs()
    chosen = [specs[n] for n in names] if names else list(specs.values())
    failed = 0
    for spec in chosen:
        t0 = time.time()
        try:
            venv = build(spec)
            print(f"{spec.name:<28} {time.time() - t0:6.1f} s  {venv.path}", flush=True)
        except EnvUnavailable as exc:
            failed += 1
            print(f"{spec.name:<28} FAILED: {str(exc).splitlines()[0]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
