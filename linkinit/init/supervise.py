"""PID 1: spawn COMMAND, forward signals to it, reap every zombie, exit with its status.

This is the code that stays resident for the life of the container, so it imports only small
standard-library modules. The recipe, in the order ``cli.main`` uses it:

1. ``block_signals()`` as the very first statement: every signal linkinit passes on, and
   SIGCHLD, is blocked from then on and only ever *waited for* (``sigwaitinfo``), never
   handled asynchronously. A signal that arrives at any later point stays pending until the
   loop takes it: nothing is lost, and no SIGCHLD can slip past before the loop runs. The
   siginfo tells a user's ``kill -SEGV`` (passed on) from a fault of our own.
2. ``prestart.run_isolated(work)`` runs the resolver in a forked child, so the Engine client
   and friends never become resident here; a stop signal meanwhile ends linkinit at once.
3. ``prestart.supervise(argv, env)`` starts COMMAND with ``start_command`` (own process
   group, the terminal, default SIGPIPE/SIGXFSZ, the original signal mask), then
   re-executes a bare interpreter (``python -I -S``) that imports this module alone, keeping
   PID 1 under 10 MB. Those two steps run once, before COMMAND: they live in prestart.py.
4. The watcher (``_slim_main`` -> ``_watch``) moves to /, names itself for ``ps``, forwards
   signals (holding the first TERM with --stop-delay), reaps (TERMing orphans with
   --kill-orphans), and on COMMAND's exit waits for the rest (--wait-all) or, as PID 1 or
   with --group, TERMs what is left, waits ``grace`` seconds and KILLs the rest.

What it promises is in the README's PID 1 section and the pitfalls it follows in
docs/design.md; each behaviour has a test in tests/unit and tests/e2e named after it.
"""

from __future__ import annotations

import errno
import os
import sys
import time

try:  # the C module: `signal` wraps it in enums, and enum + functools cost ~1.5 MB resident
    import _signal as signal
except ImportError:  # pragma: no cover - not CPython
    import signal  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not free to import, and this module stays resident
    from collections.abc import Iterable, Mapping
    from typing import Any

EX_NOEXEC = 126  # COMMAND exists but cannot be executed (tini's and the shells' convention)
EX_NOTFOUND = 127  # COMMAND was not found


# The kernel raises these for a fault in the process itself (PIPE and XFSZ for its own write
# to a closed pipe or past the file-size limit). Blocked, a real fault still kills us (the
# kernel unblocks it); what the loop takes is passed on only if another process sent it
# (kill, sigqueue), never one linkinit raised in itself.
_CHECKED = frozenset(
    int(s)
    for s in (
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGILL,
        signal.SIGTRAP,
        signal.SIGSYS,
        signal.SIGPIPE,
        signal.SIGXFSZ,
    )
)
_NOT_FORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
FORWARDED = frozenset(int(s) for s in signal.valid_signals() if s not in _NOT_FORWARDED)
_WAITED = FORWARDED | {int(signal.SIGCHLD)}

# Signals whose default action does not end a process: during the resolver's wait they stay
# pending and reach COMMAND once it runs; every other forwardable signal ends the wait.
_HARMLESS = {
    int(signal.SIGCONT),
    int(signal.SIGURG),
    int(signal.SIGWINCH),
    int(signal.SIGTSTP),
    int(signal.SIGTTIN),
    int(signal.SIGTTOU),
}
STOPS_WAIT = frozenset(FORWARDED - _HARMLESS)

# A shell user's job-control signals: pass them on, then stop ourselves (SIGCONT resumes).
_JOB_CONTROL = {int(signal.SIGTSTP), int(signal.SIGTTIN), int(signal.SIGTTOU)}
# In --group mode they become STOP for the whole group (as dumb-init's setsid mode does), so a
# COMMAND that catches TSTP stops with the rest and `fg` resumes all of it.
GROUP_REWRITES = {sig: int(signal.SIGSTOP) for sig in _JOB_CONTROL}

