"""`tts-doctor shims install|uninstall|status`: the shims of an environment (a .pth file and a
private copy of the shims' code)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import click

PYTHON_OPTION = click.option(
    "--python", "python", type=click.Path(exists=True, dir_okay=False), metavar="PATH",
    help="The environment's interpreter (a venv's python); default: this one.")


def _fail(exc: Exception) -> click.ClickException:
    from tts_doctor.shim_install import UsageError

    if isinstance(exc, UsageError):
        return click.UsageError(str(exc))
    return click.ClickException(str(exc))


@click.group()
def shims() -> None:
    """Install, remove or inspect the shims that replace broken calls.

    \b
    Hooked shims (installed into an environment, applied when user code imports SciPy):
      scipy_names  (default) adds the names SciPy removed (scipy.signal.hann, kaiser...;
                   scipy.integrate.trapz...) as forwards; never replaces a name SciPy has
      resample     (opt-in: only when named) replaces the working scipy.signal.resample
                   with a band-limited resampler: faster, different numbers (docs/shims.md)
    Library shims are used from code: from tts_doctor.shims.mel import MelSpectrogram,
    from tts_doctor.shims.resample import resample.
    TTS_DOCTOR_SHIMS=0 turns installed shims off for one process.
    """


@shims.command()
@click.argument("names", nargs=-1)
@PYTHON_OPTION
@click.option("--dry-run", is_flag=True, help="Show the file that would be written; write "
              "nothing.")
def install(names: tuple[str, ...], python: Optional[str], dry_run: bool) -> int:
    """Install shims into an environment (default: scipy_names; `resample` only when named).

    Writes a .pth file and a private copy of the shims' code into site-packages: they keep
    working when this tts-doctor is uninstalled or moved.
    """
    from tts_doctor import shim_install as si

    try:
        if dry_run:
            t = si.target(python)
            before, text, result = si.planned(t, list(names))
            if before == text:
                click.echo(f"{t.pth} is up to date (shims: {', '.join(result)}); nothing to do")
            else:
                meta = si.parse(text) or {}
                click.echo(f"would copy the shims' code into {meta.get('root')} "
                           f"({len(meta.get('files', {}))} files, unless already there)")
                click.echo(f"would write {t.pth} (shims: {', '.join(result)}):")
                click.echo(text, nl=False)
            return 0
        change = si.install(list(names), python)
    except si.ShimError as exc:
        raise _fail(exc) from None
    for stale in change.cleaned:
        click.echo(f"removed a leftover of an interrupted install: {stale}")
    if change.changed:
        click.echo(f"installed shims {', '.join(change.shims)} into {change.path}")
        for path in change.written:
            click.echo(f"  wrote {path}")
    else:
        click.echo(f"shims {', '.join(change.shims)} already installed in {change.path}")
    for name in change.shims:
        if name in si.opt_in_shims():
            click.echo(f"note: {name} is an opt-in shim: {si.opt_in_shims()[name]}")
    click.echo("active in every new process of that environment (TTS_DOCTOR_SHIMS=0 turns "
               "them off for one process)")
    return 0


@shims.command()
@click.argument("names", nargs=-1)
@PYTHON_OPTION
def uninstall(names: tuple[str, ...], python: Optional[str]) -> int:
    """Remove shims (default: all): exactly the files install wrote."""
    from tts_doctor import shim_install as si

    try:
        change = si.uninstall(list(names), python)
    except si.ShimError as exc:
        raise _fail(exc) from None
    for stale in change.cleaned:
        click.echo(f"removed a leftover of an interrupted install: {stale}")
    if change.before is None:
        click.echo(f"no shims installed in {change.path}; nothing to do")
    elif change.after is None:
        click.echo(f"removed {change.path}")
    else:
        click.echo(f"left shims {', '.join(change.shims)} in {change.path}")
    for path in change.removed:
        click.echo(f"removed {path}")
    for path in change.left:
        click.echo(f"left in place (not written by tts-doctor): {path}")
    return 0


def render_status(data: dict[str, Any]) -> str:
    lines = [f"environment: {data['python']}", f"site-packages: {data['purelib']}"]
    if data["foreign_file"]:
        lines.append(f"{data['pth']}: exists but was not written by tts-doctor")
    elif not data["installed"]:
        lines.append("installed: none")
    else:
        meta = data["meta"]
        lines.append(f"installed: {', '.join(data['shims'])} ({data['pth']})")
        lines.append(f"shim code: {meta.get('root')}"
                     + ("" if data["self_contained"] else
                        "  (an older tts-doctor's own folder: reinstall to make the shims "
                        "self-contained)"))
        for problem in data["damaged"]:
            lines.append(f"DAMAGED: {problem}; SciPy is left unpatched (reinstall or "
                         "uninstall)")
        if data.get("outdated"):
            lines.append("outdated: written by another tts-doctor version; run "
                         "`tts-doctor shims install` again to refresh it")
    for stale in data["stale_temp_files"]:
        lines.append(f"stale temporary file (an interrupted install): {stale}")
    fresh = data["fresh_process"]
    if "error" in fresh:
        lines.append(f"could not inspect a fresh process: {fresh['error']}")
    else:
        hooks = fresh.get("hooks")
        lines.append("hooks in a fresh process: " + (
            f"yes ({', '.join(hooks['shims']) or 'switched off'})" if hooks else "no"))
        for error in fresh.get("errors") or []:
            lines.append(f"error in a fresh process: {error}")
    lines.append("")
    for name, entry in data["per_shim"].items():
        if entry["installed"]:
            state = "installed, REMOVABLE" if entry.get("removable") else "installed"
        else:
            state = "not installed"
        problem = {True: "problem present", False: "problem absent", None: "unknown"}[
            entry["problem"]]
        lines.append(f"  {name:<12} {state:<22} {problem}: {entry['why']}")
    this = data["this_process"]
    lines.append("")
    label = ("this process" if os.path.abspath(data["python"]) == os.path.abspath(sys.executable)
             else f"the doctor's own process ({sys.executable})")
    if this["disabled"]:
        lines.append(f"{label}: disabled by TTS_DOCTOR_SHIMS=0")
    elif this["active"]:
        patched = "; ".join(f"{m}: {len(n)} names" for m, n in this["patched"].items())
        lines.append(f"{label}: active ({', '.join(this['shims'])}, from "
                     f"{this['source']}){'; patched ' + patched if patched else ''}")
    else:
        lines.append(f"{label}: not active")
    return "\n".join(lines) + "\n"


@shims.command()
@PYTHON_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(python: Optional[str], as_json: bool) -> int:
    """Installed where, which shims, whether each problem still exists, what is active.

    Exit code 1 when installed shims are broken (their code is missing or damaged, or failed
    to load in a fresh process) or a foreign file sits where the shims' .pth belongs.
    """
    from tts_doctor import shim_install as si

    try:
        data = si.status(python)
    except si.ShimError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(render_status(data), nl=False)
    fresh_errors = (data["fresh_process"].get("errors") or []) if data["installed"] else []
    broken = data["foreign_file"] or bool(data["installed"] and data["damaged"]) \
        or bool(fresh_errors)
    return 1 if broken else 0
