"""linkinit's options: their defaults, the LINKINIT_* variables, and checking their values.

An image bakes ``ENTRYPOINT ["linkinit", "--"]``, so ``docker run IMAGE --timeout 3 app``
cannot reach linkinit's options: every option can therefore also be given in the
environment (``-e LINKINIT_TIMEOUT=3``), as tini and dumb-init take ``TINI_SUBREAPER`` and
``DUMB_INIT_SETSID``. Precedence: flags > environment > file > labels; the file and the labels
are the resolver's, so here a flag simply wins over its variable.

On the start path: no argparse, no typing; every bad value is a ``UsageError`` (64) naming
the flag or the variable.
"""

from __future__ import annotations

from linkinit.errors import UsageError

try:  # the C module: `signal` wraps it in enums (see supervise)
    import _signal as signal
except ImportError:  # pragma: no cover - not CPython
    import signal  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping, Optional, Sequence

DEFAULT_GRACE = 5.0
# Signals linkinit can never be sent as something to pass on: they cannot be rewritten.
_NOT_CAUGHT = {int(signal.SIGKILL), int(signal.SIGSTOP), int(signal.SIGCHLD)}


class Options:
    """The command line, parsed. Its defaults serve argparse and the bare ``-- COMMAND``;
    ``None`` (and False, empty) mean "not given", so the environment can fill them in."""

    def __init__(self, command: Sequence[str] = ()) -> None:
        self.link: list[str] = []
        self.env_links: list[str] = []  # LINKINIT_LINKS: a source between flags and the file
        self.config: Optional[str] = None
        self.timeout: Optional[float] = None
        self.print_env = False
        self.format = "env"
        self.quiet = False
        self.require_engine = False
        self.group = False
        self.grace: Optional[float] = None
        self.keep_orphans = False
        self.kill_orphans = False
        self.stop_delay: Optional[float] = None
        self.wait_all = False
        self.notify: Optional[str] = None  # who sends READY=1 on NOTIFY_SOCKET (notify.py)
        self.rewrite: list[str] = []
        self.remap_exit: list[str] = []
        self.pdeathsig: Optional[str] = None
        self.on_change: Optional[str] = None  # follow mode's policy, checked by declare
        self.splay: Optional[float] = None
        self.env: list[str] = []  # --env NAME=VALUE: derived variables (no LINKINIT_ variable)
        self.template: list[str] = []  # --template SRC:DEST (no LINKINIT_ variable)
        self.command = list(command)


class Settled:
    """The PID-1 options with every value checked and converted, flags over variables."""

    def __init__(self) -> None:
        self.grace = DEFAULT_GRACE
        self.stop_delay = 0.0
        self.rewrite: dict[int, int] = {}
        self.remap_exit: set[int] = set()
        self.pdeathsig = 0


# (variable, attribute, kind): a boolean variable turns its option on; the others supply the
# value when the flag was not given. LINKINIT_LINKS, _REWRITE and _REMAP_EXIT are lists.
ENVIRONMENT = (
    ("LINKINIT_LINKS", "env_links", "list"),
    ("LINKINIT_CONFIG", "config", "text"),
    ("LINKINIT_TIMEOUT", "timeout", "seconds"),
    ("LINKINIT_QUIET", "quiet", "bool"),
    ("LINKINIT_REQUIRE_ENGINE", "require_engine", "bool"),
    ("LINKINIT_GROUP", "group", "bool"),
    ("LINKINIT_GRACE", "grace", "seconds"),
    ("LINKINIT_KEEP_ORPHANS", "keep_orphans", "bool"),
    ("LINKINIT_KILL_ORPHANS", "kill_orphans", "bool"),
    ("LINKINIT_STOP_DELAY", "stop_delay", "seconds"),
    ("LINKINIT_WAIT_ALL", "wait_all", "bool"),
    ("LINKINIT_NOTIFY", "notify", "text"),
    ("LINKINIT_REWRITE", "rewrite", "list"),
    ("LINKINIT_REMAP_EXIT", "remap_exit", "list"),
    ("LINKINIT_PDEATHSIG", "pdeathsig", "text"),
    ("LINKINIT_ON_CHANGE", "on_change", "text"),
    ("LINKINIT_SPLAY", "splay", "seconds"),
)


def apply_environment(options: Options, environ: Mapping[str, str]) -> Options:
    """Fill in what no flag gave from the LINKINIT_* variables (an empty one counts as unset),
    checking each value here so that an error names the variable.

    Lists go before the flags' (for a signal rewritten both ways, the flag's comes later and
    wins; see settle).
    """
    for variable, attribute, kind in ENVIRONMENT:
        raw = environ.get(variable, "").strip()
        if not raw:
            continue
        origin = f"{variable}={raw}"
        current = getattr(options, attribute)
        if kind == "bool":
            setattr(options, attribute, current or parse_bool(raw, origin))
        elif kind == "list":
            items = [item.strip() for item in raw.split(",") if item.strip()]
            for item in items:
                _CHECKS.get(attribute, _unchecked)(item, origin)
            setattr(options, attribute, [*items, *current])
        elif current is None:
            value = parse_seconds(raw, origin) if kind == "seconds" else raw
            _CHECKS.get(attribute, _unchecked)(raw, origin)
            setattr(options, attribute, value)
    return options