# For a COMMAND that starts with "-": most likely an option given after ENTRYPOINT's "--".
OPTIONS_HINT = (
    "if it is a linkinit option, give it before \"--\" (linkinit --timeout 3 -- COMMAND) or "
    "in the environment (docker run -e LINKINIT_TIMEOUT=3 ...)"
)
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Follow mode: the watcher process tells PID 1 "a link changed" with this signal (a user's
# kill of the same number is told apart by the sender's pid, and forwarded as any other).
NOTIFY_SIGNAL = int(signal.SIGRTMIN) + 5
EX_LINK_CHANGED = 75  # on-change=exit: a child changed; restart the container to follow it
_FOLLOWER_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # before starting a watcher that died again
_FOLLOWER_STEADY = 30.0  # a watcher that lived this long starts the backoff afresh
_KILL_WAIT = 2.0  # seconds to wait for SIGKILLed processes to be reaped before giving up
ORPHAN_POLL = 0.5  # --kill-orphans: seconds between looks for processes re-parented to us
_DRAIN_SIGNALS = {int(signal.SIGTERM), int(signal.SIGINT)}  # what --stop-delay holds

# The bundle's first argument when it re-executes itself as the slim watcher (frozen.py).
SLIM_WATCHER = "--linkinit-slim-watcher"

_original_mask: set[int] | None = None


class _Ignoring:
    """contextlib.suppress without contextlib's imports (functools, collections)."""

    def __init__(self, *errors: type[BaseException]) -> None:
        self.errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, self.errors)


# -- signals ---------------------------------------------------------------------------------


def block_signals() -> None:
    """Block every forwardable signal and SIGCHLD, remembering the mask COMMAND gets back.

    Called first thing in ``cli.main``: from here on a signal is held pending until the loop
    waits for it, so none is dropped (as PID 1, an unhandled signal is discarded) and no
    SIGCHLD can come before we wait for it. Idempotent.
    """
    global _original_mask
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)
    if _original_mask is None:
        _original_mask = {int(s) for s in previous}


def original_mask() -> set[int]:
    """The mask linkinit started with, which COMMAND gets back (block_signals keeps it)."""
    block_signals()
    return set(_original_mask or ())


