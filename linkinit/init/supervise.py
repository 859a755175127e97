"""PID 1: spawn COMMAND, forward signals to it, reap every zombie, exit with its status.

This is the code that stays resident for the life of the container, so it imports only small
standard-library modules. The recipe, in the order ``cli.main`` uses it:

1. ``block_signals()`` as the very first statement: every signal linkinit passes on, and
   SIGCHLD, is blocked from then on and only ever *waited for* (``sigwaitinfo``), never
   handled asynchronously. A signal that arrives at any later point stays pending until the
   loop takes it: nothing is lost, and no SIGCHLD can slip past before the loop runs. The
   siginfo tells a user's ``kill -SEGV`` (passed on) from a fault of our own.
2. ``run_isolated(work)`` runs the resolver in a forked child, so the Docker SDK and friends
   never become resident here; a stop signal meanwhile kills it and ends linkinit at once.
3. ``supervise(argv, env)`` forks COMMAND with a clean start (own process group, the
   terminal, default SIGPIPE/SIGXFSZ, the original signal mask), then, if the process holds
   more than a watcher needs, re-executes a bare interpreter (``python -I -S``, this module)
   to drop everything the CLI imported, keeping PID 1 under 10 MB; the watcher moves to /,
   names itself for ``ps``, forwards signals,
   reaps, and on COMMAND's exit (as PID 1 or with --group) TERMs what is left, waits
   ``grace`` seconds and KILLs the rest.

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
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

EX_SOFTWARE = 70  # the resolver crashed: a bug in linkinit, not in the user's setup
EX_NOEXEC = 126  # COMMAND exists but cannot be executed (tini's and the shells' convention)
EX_NOTFOUND = 127  # COMMAND was not found

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36

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

# PID 1 re-executes itself small only when it holds more than this (PID 1's target is 10 MB).
SMALL_ENOUGH_KB = 9 * 1024 + 512

# The bundle's first argument when it re-executes itself as the slim watcher
# (linkinit/frozen.py).
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


# -- the resolver, isolated ---------------------------------------------------------------------


def _scratch_fd() -> int:
    """An anonymous file for the resolver's answer.

    A file rather than a pipe: a pipe holds 64 KiB, and a full one would block the writer
    while we wait for signals, not for data.
    """
    try:
        return os.memfd_create("linkinit", 0)
    except (AttributeError, OSError):
        pass
    for directory in ("/dev/shm", "/tmp", "."):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
        except (AttributeError, OSError):
            continue
    raise OSError(errno.ENOSPC, "linkinit: no place for a scratch file (memfd, /dev/shm, /tmp)")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _system_exit_code(exc: SystemExit) -> int:
    """The status Python itself would exit with for this SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    _warn(str(exc.code))
    return 1


def _worker(work: Callable[[], bytes], fd: int) -> None:
    """The forked resolver: run work(), leave its bytes in fd, and _exit (never return)."""
    code = EX_SOFTWARE
    try:
        try:
            _write_all(fd, bytes(work()))
            code = 0
        except SystemExit as exc:
            code = _system_exit_code(exc)
        except BaseException as exc:
            _warn(f"internal error while resolving links: {type(exc).__name__}: {exc}")
        _flush_std()
    finally:
        os._exit(code)


def run_isolated(work: Callable[[], bytes]) -> bytes:
    """Run work() in a forked child and return its bytes; PID 1 never imports what it imports.

    A signal in STOPS_WAIT (TERM, INT, HUP, QUIT, USR1, ...) arriving meanwhile SIGKILLs the
    child and raises SystemExit(128+N) at once: `docker stop` during a long wait for children
    must not take the Engine's 10 s. Other signals (WINCH, CONT, ...) stay pending for
    COMMAND. A child exiting non-zero raises SystemExit with its status.
    """
    block_signals()
    fd = _scratch_fd()
    try:
        _flush_std()
        pid = os.fork()
        if pid == 0:
            _worker(work, fd)
        status = _await_worker(pid)
        if status != 0:
            raise SystemExit(status)
        return _read_all(fd)
    finally:
        os.close(fd)


