"""Exit statuses, and the error types that carry them to the command line.

Every failure linkinit knows about is a ``LinkinitError`` whose ``exit_status`` is one of
the README's table; ``cli.run`` prints its message on one line and returns that status. The
numbers follow BSD sysexits so that a supervisor can tell "fix your declaration" (64) from
"the Engine is down" (69) from "try again later" (75).

The Engine's own answers are ``EngineError``s: each cause has its type, says whether
trying again can help (``retryable``), and keeps the HTTP status it came with
(``http_status``, None when there was no answer at all).
"""

from __future__ import annotations

EX_USAGE = 64  # bad usage or a bad link declaration: retrying will not help
EX_UNAVAILABLE = 69  # the registry (Docker Engine) could not be reached after retries
EX_TEMPFAIL = 75  # a child was not ready before the timeout: a restart may succeed
EX_NOEXEC = 126  # COMMAND exists but cannot be executed
EX_NOTFOUND = 127  # COMMAND was not found


class LinkinitError(Exception):
    """A failure with a message for the user and the exit status it maps to."""

    exit_status = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)


class DeclarationError(LinkinitError):
    """A link declaration (label, YAML line, flag) that cannot be understood."""

    exit_status = EX_USAGE


class UsageError(LinkinitError):
    """Bad command-line usage."""

    exit_status = EX_USAGE


class ResolveError(LinkinitError):
    """A child that exists but cannot be linked (ambiguous, no shared network...)."""

    exit_status = EX_USAGE


class NotReady(LinkinitError):
    """One or more children were not ready before the timeout."""

    exit_status = EX_TEMPFAIL


class EngineError(LinkinitError):
    """The Engine could not serve a request. Not retryable unless a subclass says so."""

    exit_status = EX_UNAVAILABLE
    retryable = False

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class EngineUnreachable(EngineError):
    """No answer: the socket is refused or missing, the answer broke off or came too late.
    A starting or restarting Engine looks like this, so it is worth another try."""

    retryable = True


class EngineBusy(EngineUnreachable):
    """The Engine (or a proxy before it) answered 5xx: a fault on its side, maybe passing."""


class EngineRefused(EngineError):
    """A 4xx answer other than "no such container": the request itself was refused (a proxy
    forbidding it, an API version the Engine does not speak). Asking again will not help."""


class NotSwarmManager(EngineRefused):
    """503 "This node is not a swarm manager" for ``/services`` or ``/tasks``: asking again
    will not help. ``role`` says why (``swarm.WORKER``: a manager could answer;
    ``swarm.NOT_IN_SWARM``: there is no swarm)."""

    def __init__(self, message: str, http_status: int | None = None, role: str = "") -> None:
        super().__init__(message, http_status)
        self.role = role


class EngineProtocolError(EngineError):
    """The answer was not HTTP as the Engine speaks it (a bad status line, broken chunked
    framing, a line longer than the reader's limit)."""


class NotFound(EngineError):
    """404: no such container (or network). Lookups turn it into "absent"."""


class AmbiguousReference(EngineError):
    """The Engine found several containers for one ID prefix: the user must be precise."""

    exit_status = EX_USAGE