def _warn(message: str) -> None:
    """One line on stderr; a closed stderr must not turn a warning into a crash."""
    try:
        sys.stderr.write(f"linkinit: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _flush_std() -> None:
    """Flush Python's buffers before fork, or the child would write them a second time."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _send(pid: int, sig: int) -> bool:
    """kill(pid, sig) for one real process; False if it is already gone.

    The guard is the point: in a forked child a pid variable holds 0, and kill(0, ...)
    signals our whole process group; kill(-1, ...) signals everything we may signal.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:  # already gone: a normal event, not an error
        return False
    return True


def _send_group(pgid: int, sig: int) -> bool:
    """killpg for COMMAND's group; never group 0 (our own) or 1."""
    if pgid <= 1:
        return False
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _sent_to_us(info: object) -> bool:
    """Whether a waited-for signal is one to act on: any but a fault signal we raised ourselves.

    A process's kill/sigqueue/tgkill has ``si_code <= 0`` (SI_USER, SI_QUEUE, SI_TKILL); the
    kernel's own faults have ``si_code > 0``. Our own write to a closed pipe is SI_USER with
    our own pid, so that is checked too (forwarding it would also loop: warning about it
    writes to the same pipe).
    """
    sig = getattr(info, "si_signo", 0)
    if sig not in _CHECKED:
        return True
    return getattr(info, "si_code", 1) <= 0 and getattr(info, "si_pid", 0) != os.getpid()


def _exit_status(wait_status: int) -> int:
    """The status to exit with: the exit code, or 128+N for a death by signal N.

    Never WEXITSTATUS alone: for a signal death it is 0, and a killed child would look
    successful.
    """
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _reap(main_pid: int) -> tuple[int | None, bool]:
    """Reap every exited child (SIGCHLDs coalesce: one may stand for many).

    Returns (main_pid's exit status if it was among them, whether children remain).
    """
    status = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status, False
        if pid == 0:
            return status, True
        if pid == main_pid:
            status = _exit_status(wait_status)


def _signal_name(sig: int) -> str:
    """SIGTERM for 15 (without the enum module)."""
    for name in dir(signal):
        plain = name.startswith("SIG") and "_" not in name and not name.startswith("SIGRT")
        if plain and getattr(signal, name) == sig:
            return name
    return f"signal {sig}"


# -- COMMAND ---------------------------------------------------------------------------------


class Watch:
    """What the watcher does for COMMAND (pid) besides reaping; crosses the re-exec as argv.

    group: signals go to COMMAND's process group; grace: seconds between the leftovers' TERM
    and KILL; keep_orphans: leave the leftovers alone; kill_orphans, stop_delay, wait_all:
    the options of those names; rewrite: {signal: signal, or 0 to drop it}; remap_exit:
    statuses of COMMAND reported as 0; title: what ``ps`` shows; the rest, the loop's state.
    A plain class: namedtuple would import collections into the resident process.
    """

    __slots__ = ("follow", "grace", "group", "held", "keep_orphans", "kill_orphans",
                 "orphans", "orphans_at", "pid", "release_at", "remap_exit", "rewrite",
                 "stop_delay", "title", "wait_all")

    def __init__(
        self,
        pid: int,
        *,
        group: bool = False,
        grace: float = 5.0,
        keep_orphans: bool = False,
        kill_orphans: bool = False,
        stop_delay: float = 0.0,
        wait_all: bool = False,
        rewrite: dict[int, int] | None = None,
        remap_exit: Iterable[int] = (),
        title: str = "linkinit",
    ) -> None:
        self.pid = pid
        self.group = group
        self.grace = grace
        self.keep_orphans = keep_orphans
        self.kill_orphans = kill_orphans
        self.stop_delay = stop_delay
        self.wait_all = wait_all
        self.rewrite = dict(rewrite or {})
        self.remap_exit = frozenset(remap_exit)
        self.title = title
        self.follow: Follow | None = None
        self.held = 0  # --stop-delay: the signal held, 0 before the first, -1 once released
        self.release_at: float | None = None
        self.orphans: dict[int, float] = {}  # --kill-orphans: pid TERMed -> when to KILL it
        self.orphans_at: float | None = None  # the next look for orphans

    def to_args(self) -> list[str]:
        args = ["--pid", str(self.pid), "--grace", repr(float(self.grace)),
                "--stop-delay", repr(float(self.stop_delay))]
        for flag in _WATCH_FLAGS:
            args += [flag] * getattr(self, flag[2:].replace("-", "_"))
        for sig, target in sorted(self.rewrite.items()):
            args += ["--rewrite", f"{sig}:{target}"]
        for status in sorted(self.remap_exit):
            args += ["--remap-exit", str(status)]
        args += ["--title", self.title]
        return args + (self.follow.to_args() if self.follow else [])

    @classmethod
    def from_args(cls, args: list[str]) -> Watch:
        """The inverse of to_args (written by us, so not validated again)."""
        watch = cls(0)
        if "--follow" in args:
            at = args.index("--follow")
            watch.follow = Follow.from_args(args[at + 1:])
            args = args[:at]
        pairs = iter(args)
        for flag in pairs:
            if flag in _WATCH_FLAGS:
                setattr(watch, flag[2:].replace("-", "_"), True)
            elif flag == "--rewrite":
                sig, _, target = next(pairs).partition(":")
                watch.rewrite[int(sig)] = int(target)
            elif flag == "--remap-exit":
                watch.remap_exit |= {int(next(pairs))}
            elif flag in _WATCH_VALUES:
                setattr(watch, flag[2:].replace("-", "_"), _WATCH_VALUES[flag](next(pairs)))
        return watch


_WATCH_FLAGS = ("--group", "--keep-orphans", "--kill-orphans", "--wait-all")
_WATCH_VALUES = {"--pid": int, "--grace": float, "--stop-delay": float, "--title": str}


# Follow mode's state directory: the resolver writes the parent's own variables (ENVIRON_FILE),
# the watcher the current link variables (LINKS_FILE); PID 1, the watcher and the client
# library all find them here.
FOLLOW_DIR = "/run/linkinit-follow"
LINKS_FILE = "links"
ENVIRON_FILE = "environ"


def follow_dir(environ: Mapping[str, str]) -> str:
    return environ.get("LINKINIT_FOLLOW_DIR") or FOLLOW_DIR


def parse_environ(data: bytes) -> dict[str, str]:
    """``KEY=VALUE`` entries separated by NULs (``/proc/<pid>/environ``, follow mode's files);
    an entry without ``=`` is skipped."""
    pairs = (entry.partition(b"=") for entry in data.split(b"\0"))
    return {os.fsdecode(key): os.fsdecode(value) for key, sep, value in pairs if sep and key}


def read_environ(path: str) -> dict[str, str]:
    with open(path, "rb") as file:
        return parse_environ(file.read())


class Follow:
    """Follow mode, PID 1's side: start (and restart) the watcher process, and apply the
    policy when it says a link changed. What crosses the slim re-exec is in to_args.

    policy: ``hosts``, ``signal:<N>``, ``restart`` or ``exit``; splay: the longest random
    delay before a restart; state_dir: where the resolver left the parent's own environment
    (``environ``) and the watcher keeps the current links (``links``); follower: the
    watcher's argv; command, mask: COMMAND's argv and signal mask, to start it again.
    """

    __slots__ = ("command", "deaths", "follower", "mask", "pid", "policy", "restart_at",
                 "spawn_at", "splay", "started_at", "state_dir")

    def __init__(self, policy: str, splay: float, state_dir: str, follower: list[str]) -> None:
        self.policy = policy
        self.splay = splay
        self.state_dir = state_dir
        self.follower = list(follower)
        self.command: list[str] = []
        self.mask: set[int] = set()
        self.pid = 0
        self.deaths = 0
        self.started_at = 0.0
        self.spawn_at: float | None = None
        self.restart_at: float | None = None

    def to_args(self) -> list[str]:
        fields = [self.policy, repr(float(self.splay)), self.state_dir,
                  ",".join(str(s) for s in sorted(self.mask)), str(len(self.follower))]
        return ["--follow", *fields, *self.follower, *self.command]

    @classmethod
    def from_args(cls, args: list[str]) -> Follow:
        policy, splay, state_dir, mask, count = args[:5]
        follower = args[5:5 + int(count)]
        follow = cls(policy, float(splay), state_dir, follower)
        follow.mask = {int(s) for s in mask.split(",") if s}
        follow.command = args[5 + int(count):]
        return follow

    # -- the watcher process --

    def start(self) -> None:
        """Start the watcher: its own process group (COMMAND's group signals miss it), no
        terminal, the signal state COMMAND gets."""
        self.spawn_at = None
        _flush_std()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
                env = dict(os.environ, LINKINIT_FOLLOW_DIR=self.state_dir)
                os.execve(self.follower[0], self.follower, env)
            finally:
                os._exit(EX_NOTFOUND)
        self.pid, self.started_at = pid, time.monotonic()

    def check(self) -> None:
        """After a reap: a watcher that is gone is started again, after a backoff if it
        keeps dying. It never takes COMMAND down."""
        if self.pid <= 0 or _alive(self.pid):
            return
        lived = time.monotonic() - self.started_at
        self.deaths = 0 if lived > _FOLLOWER_STEADY else self.deaths + 1
        delay = _FOLLOWER_BACKOFF[min(self.deaths, len(_FOLLOWER_BACKOFF) - 1)]
        _warn(f"follow: the watcher (pid {self.pid}) exited; starting it again in {delay:.0f} s")
        self.pid = 0
        self.spawn_at = time.monotonic() + delay

    def stop(self) -> None:
        """TERM the watcher, KILL it if it is not gone within a second (docker stop's
        budget is COMMAND's, not the watcher's)."""
        if self.pid <= 0:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            _send(self.pid, sig)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(self.pid, os.WNOHANG)[0]:
                        self.pid = 0
                        return
                except ChildProcessError:
                    self.pid = 0
                    return
                signal.sigtimedwait({signal.SIGCHLD}, max(deadline - time.monotonic(), 0.0))

    # -- the policy --

    def notified(self, info: object) -> bool:
        return (getattr(info, "si_signo", 0) == NOTIFY_SIGNAL
                and getattr(info, "si_pid", 0) == self.pid > 0)

    def changed(self, watch: Watch) -> int | None:
        """The watcher says a link changed (it already rewrote /etc/hosts and the links
        file): signal COMMAND, schedule its restart, or stop it and exit."""
        kind, _, number = self.policy.partition(":")
        if kind == "signal":
            _deliver(watch, int(number))
        elif kind == "restart" and self.restart_at is None:
            self.restart_at = time.monotonic() + self.splay * _random_fraction()
        elif kind == "exit":
            _warn("follow: a link changed; stopping COMMAND and exiting (on-change=exit)")
            _stop_command(watch)
            return EX_LINK_CHANGED
        return None

    def next_due(self) -> float | None:
        """Seconds until the next scheduled work, None when there is none."""
        times = [t for t in (self.spawn_at, self.restart_at) if t is not None]
        return min(times) - time.monotonic() if times else None

    def due(self, watch: Watch) -> int | None:
        now = time.monotonic()
        if self.spawn_at is not None and self.spawn_at <= now:
            self.start()
        if self.restart_at is not None and self.restart_at <= now:
            self.restart_at = None
            return self._restart(watch)
        return None

    def _restart(self, watch: Watch) -> int | None:
        """Stop COMMAND and start it again with the links as they are now."""
        _warn("follow: a link changed; restarting COMMAND (on-change=restart)")
        _stop_command(watch)
        pid, failed = start_command(self.command, self.environment(), self.mask)
        if failed:
            return failed
        watch.pid = pid
        return None

    def environment(self) -> dict[str, str]:
        """COMMAND's environment now: the current links under the parent's own variables."""
        base = read_environ(os.path.join(self.state_dir, ENVIRON_FILE))
        return {**read_environ(os.path.join(self.state_dir, LINKS_FILE)), **base}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _random_fraction() -> float:
    """A number in [0, 1) without importing random (hashlib, bisect... stay out of PID 1)."""
    return int.from_bytes(os.urandom(4), "big") / 2**32


def _leave_cwd() -> None:
    """chdir("/") once COMMAND runs: COMMAND keeps its directory; ours would only hold a
    mount busy (dumb-init does the same)."""
    with _Ignoring(OSError):
        os.chdir("/")


def _slim_main(args: list[str]) -> int:
    """Entry point of the re-executed supervisor: the options _reexec_slim wrote."""
    watch = Watch.from_args(args)
    _retitle(watch.title)
    return _watch(watch)


def _retitle(title: str) -> None:
    """Show ``linkinit: supervising COMMAND`` to ``ps`` and ``docker top``, not the bootstrap.

    /proc/<pid>/cmdline is read from our argument area, so that is overwritten in place
    (through /proc/self/mem: no ctypes in the resident process) and padded with NULs; the
    title is always shorter, as the argument area holds it. The name (``comm``) becomes
    ``linkinit``. Cosmetic: any failure leaves the old command line.
    """
    with _Ignoring(OSError), open("/proc/self/comm", "w") as comm:
        comm.write("linkinit")
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (proc(5))
        text = title.encode(errors="replace")[: max(end - start - 1, 0)]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(text + b"\0" * (end - start - len(text)))
    except (OSError, ValueError, IndexError):
        pass


def _watch(watch: Watch) -> int:
    """Forward signals and reap until COMMAND exits; then deal with what it left."""
    if watch.follow is not None:
        watch.follow.start()
    if watch.kill_orphans:
        watch.orphans_at = time.monotonic() + ORPHAN_POLL
    status = _forward_and_reap(watch)
    if watch.follow is not None:
        watch.follow.stop()
    if watch.wait_all:
        _wait_rest(watch)
    _finish(watch)
    return 0 if status in watch.remap_exit else status


def start_command(argv: list[str], env: dict[str, str], mask: set[int]) -> tuple[int, int]:
    """Find COMMAND in its own PATH and spawn it: ``(pid, 0)`` once it runs, else ``(0,
    126 or 127)`` with the reason said on stderr. The one way COMMAND is started, first or
    again (follow mode's restart)."""
    path, code, failure = _find_executable(argv[0], env.get("PATH"))
    if path is None:
        _warn(failure)
        return 0, code
    pid, exec_errno = _spawn(path, argv, env, mask)
    if exec_errno is not None:
        _warn(f"{argv[0]}: cannot execute {path}: {os.strerror(exec_errno)}")
        return 0, _exec_failure_status(exec_errno)
    return pid, 0


def _exec_failure_status(number: int) -> int:
    """127 when exec found nothing to run, 126 when it found something it could not run."""
    return EX_NOTFOUND if number in (errno.ENOENT, errno.ENOTDIR) else EX_NOEXEC


def _find_executable(name: str, path_var: str | None) -> tuple[str | None, int, str]:
    """Look COMMAND up as execvp would, in *COMMAND's* PATH: (path, 0, "") or (None, status,
    message), 126 for a file we may not execute, 127 for nothing found."""
    search = _DEFAULT_PATH if path_var is None else path_var
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in search.split(":")]
    refused = ""
    for candidate in candidates:
        if os.path.isdir(candidate):
            refused = refused or f"{name}: {candidate} is a directory, not a program"
        elif os.path.exists(candidate):
            if os.access(candidate, os.X_OK):
                return candidate, 0, ""
            refused = refused or (
                f"{name}: permission denied: {candidate} is not executable; "
                "make it executable (chmod +x) or name its interpreter first"
            )
    if refused:
        return None, EX_NOEXEC, refused
    return None, EX_NOTFOUND, _not_found(name, search)