def _await_worker(pid: int) -> int:
    """Wait for the resolver or a stop signal, whichever comes first; reap zombies meanwhile."""
    waited = STOPS_WAIT | {int(signal.SIGCHLD)}
    while True:
        info = signal.sigwaitinfo(waited)
        sig = info.si_signo
        if not _sent_to_us(info):
            continue
        if sig == signal.SIGCHLD:
            status, _ = _reap(pid)
            if status is None:
                continue
            if status > 128:
                _warn(f"the link resolver was killed by signal {status - 128}")
            return status
        _send(pid, signal.SIGKILL)
        while True:  # SIGKILL cannot be caught: this wait is short
            try:
                done, _ = os.waitpid(pid, 0)
            except ChildProcessError:
                break
            if done == pid:
                break
        _reap(pid)
        _warn(f"stopped by {_signal_name(sig)} before COMMAND started")
        raise SystemExit(128 + sig)


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
    and KILL; keep_orphans: leave the leftovers alone; rewrite: {signal: signal, or 0 to
    drop it}; remap_exit: statuses of COMMAND reported as 0; title: what ``ps`` shows.
    A plain class: namedtuple would import collections into the resident process.
    """

    __slots__ = ("follow", "grace", "group", "keep_orphans", "pid", "remap_exit", "rewrite",
                 "title")

    def __init__(
        self,
        pid: int,
        *,
        group: bool = False,
        grace: float = 5.0,
        keep_orphans: bool = False,
        rewrite: dict[int, int] | None = None,
        remap_exit: Iterable[int] = (),
        title: str = "linkinit",
    ) -> None:
        self.pid = pid
        self.group = group
        self.grace = grace
        self.keep_orphans = keep_orphans
        self.rewrite = dict(rewrite or {})
        self.remap_exit = frozenset(remap_exit)
        self.title = title
        self.follow: Follow | None = None

    def to_args(self) -> list[str]:
        args = ["--pid", str(self.pid), "--grace", repr(float(self.grace))]
        args += ["--group"] * self.group + ["--keep-orphans"] * self.keep_orphans
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
            if flag in ("--group", "--keep-orphans"):
                setattr(watch, flag[2:].replace("-", "_"), True)
            elif flag == "--rewrite":
                sig, _, target = next(pairs).partition(":")
                watch.rewrite[int(sig)] = int(target)
            elif flag == "--remap-exit":
                watch.remap_exit |= {int(next(pairs))}
            elif flag in ("--pid", "--grace", "--title"):
                value = next(pairs)
                kind = {"--pid": int, "--grace": float, "--title": str}[flag]
                setattr(watch, flag[2:], kind(value))
        return watch


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
        env = self.environment()
        path, code, failure = _find_executable(self.command[0], env.get("PATH"))
        if path is None:
            _warn(failure)
            return code
        pid, exec_errno = _spawn(path, self.command, env, self.mask)
        if exec_errno is not None:
            _warn(f"{self.command[0]}: cannot execute {path}: {os.strerror(exec_errno)}")
            return EX_NOTFOUND if exec_errno in (errno.ENOENT, errno.ENOTDIR) else EX_NOEXEC
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


def supervise(
    argv: list[str],
    env: dict[str, str],
    *,
    group: bool = False,
    grace: float = 5.0,
    slim: bool = True,
    keep_orphans: bool = False,
    rewrite: dict[int, int] | None = None,
    remap_exit: Iterable[int] = (),
    follow: Follow | None = None,
) -> int:
    """Run COMMAND (argv, env as its whole environment) as our child; return our exit status.

    COMMAND is spawned first, so it never waits for what follows. With ``slim`` (the
    default) a process holding more than ``SMALL_ENOUGH_KB`` then re-executes a bare
    interpreter that only watches COMMAND, so what the CLI imported is no longer resident:
    the pid, the children, the signal mask and pending signals all survive the exec. A
    smaller one (or where the exec fails) watches in place.
    ``rewrite`` adds to (and overrides) the job-control rewrites of ``group`` mode.
    """
    if not argv:
        raise ValueError("supervise() needs a command")
    block_signals()
    assert _original_mask is not None
    _become_subreaper()
    path, code, failure = _find_executable(argv[0], env.get("PATH"))
    if path is None:
        _warn(failure)
        return code
    pid, exec_errno = _spawn(path, argv, env, _original_mask)
    if exec_errno is not None:
        code = EX_NOTFOUND if exec_errno in (errno.ENOENT, errno.ENOTDIR) else EX_NOEXEC
        _warn(f"{argv[0]}: cannot execute {path}: {os.strerror(exec_errno)}")
        return code
    rewrites = dict(GROUP_REWRITES) if group else {}
    rewrites.update(rewrite or {})
    watch = Watch(
        pid,
        group=group,
        grace=grace,
        keep_orphans=keep_orphans,
        rewrite=rewrites,
        remap_exit=remap_exit,
        title="linkinit: supervising " + " ".join(argv),
    )
    if follow is not None:
        follow.command = list(argv)
        follow.mask = set(_original_mask)
        watch.follow = follow
    if slim:
        if not _small_enough():
            _reexec_slim(watch)  # returns only if the exec failed
        _retitle(watch.title)
    _leave_cwd()
    return _watch(watch)


def _leave_cwd() -> None:
    """chdir("/") once COMMAND runs: COMMAND keeps its directory; ours would only hold a
    mount busy (dumb-init does the same)."""
    with _Ignoring(OSError):
        os.chdir("/")


def _small_enough() -> bool:
    """Whether this process already holds no more than a re-executed watcher would, give or
    take: then the re-exec (a second interpreter start, ~8 ms of CPU, bench/breakdown.py) buys
    nothing. So it is for a Python install whose command line imported nothing heavy before
    the resolver's fork (the bare ``-- COMMAND``); never for the bundle, whose runtime holds
    more than its watcher."""
    if getattr(sys, "frozen", False):
        return False
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return pages * os.sysconf("SC_PAGE_SIZE") <= SMALL_ENOUGH_KB * 1024


def _reexec_slim(watch: Watch) -> None:
    """Replace this process by a bare ``python -I -S`` that watches COMMAND.

    Import this file as a top-level module from its directory, so the compiled copy in
    __pycache__ is reused: running it as a script would compile it anew, and the compiler's
    memory stays resident (~1.4 MB). In the bundle, the bundle itself (``_slim_command``).
    """
    command = _slim_command()
    if command is None:
        return
    _flush_std()
    _leave_cwd()
    try:
        os.execv(command[0], [*command, *watch.to_args()])
    except OSError as exc:
        _warn(f"warning: could not re-execute a slim supervisor ({exc}); supervising in place")


def _slim_command() -> list[str] | None:
    """The watcher's command line before its options; None if there is none to exec.

    The self-contained bundle (PyInstaller, ``sys.frozen``) has no ``python3`` and no
    ``supervise.py`` on disk: it re-executes itself with ``SLIM_WATCHER`` first, and its entry
    point (linkinit/frozen.py) then imports this module alone.
    """
    executable = sys.executable
    if not executable:
        return None
    if getattr(sys, "frozen", False):
        return [executable, SLIM_WATCHER]
    script = os.path.abspath(__file__)
    if not os.path.isfile(script):
        return None
    bootstrap = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); import supervise; del sys.path[0]; "
        "sys.exit(supervise._slim_main(sys.argv[1:]))"
    )
    return [executable, "-I", "-S", "-c", bootstrap, os.path.dirname(script)]


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
    status = _forward_and_reap(watch)
    if watch.follow is not None:
        watch.follow.stop()
    _finish(watch)
    return 0 if status in watch.remap_exit else status


def _prctl(option: int, value: int) -> None:
    """prctl(2) through ``_ctypes``, imported only here: off PID 1, or for --pdeathsig.

    ``_ctypes`` is the C core of the ctypes package, which is left out of the bundle:
    PyInstaller's bootstrap imports ctypes at every start when it is there (~8 ms, and
    ~0.5 MB in PID 1). These few lines are what ``ctypes.CDLL(None, use_errno=True).prctl``
    builds from it.
    """
    import _ctypes

    class Int(_ctypes._SimpleCData):  # ctypes.c_int
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):  # a CDLL's function: cdecl, errno kept, int result
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = Int

    class Libc:  # the program's own symbols, libc's among them: dlopen(NULL)
        _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # NULL: this program

    if Function(("prctl", Libc()))(option, value, 0, 0, 0) != 0:  # type: ignore[arg-type]
        errno = _ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _become_subreaper() -> None:
    """Outside PID 1, have orphans re-parented to us (prctl), so we can reap them too."""
    if os.getpid() == 1:
        return
    try:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    except (ImportError, AttributeError, OSError) as exc:
        _warn(
            f"warning: cannot register as a child subreaper ({exc}): orphaned processes will "
            "not be reaped. To fix it, run linkinit as PID 1 (the image's ENTRYPOINT)."
        )


def set_parent_death_signal(sig: int) -> None:
    """tini -p: the kernel sends us ``sig`` when our parent dies; we then treat it as any
    signal sent to us (forwarded to COMMAND, or ending the wait for children). It survives
    the slim re-exec. A parent already gone when it is set: the signal is sent at once."""
    parent = os.getppid()
    try:
        _prctl(PR_SET_PDEATHSIG, sig)
    except (ImportError, AttributeError, OSError) as exc:
        _warn(f"warning: --pdeathsig: cannot set the parent-death signal ({exc})")
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


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
        code = EX_NOTFOUND if exc.errno in (errno.ENOENT, errno.ENOTDIR) else EX_NOEXEC
        os._exit(code)


def _forward_and_reap(watch: Watch) -> int:
    """The loop: wait for a signal, forward it, or reap; until COMMAND itself has exited.

    In follow mode it also wakes for the watcher's notice and for what follow mode has
    scheduled (a restart after its splay, a new watcher after its backoff).
    """
    follow = watch.follow
    while True:
        info = _next_signal(follow)
        if info is None:  # follow mode's scheduled work is due
            status = follow.due(watch) if follow else None
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


def _next_signal(follow: Follow | None) -> Any:
    """The next signal; None when follow mode's next scheduled work comes first."""
    wait = follow.next_due() if follow is not None else None
    if wait is None:
        return signal.sigwaitinfo(_WAITED)
    return signal.sigtimedwait(_WAITED, max(wait, 0.0))


def _forward(watch: Watch, sig: int) -> None:
    """Pass sig on (rewritten if asked; 0 drops it), then stop ourselves after job control,
    as a shell's user expects (SIGCONT resumes us; PID 1 cannot be stopped)."""
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


def _descendants(root: int) -> Iterable[int]:
    """Our descendants, from /proc (orphans of theirs come to us as subreaper)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


if __name__ == "__main__":
    sys.exit(_slim_main(sys.argv[1:]))
