"""The resolver, isolated: run what comes before COMMAND in a forked child.

The resolver imports the Engine client, YAML, the retry library; none of that may stay
resident in the process that becomes PID 1's supervisor (supervise.py, standard library
only). So it runs in a forked child that leaves its answer in an anonymous file, while this
process keeps waiting for signals as PID 1 must: a stop signal meanwhile kills the child and
ends linkinit at once, without the Engine's 10 s of ``docker stop``.
"""

from __future__ import annotations

import errno
import os

from .supervise import (
    STOPS_WAIT,
    _flush_std,
    _reap,
    _send,
    _sent_to_us,
    _signal_name,
    _warn,
    block_signals,
)

try:  # the C module: `signal` wraps it in enums (see supervise)
    import _signal as signal
except ImportError:  # pragma: no cover - not CPython
    import signal  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds before COMMAND starts
    from collections.abc import Callable

EX_SOFTWARE = 70  # the resolver crashed: a bug in linkinit, not in the user's setup


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

