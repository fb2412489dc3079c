"""`tts-doctor recipes list|show|validate`: the model recipes the doctor knows."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click
from tts_doctor.inputs import read_text
from tts_doctor.recipe import MAX_RECIPE_BYTES, RecipeError, available, builtin_names, load


@click.group()
def recipes() -> None:
    """List, show and validate model recipes (recipes/*.toml, entry points, or files)."""


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """Every recipe that `--recipe NAME` accepts."""
    rows = []
    for name, source in sorted(available().items()):
        try:
            data = load(name)
            rows.append({"name": name, "engine": data["engine"],
                         "sample_rate": data["audio"]["sample_rate"],
                         "description": data.get("description", ""), "source": source})
        except RecipeError as exc:
            rows.append({"name": name, "error": str(exc), "source": source})
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        if "error" in r:
            click.echo(f"{r['name']:<{width}}  (invalid: {r['error']})")
        else:
            click.echo(f"{r['name']:<{width}}  {r['engine']:<10} {r['sample_rate']:>6} Hz  "
                       f"{r['description']}")


@recipes.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The parsed recipe as JSON.")
def show(name: str, as_json: bool) -> None:
    """Print a recipe (its TOML, comments and sources included)."""
    data = load(name)  # a RecipeError is exit 2
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if name in builtin_names():
        text = resources.files("tts_doctor.recipes").joinpath(f"{name}.toml").read_text("utf-8")
    elif Path(name).exists():
        text = read_text(name, limit=MAX_RECIPE_BYTES)
    else:  # an entry point that returned a dict: show it as JSON
        text = json.dumps(data, indent=2, ensure_ascii=False)
    click.echo(text, nl=not text.endswith("\n"))


@recipes.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> None:
    """Check recipe files against the schema; exit 2 naming the file and key at fault."""
    for path in paths:
        data = load(path)  # a RecipeError is exit 2
        click.echo(f"{path}: ok ({data['name']}, engine {data['engine']})")