def _not_found(name: str, search: str) -> str:
    """What to say when COMMAND is nowhere: a path to check, a name, or an option misplaced."""
    if "/" in name:
        return f"{name}: not found; check the path"
    if name.startswith("-"):
        return f"{name}: command not found in PATH={search}; {OPTIONS_HINT}"
    return f"{name}: command not found in PATH={search}; check the name"


def _terminal_fd() -> int | None:
    """The fd of our controlling terminal if we are its foreground group, else None.

    Only then is the terminal ours to hand to COMMAND (`docker run -it`); run in the
    background of a shell, we must not steal the shell's terminal.
    """
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return fd
        except OSError:
            continue
    return None


def _spawn(
    path: str, argv: list[str], env: dict[str, str], mask: set[int]
) -> tuple[int, int | None]:
    """Fork and exec COMMAND; (pid, None) once it runs, (pid, errno) if exec failed (reaped).

    The parent waits on a close-on-exec pipe until the exec happened, so a signal forwarded
    from here on reaches COMMAND itself, not the copy of us that is about to become it.
    """
    tty = _terminal_fd()
    read_end, write_end = os.pipe()
    _flush_std()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _exec_child(path, argv, env, mask, tty, write_end)
        finally:
            os._exit(EX_NOTFOUND)
    os.close(write_end)
    with _Ignoring(OSError):
        os.setpgid(pid, pid)  # also done in the child: whichever runs first wins the race
    report = b""
    while True:
        chunk = os.read(read_end, 64)
        if not chunk:
            break
        report += chunk
    os.close(read_end)
    if not report:
        return pid, None
    with _Ignoring(ChildProcessError):
        os.waitpid(pid, 0)
    return pid, int(report)


