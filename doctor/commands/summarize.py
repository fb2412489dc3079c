"""`tts-doctor summarize reports/*.json`: a fleet table and hosts grouped by problem."""

from __future__ import annotations

import json
from pathlib import Path

import click
from tts_doctor.compare import ReportFileError, fleet, load_report
from tts_doctor.errors import UserError
from tts_doctor.inputs import MAX_INPUT_BYTES
from tts_doctor.redact import Redactor

# More report files than any fleet summary needs; a folder of a million files is refused.
MAX_FILES = 100_000

_MARK = {"ok": "ok", "skip": "-", "warn": "WARN", "fail": "FAIL", "error": "ERR", None: ""}


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--markdown", is_flag=True, help="A Markdown table (job summaries, wikis).")
def summarize(paths: tuple[str, ...], as_json: bool, markdown: bool) -> int:
    """Summarize many reports (files, or folders of *.json): one row per host.

    Files that are not reports are named on stderr and left out; exit 2 if none is left.
    Exit 1 when any host has a fail or error.
    """
    red = Redactor()
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
        if len(files) > MAX_FILES:
            raise UserError(f"more than {MAX_FILES:,} report files; summarize fewer at a time")
    reports = []
    for f in files:
        try:
            reports.append(load_report(f))
        except ReportFileError as exc:
            click.echo(red.text(f"tts-doctor: skipped {exc}"), err=True)
    if not reports:
        raise UserError(f"no readable tts-doctor report among the given paths ({len(files)} "
                        f"skipped: each must be a report of `tts-doctor check --json`, at most "
                        f"{MAX_INPUT_BYTES // (1024 * 1024)} MiB)")
    table = fleet(reports)
    bad = any(r["counts"].get("fail") or r["counts"].get("error") for r in table.hosts)
    if as_json:
        click.echo(json.dumps(table.to_dict(), indent=2))
        return 1 if bad else 0
    cats = table.categories
    head = ["host", *cats]
    rows = [[h["host"], *[_MARK[h["categories"].get(c)] for c in cats]] for h in table.hosts]
    if markdown:
        click.echo("| " + " | ".join(head) + " |")
        click.echo("|" + "---|" * len(head))
        for row in rows:
            click.echo("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        for row in [head, *rows]:
            click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    click.echo(f"\n{len(table.hosts)} host(s), {len(table.groups)} distinct problem set(s):")
    for g in table.groups:
        what = ", ".join(g["problems"]) if g["problems"] else "no problems"
        click.echo(f"  {len(g['hosts'])} host(s): {what}")
        click.echo(f"      {', '.join(g['hosts'])}")
    return 1 if bad else 0
