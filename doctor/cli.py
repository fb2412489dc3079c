"""The `tts-doctor` command line.

Subcommands live in doctor/commands/ and are imported only when they run, so
`tts-doctor --help` imports neither torch nor numpy nor scipy. Exit codes: 0 no fail/error,
1 at least one fail or error (or warning with --strict), 2 usage error (bad input, an output
that cannot be written), 3 internal error (a bug of the doctor). Errors are one line, never a
traceback (set TTS_DOCTOR_DEBUG=1 to see one); `main` is the only place that maps them.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from typing import Any, Optional

import click
from tts_doctor import __version__

# name -> (module, attribute, one-line help shown by --help without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("tts_doctor.commands.check", "check", "Probe the environment and report, per "
              "finding, what is wrong and the exact fix."),
    "fix": ("tts_doctor.commands.fix", "fix", "Apply the fixes the doctor can apply itself "
            "(shims); print the package commands."),
    "shims": ("tts_doctor.commands.shims", "shims", "Install, remove or inspect the shims that "
              "replace broken calls."),
    "smoke": ("tts_doctor.commands.smoke", "smoke", "Load a model and synthesize under a memory "
              "profiler; check the audio; fit a VRAM budget."),
    "recipes": ("tts_doctor.commands.recipes", "recipes", "List and show the model recipes."),
    "diff": ("tts_doctor.commands.diff", "diff", "Compare two JSON reports: what changed that "
             "matters, most likely culprit first."),
    "summarize": ("tts_doctor.commands.summarize", "summarize", "Summarize many JSON reports: "
                  "one row per host, hosts grouped by problem."),
    "explain": ("tts_doctor.commands.explain", "explain", "Match a pasted error message to a "
                "known failure, its fix, and the probes that diagnose it."),
    "docs": ("tts_doctor.commands.docs", "docs", "Generate the probe reference and the "
             "troubleshooting page from the registry."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        return getattr(module, entry[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, entry[2]) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tts-doctor")
def cli() -> None:
    """Diagnose and repair deployments of PyTorch text-to-speech models.

    \b
    Exit codes: 0 no fail or error (warnings allowed), 1 at least one fail or
    error (or a warning under --strict), 2 usage error, 3 internal error.
    """


def _one_line_usage_error(exc: click.UsageError) -> str:
    message = exc.format_message().strip().splitlines()
    text = " ".join(line.strip() for line in message if line.strip())
    if "(see " in text:
        return f"tts-doctor: error: {text}"
    cmd = exc.ctx.command_path if exc.ctx is not None else "tts-doctor"
    return f"tts-doctor: error: {text} (see '{cmd} --help')"


def _say(line: str) -> None:
    """One line on stderr, scrubbed of secrets (a path may hold a token), never raising."""
    from tts_doctor.redact import Redactor

    try:
        line = Redactor().text(line)
    except Exception:  # the scrubber must not turn an error into a traceback
        line = line.split(":", 1)[0] + ": (message withheld: the secret scrubber failed)"
    # one line whatever the user typed: control characters (\r, \n, ESC) shown escaped
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    try:
        click.echo(line, err=True)
    except OSError:
        pass


def _flush_stdout() -> Optional[OSError]:
    """Flush stdout now, so a full disk (`> /dev/full`) is an error we report, not a
    complaint of the interpreter at exit."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return exc
    return None


_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: run the CLI and turn every outcome into a documented exit code.

    This is the one place errors become exit codes: a `UserError` (bad input, an unwritable
    output: any module may raise one) is one line and its `exit_code` (2, or 1 for a step
    that failed); click's own usage errors are 2; an interrupt 130; anything else is a bug of
    ours: exit 3, one line, the traceback only with TTS_DOCTOR_DEBUG=1. Every line is
    scrubbed of secrets first.
    """
    from tts_doctor.errors import UserError

    args = sys.argv[1:] if argv is None else argv
    try:
        rv: Any = cli.main(args=args, prog_name="tts-doctor", standalone_mode=False)
    except UserError as exc:
        _say(f"tts-doctor: error: {exc.message}")
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _say(_one_line_usage_error(exc))
        sys.exit(2)
    except click.ClickException as exc:
        _say(f"tts-doctor: error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except click.Abort:
        _say("tts-doctor: aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        _say("tts-doctor: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # `tts-doctor check | head`: the reader left; not an error of ours.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(1)
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS or os.environ.get("TTS_DOCTOR_DEBUG"):
            _internal(exc)
        _flush_stdout()
        _say(f"tts-doctor: error: cannot write the output: {exc.strerror or exc}")
        sys.exit(2)
    except Exception as exc:
        _internal(exc)
    failed = _flush_stdout()
    if failed is not None:
        _say(f"tts-doctor: error: cannot write the output: {failed.strerror or failed}")
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


def _internal(exc: BaseException) -> None:
    if os.environ.get("TTS_DOCTOR_DEBUG"):
        raise exc
    _say(f"tts-doctor: internal error: {type(exc).__name__}: {exc} "
         "(set TTS_DOCTOR_DEBUG=1 for the traceback, and please report it)")
    sys.exit(3)