def _exec_child(
    path: str, argv: list[str], env: dict[str, str], mask: set[int], tty: int | None, report: int
) -> None:
    """In the forked child: own process group, the terminal, a clean signal state, exec.

    Kept minimal: no allocation-heavy work, no logging; failures go back as an errno.
    """
    os.setpgid(0, 0)
    if tty is not None:
        with _Ignoring(OSError):
            os.tcsetpgrp(tty, os.getpgrp())  # SIGTTOU is blocked: allowed from the background
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    for sig in FORWARDED:  # a signal queued before exec must act as COMMAND's default would
        if callable(signal.getsignal(sig)):
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        os.execve(path, argv, env)
    except OSError as exc:
        os.write(report, str(exc.errno or errno.ENOEXEC).encode())
        os._exit(_exec_failure_status(exc.errno or errno.ENOEXEC))


def _forward_and_reap(watch: Watch) -> int:
    """The loop: wait for a signal, forward it, or reap; until COMMAND itself has exited.

    In follow mode it also wakes for the watcher's notice and for what follow mode has
    scheduled (a restart after its splay, a new watcher after its backoff).
    """
    follow = watch.follow
    while True:
        info = _next_signal(watch)
        if info is None:  # scheduled work is due
            status = _due(watch)
        elif info.si_signo == signal.SIGCHLD:
            status, _ = _reap(watch.pid)
            if follow is not None:
                follow.check()
        elif follow is not None and follow.notified(info):
            status = follow.changed(watch)
        else:
            status = None
            if _sent_to_us(info):
                _forward(watch, info.si_signo)
        if status is not None:
            return status


