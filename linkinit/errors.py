"""Exit statuses and the one error type that carries them to the command line.

Every failure linkinit knows about becomes a ``LinkinitError`` with the status DESIGN.md
documents; ``cli.run`` prints its message on one line and returns the status. The numbers
follow BSD sysexits so that a supervisor can tell "fix your declaration" (64) from "the
Engine is down" (69) from "try again later" (75).
"""

from __future__ import annotations

EX_USAGE = 64  # bad usage or a bad link declaration: retrying will not help
EX_UNAVAILABLE = 69  # the registry (Docker Engine) could not be reached after retries
EX_TEMPFAIL = 75  # a child was not ready before the timeout: a restart may succeed
EX_NOEXEC = 126  # COMMAND exists but cannot be executed
EX_NOTFOUND = 127  # COMMAND was not found


class LinkinitError(Exception):
    """A failure with a message for the user and the exit status it maps to."""

    status = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self)


class DeclarationError(LinkinitError):
    """A link declaration (label, YAML line, flag) that cannot be understood."""

    status = EX_USAGE


class UsageError(LinkinitError):
    """Bad command-line usage."""

    status = EX_USAGE


class EngineUnreachable(LinkinitError):
    """The Docker Engine did not answer, even after retries."""

    status = EX_UNAVAILABLE


class ResolveError(LinkinitError):
    """A child that exists but cannot be linked (ambiguous, no shared network...)."""

    status = EX_USAGE


class NotReady(LinkinitError):
    """One or more children were not ready before the timeout."""

    status = EX_TEMPFAIL
