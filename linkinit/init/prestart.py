"""What runs before PID 1's loop: the resolver isolated, then COMMAND started and watched.

1. ``run_isolated(work)``: the resolver imports the Engine client, YAML, the retry library;
   none of that may stay resident in the process that becomes PID 1's supervisor
   (supervise.py, standard library only). So it runs in a forked child that leaves its
   answer in an anonymous file, while this process keeps waiting for signals as PID 1 must:
   a stop signal meanwhile kills the child and ends linkinit at once, without the Engine's
   10 s of ``docker stop``.
2. ``supervise(argv, env, ...)``: register as subreaper off PID 1, start COMMAND
   (``supervise.start_command``), say it started (READY=1), then, if this process holds
   more than a watcher needs, re-execute a bare interpreter running supervise.py alone,
   which watches COMMAND from then on; a process already that small watches in place.
"""

from __future__ import annotations

import errno
import os
import sys

from linkinit.init import supervise as _pid1
from linkinit.init.supervise import (
    GROUP_REWRITES,
    SLIM_WATCHER,
    STOPS_WAIT,
    Follow,
    Watch,
    _flush_std,
    _leave_cwd,
    _reap,
    _send,
    _sent_to_us,
    _signal_name,
    _warn,
    _watch,
    block_signals,
    original_mask,
    start_command,
)

try:  # the C module: `signal` wraps it in enums (see supervise)
    import _signal as signal
except ImportError:  # pragma: no cover - not CPython
    import signal  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds before COMMAND starts
    from collections.abc import Callable, Iterable

EX_SOFTWARE = 70  # the resolver crashed: a bug in linkinit, not in the user's setup
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36


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


# -- COMMAND, then the slim watcher ------------------------------------------------------


def supervise(
    argv: list[str],
    env: dict[str, str],
    *,
    group: bool = False,
    grace: float = 5.0,
    slim: bool = True,
    keep_orphans: bool = False,
    kill_orphans: bool = False,
    stop_delay: float = 0.0,
    wait_all: bool = False,
    rewrite: dict[int, int] | None = None,
    remap_exit: Iterable[int] = (),
    follow: Follow | None = None,
    started: Callable[[int], object] | None = None,
) -> int:
    """Run COMMAND (argv, env as its whole environment) as our child; return our exit status.

    COMMAND is spawned first, so it never waits for what follows. With ``slim`` (the
    default) a process holding more than ``SMALL_ENOUGH_KB`` then re-executes a bare
    interpreter that only watches COMMAND, so what the CLI imported is no longer resident:
    the pid, the children, the signal mask and pending signals all survive the exec. A
    smaller one (or where the exec fails) watches in place.
    ``rewrite`` adds to (and overrides) the job-control rewrites of ``group`` mode;
    ``started(pid)`` is called once COMMAND runs, before the re-exec (READY=1 is sent there).
    """
    if not argv:
        raise ValueError("supervise() needs a command")
    mask = original_mask()
    _become_subreaper()
    pid, failed = start_command(argv, env, mask)
    if failed:
        return failed
    if started is not None:
        started(pid)
    rewrites = dict(GROUP_REWRITES) if group else {}
    rewrites.update(rewrite or {})
    watch = Watch(
        pid,
        group=group,
        grace=grace,
        keep_orphans=keep_orphans,
        kill_orphans=kill_orphans,
        stop_delay=stop_delay,
        wait_all=wait_all,
        rewrite=rewrites,
        remap_exit=remap_exit,
        title="linkinit: supervising " + " ".join(argv),
    )
    if follow is not None:
        follow.command = list(argv)
        follow.mask = mask
        watch.follow = follow
    if slim:
        if not _small_enough():
            _reexec_slim(watch)  # returns only if the exec failed
        _pid1._retitle(watch.title)
    _leave_cwd()
    return _watch(watch)


# PID 1 re-executes itself small only when it holds more than this (PID 1's target is 10 MB).
SMALL_ENOUGH_KB = 9 * 1024 + 512


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

    Import supervise.py as a top-level module from its directory, so the compiled copy in
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
    point (linkinit/frozen.py) then imports supervise alone.
    """
    executable = sys.executable
    if not executable:
        return None
    if getattr(sys, "frozen", False):
        return [executable, SLIM_WATCHER]
    script = os.path.abspath(_pid1.__file__)
    if not os.path.isfile(script):
        return None
    bootstrap = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); import supervise; del sys.path[0]; "
        "sys.exit(supervise._slim_main(sys.argv[1:]))"
    )
    return [executable, "-I", "-S", "-c", bootstrap, os.path.dirname(script)]


def libc_call(name: str, *args: object) -> int:
    """Call libc's ``name`` (an int result) through ``_ctypes``; 0, or the errno it set.

    ``_ctypes`` is the C core of the ctypes package, which is left out of the bundle:
    PyInstaller's bootstrap imports ctypes at every start when it is there (~8 ms, and
    ~0.5 MB in PID 1). These few lines are what ``ctypes.CDLL(None, use_errno=True).<name>``
    builds from it; imported only when called (prctl off PID 1 or for --pdeathsig, mount for
    ``secrets=files``). A Python built without it raises ImportError.
    """
    import _ctypes

    class Int(_ctypes._SimpleCData):  # ctypes.c_int
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):  # a CDLL's function: cdecl, errno kept, int result
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = Int

    class Libc:  # the program's own symbols, libc's among them: dlopen(NULL)
        _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # NULL: this program

    if Function((name, Libc()))(*args) != 0:  # type: ignore[arg-type]
        return _ctypes.get_errno() or -1
    return 0


def _prctl(option: int, value: int) -> None:
    errno = libc_call("prctl", option, value, 0, 0, 0)
    if errno:
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