def _next_signal(watch: Watch) -> Any:
    """The next signal; None when scheduled work comes first: follow mode's, a held stop
    signal's release, the next look for orphans."""
    waits = [at - time.monotonic() for at in (watch.release_at, watch.orphans_at) if at]
    follow_wait = watch.follow.next_due() if watch.follow is not None else None
    waits += [] if follow_wait is None else [follow_wait]
    if not waits:
        return signal.sigwaitinfo(_WAITED)
    return signal.sigtimedwait(_WAITED, max(min(waits), 0.0))


def _due(watch: Watch) -> int | None:
    """Run what is due; COMMAND's exit status if that ended it (follow mode's restart)."""
    now = time.monotonic()
    if watch.release_at is not None and watch.release_at <= now:
        sig, watch.held, watch.release_at = watch.held, -1, None
        _pass_on(watch, sig)
    if watch.orphans_at is not None and watch.orphans_at <= now:
        _kill_orphans(watch)
    return watch.follow.due(watch) if watch.follow is not None else None


def _forward(watch: Watch, sig: int) -> None:
    """Pass sig on, unless --stop-delay holds it: the first TERM or INT waits ``stop_delay``
    seconds (a drain window); a second one goes through at once, in its place."""
    if sig in _DRAIN_SIGNALS and watch.stop_delay > 0 and watch.held >= 0:
        if watch.held == 0:
            watch.held, watch.release_at = sig, time.monotonic() + watch.stop_delay
            _warn(f"{_signal_name(sig)} reaches COMMAND in {watch.stop_delay:g} s "
                  "(--stop-delay); a second signal goes through at once")
            return
        watch.held, watch.release_at = -1, None
    _pass_on(watch, sig)


