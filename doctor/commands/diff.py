"""`tts-doctor diff GOOD.json BAD.json`: what changed between two machines that matters."""

from __future__ import annotations

import json

import click
from tts_doctor import compare
from tts_doctor.compare import load_report
from tts_doctor.redact import Redactor


@click.command()
@click.argument("good", type=click.Path(dir_okay=False))
@click.argument("bad", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(good: str, bad: str, as_json: bool) -> int:
    """Compare two `tts-doctor check --json` reports, most likely culprit first.

    Exit code 1 when a finding got worse from GOOD to BAD, else 0; 2 for unreadable input.
    """
    a, b = load_report(good), load_report(bad)  # redacted; a ReportFileError is exit 2
    red = Redactor()
    good, bad = red.text(good), red.text(bad)
    result = compare.diff(a, b)
    if as_json:
        click.echo(json.dumps({"good": good, "bad": bad, **result.to_dict()}, indent=2))
        return 1 if result.regressions else 0
    click.echo(f"tts-doctor diff: {a.get('host')} ({good}) -> {b.get('host')} ({bad})")
    if result.culprits:
        click.echo("\nMost likely culprit" + ("s" if len(result.culprits) > 1 else "") + ":")
        for c in result.culprits:
            click.echo(f"  {c.name}: {c.before or '(absent)'} -> {c.after or '(absent)'}"
                       f"   [{c.note}]")
    if result.findings:
        click.echo("\nFindings that changed:")
        for c in result.findings:
            mark = "worse " if c.worse else "better"
            click.echo(f"  {mark} {c.name}: {c.before or '(absent)'} -> {c.after or '(absent)'}"
                       f"  {c.note}")
    else:
        click.echo("\nNo finding changed status.")
    if result.environment:
        click.echo("\nEnvironment differences:")
        for c in result.environment:
            click.echo(f"  {c.what} {c.name}: {c.before or '(absent)'} -> "
                       f"{c.after or '(absent)'}")
    return 1 if result.regressions else 0

