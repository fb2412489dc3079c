"""`tts-doctor explain "<error message>"`: which known failure it is, and what to run."""

from __future__ import annotations

import sys

import click
from tts_doctor.errors import UserError
from tts_doctor.inputs import MiB, decode_text

MAX_MESSAGE_BYTES = MiB  # a traceback with its log is a few KiB


@click.command()
@click.argument("message", required=False)
def explain(message: str | None) -> int:
    """Match an error message (argument, or stdin with '-') against known failure families.

    Prints the family, its cause and fix, and the probes that diagnose it. Exit 0 when a
    family matched, 1 when none did.
    """
    from tts_doctor.families import match
    from tts_doctor.registry import all_probes

    if message is None or message == "-":
        if sys.stdin.isatty() and message is None:
            raise UserError("give the error message as an argument, or '-' for stdin")
        data = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)  # bounded: stdin may be endless
        if len(data) > MAX_MESSAGE_BYTES:
            raise UserError(f"the message on standard input is over {MAX_MESSAGE_BYTES:,} "
                            "bytes; paste the error and its traceback only")
        message = decode_text(data, "standard input")
    if not message.strip():
        raise UserError("the message is empty")
    found = match(message)
    if not found:
        click.echo("No known failure signature in that message. Run `tts-doctor check` for "
                   "a full diagnosis.")
        return 1
    probes = {s.id: s for s in all_probes()}
    for fam in found:
        ids = [pid for pid, s in probes.items() if fam.id in s.families]
        click.echo(f"{fam.id} {fam.name}: {fam.signature}")
        click.echo(f"  cause:    {fam.cause}")
        click.echo(f"  fix:      {fam.fix}")
        click.echo(f"  reported: {fam.reported}")
        if ids:
            click.echo(f"  diagnose: tts-doctor check --only {','.join(ids)}")
        click.echo("")
    return 0
