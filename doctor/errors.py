"""The one error type for the user's mistakes, carrying the exit code the CLI ends with.

Every module that finds a problem with what the user gave it (a recipe, a report file, an
output path, a probe selection, a number) raises a `UserError` (or a subclass that also keeps
its old base, e.g. `RecipeError(UserError, ValueError)`), and `tts_doctor.cli.main` turns it
into one line on stderr and `exit_code` - in one place, so no command maps errors on its own.
Exit 3 is left for the doctor's own bugs: an exception that is not a `UserError`.

Standard library only: the smoke child imports modules that raise these.
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_FAILED = 1


class UserError(Exception):
    """A mistake in the user's input or environment: one line, exit `exit_code` (2).

    `message` is the whole line after "tts-doctor: error: "; say what is wrong, where, and
    what would be accepted.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputError(UserError, ValueError):
    """An input file or value that cannot be used (missing, special, too big, not UTF-8).

    `reason` is the message without the file's name in front (for errors that add it).
    """

    reason = ""


class OutputError(UserError, OSError):
    """An output file that cannot be written (missing folder, read-only, device full).

    Also an OSError, so callers that already handle write failures keep doing so.
    """

    def __init__(self, message: str, exit_code: int | None = None):
        UserError.__init__(self, message, exit_code)

    def __str__(self) -> str:
        return self.message
