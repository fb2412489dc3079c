"""A minimal recipe file for tests where a recipe's `[requires]` changes a verdict."""

from __future__ import annotations

from pathlib import Path


def write_recipe(path: Path, requires: str, *, name: str = "test", engine: str = "reference",
                 sample_rate: int = 22050, text: str = "hi", table: str = "requires") -> str:
    """Write a recipe with `requires` (TOML lines) as its `[table]`; return its path as a
    string, ready for `--recipe`."""
    path.write_text(f'name = "{name}"\nengine = "{engine}"\n[audio]\nsample_rate = {sample_rate}\n'
                    f'[smoke]\ntext = "{text}"\n[{table}]\n{requires}\n', encoding="utf-8")
    return str(path)