def settle(options: Options) -> Settled:
    """Check and convert the PID-1 options; the first bad value raises UsageError."""
    settled = Settled()
    if options.grace is not None:
        settled.grace = check_seconds(options.grace, "--grace")
    if options.stop_delay is not None:
        settled.stop_delay = check_seconds(options.stop_delay, "--stop-delay")
    for text in options.rewrite:  # the environment's first, then the flags': later wins
        source, target = parse_rewrite(text, f"--rewrite {text}")
        settled.rewrite[source] = target
    for text in options.remap_exit:
        settled.remap_exit.add(parse_status(text, f"--remap-exit {text}"))
    if options.pdeathsig is not None:
        settled.pdeathsig = parse_signal(options.pdeathsig, f"--pdeathsig {options.pdeathsig}")
    return settled


def parse_bool(text: str, origin: str) -> bool:
    """A yes/no variable (an empty one never gets here: it counts as unset)."""
    from linkinit.model.declare import parse_bool as parse

    return parse(text, origin, UsageError, "1 or 0 (or true/false, yes/no, on/off)")


def parse_seconds(text: str, origin: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise UsageError(f"{origin}: expected a finite number of seconds >= 0, e.g. 30 or 2.5")
    return seconds


def check_seconds(seconds: float, flag: str) -> float:
    if not 0 <= seconds < float("inf"):
        raise UsageError(f"{flag} must be a finite number of seconds >= 0, not {seconds}")
    return seconds


def parse_signal(text: str, origin: str, zero: bool = False) -> int:
    """A signal by number (15), name (TERM, SIGTERM, term) or real-time offset (RTMIN+2)."""
    word = text.strip().upper()
    number = int(word) if word.isdigit() else _signal_by_name(word)
    if number == 0 and zero:
        return 0
    if number is None or number not in {int(s) for s in signal.valid_signals()}:
        raise UsageError(f"{origin}: {text.strip()!r} is not a signal (a name as TERM, or 1-"
                         f"{int(signal.SIGRTMAX)})")
    return number


def _signal_by_name(word: str) -> Optional[int]:
    """TERM or SIGTERM -> 15, RTMIN+2 -> SIGRTMIN + 2; None for anything else."""
    base, plus, offset = word[3:].partition("+") if word.startswith("SIG") else word.partition("+")
    if not base.isalnum() or (plus and not (offset.isdigit() and base in ("RTMIN", "RTMAX"))):
        return None
    value = getattr(signal, "SIG" + base, None)
    if not isinstance(value, int):
        return None
    return int(value) + (int(offset) if plus else 0)


def parse_rewrite(text: str, origin: str) -> tuple[int, int]:
    """``SIG:SIG`` as dumb-init's --rewrite; a second signal of 0 drops the first."""
    source, colon, target = text.partition(":")
    if not colon or not source.strip() or not target.strip():
        raise UsageError(
            f"{origin}: expected SIGNAL:SIGNAL, e.g. TERM:QUIT (or TERM:0 to drop TERM)"
        )
    number = parse_signal(source, origin)
    if number in _NOT_CAUGHT:
        raise UsageError(f"{origin}: signal {number} never reaches linkinit to be rewritten "
                         "(KILL and STOP cannot be caught; CHLD is linkinit's own)")
    return number, parse_signal(target, origin, zero=True)


def parse_status(text: str, origin: str) -> int:
    word = text.strip()
    if not word.isdigit() or int(word) > 255:
        raise UsageError(f"{origin}: expected an exit status from 0 to 255")
    return int(word)


def _unchecked(text: str, origin: str) -> object:
    return text


def check_notify(text: str, origin: str) -> str:
    """Who sends READY=1: ``linkinit`` (the default) or ``command``."""
    if text not in ("linkinit", "command"):
        raise UsageError(f"{origin}: expected linkinit (linkinit sends READY=1) or command "
                         "(COMMAND gets NOTIFY_SOCKET and notifies by itself)")
    return text


def check_policy(text: str, origin: str) -> str:
    """Follow mode's policy, checked where it was given (declare knows the forms)."""
    from linkinit.model.declare import check_policy as check

    return check(text, origin)


_CHECKS = {"rewrite": parse_rewrite, "remap_exit": parse_status, "pdeathsig": parse_signal,
           "on_change": check_policy, "notify": check_notify}