def _pass_on(watch: Watch, sig: int) -> None:
    """Send sig (rewritten if asked; 0 drops it), then stop ourselves after job control, as
    a shell's user expects (SIGCONT resumes us; PID 1 cannot be stopped)."""
    target = watch.rewrite.get(sig, sig)
    if not target:
        return
    _deliver(watch, target)
    if sig in _JOB_CONTROL and os.getpid() != 1:
        os.kill(os.getpid(), signal.SIGSTOP)


def _deliver(watch: Watch, sig: int) -> None:
    """Send sig to COMMAND, or to its whole group with --group."""
    if not (watch.group and _send_group(watch.pid, sig)):
        _send(watch.pid, sig)


def _stop_command(watch: Watch) -> int:
    """TERM COMMAND (its group with --group), KILL it after ``grace``; its exit status.

    Other signals stay pending meanwhile and are handled once it is gone.
    """
    _deliver(watch, signal.SIGTERM)
    deadline = time.monotonic() + watch.grace
    killed = False
    while True:
        status, _ = _reap(watch.pid)
        if status is not None:
            return status
        remaining = deadline - time.monotonic()
        if remaining <= 0 and not killed:
            _deliver(watch, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + _KILL_WAIT
            continue
        if remaining <= 0:
            return 128 + int(signal.SIGKILL)  # unkillable (D state): report it as killed
        signal.sigtimedwait({signal.SIGCHLD}, remaining)


def _finish(watch: Watch) -> None:
    """COMMAND is gone: as PID 1 or with --group, TERM what is left, give it ``grace``
    seconds, KILL the rest. Otherwise (and with keep_orphans) leave it alone, as tini and
    dumb-init do outside PID 1: those processes may be meant to outlive COMMAND."""
    pid = watch.pid
    _, left = _reap(pid)
    if watch.keep_orphans or not (watch.group or os.getpid() == 1):
        return
    if not left and not (watch.group and _group_alive(pid)):
        return
    _signal_rest(signal.SIGTERM, pid if watch.group else 0)
    if not _wait_children_gone(pid, watch.grace):
        _signal_rest(signal.SIGKILL, pid if watch.group else 0)
        _wait_children_gone(pid, _KILL_WAIT)


def _kill_orphans(watch: Watch) -> None:
    """--kill-orphans: TERM each process re-parented to us while COMMAND runs, KILL it
    ``grace`` seconds later; never COMMAND, its group with --group, or follow mode's
    watcher. Nothing tells us of a re-parenting: we look every ORPHAN_POLL seconds."""
    now = time.monotonic()
    watch.orphans_at = now + ORPHAN_POLL
    spared = {watch.pid, watch.follow.pid if watch.follow is not None else 0}
    found = [pid for pid in _children_of(os.getpid())
             if pid not in spared and not (watch.group and _group_of(pid) == watch.pid)]
    for pid in found:
        if pid not in watch.orphans:
            _warn(f"--kill-orphans: process {pid} was left to linkinit; sending it SIGTERM")
            _send(pid, signal.SIGTERM)
            watch.orphans[pid] = now + watch.grace
        elif watch.orphans[pid] <= now:
            _send(pid, signal.SIGKILL)
    watch.orphans = {pid: at for pid, at in watch.orphans.items() if pid in found}


def _group_of(pid: int) -> int:
    with _Ignoring(OSError):
        return os.getpgid(pid)
    return 0


def _wait_rest(watch: Watch) -> None:
    """--wait-all: COMMAND is gone; reap until every other process is too, passing the
    signals we get on to all of them (``docker stop`` still ends them)."""
    while _reap(watch.pid)[1]:
        info = signal.sigwaitinfo(_WAITED)
        if info.si_signo != signal.SIGCHLD and _sent_to_us(info):
            _signal_rest(info.si_signo, watch.pid if watch.group else 0)


def _group_alive(pgid: int) -> bool:
    if pgid <= 1:
        return False
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    return True


def _wait_children_gone(pid: int, timeout: float) -> bool:
    """Reap until no child is left or ``timeout`` passes; True if none is left."""
    deadline = time.monotonic() + timeout
    while True:
        _, left = _reap(pid)
        remaining = deadline - time.monotonic()
        if not left or remaining <= 0:
            return not left
        signal.sigtimedwait({signal.SIGCHLD}, remaining)


def _signal_rest(sig: int, pgid: int) -> None:
    """Signal every process left: COMMAND's group, and all our descendants."""
    _send_group(pgid, sig)
    if os.getpid() == 1:
        with _Ignoring(ProcessLookupError):
            os.kill(-1, sig)  # as PID 1: every process in the container but us
        return
    for descendant in _descendants(os.getpid()):
        _send(descendant, sig)


def _children_of(pid: int) -> list[int]:
    """A process's children (zombies too): the kernel's list, or /proc's parent fields."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except (OSError, ValueError):
        return _parents().get(pid, [])


def _descendants(root: int) -> Iterable[int]:
    """Our descendants, from /proc (orphans of theirs come to us as subreaper)."""
    children = _parents()
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _parents() -> dict[int, list[int]]:
    """{parent pid: [child pids]} of every process /proc shows."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


if __name__ == "__main__":
    sys.exit(_slim_main(sys.argv[1:]))
