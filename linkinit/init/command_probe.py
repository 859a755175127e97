"""``wait=exec:CMD``: a command of the user's, run in the parent, says whether a child is ready.

The command runs as ``sh -c CMD`` with the link's variables under the parent's own (as
COMMAND will get them), and the child is ready when it exits 0. Each try is bounded: at
``TRY_SECONDS`` the command's process group is killed and the try counts as not ready.

Spawned with ``posix_spawn`` as supervise.py spawns COMMAND, and for the same reasons: the
resolver runs with the forwardable signals blocked and SIGPIPE ignored, which ``subprocess``
would pass on. Imported only when a link declares ``exec:`` (readiness.py).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

from linkinit.init.probes import Answer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Mapping, Optional

TRY_SECONDS = 5.0  # one run of the command at most; then its process group is killed
OUTPUT_KEPT = 4096  # the end of its output is kept, for the last line in progress lines


def run(command: str, environ: Mapping[str, str], timeout: float = TRY_SECONDS,
        clock: Callable[[], float] = time.monotonic) -> Answer:
    """Run ``sh -c command`` once; ready on exit 0. What it said is its status, and its
    output the last line it printed (stdout and stderr together)."""
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            "/bin/sh", ["sh", "-c", command], dict(environ),
            file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                          (os.POSIX_SPAWN_DUP2, write_end, 1),
                          (os.POSIX_SPAWN_DUP2, write_end, 2),
                          (os.POSIX_SPAWN_CLOSE, read_end)],
            setpgroup=0, setsigmask=(), setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except OSError as error:
        os.close(read_end)
        return Answer(False, f"cannot run /bin/sh: {error.strerror}")
    finally:
        os.close(write_end)
    deadline = clock() + timeout
    try:
        output, finished = _collect(read_end, deadline, clock)
    finally:
        os.close(read_end)
    status = _end(pid, finished and _exits(pid, deadline, clock))
    return judge(status, output, timeout)


def _collect(fd: int, deadline: float, clock: Callable[[], float]) -> tuple[bytes, bool]:
    """The end of what the command writes, until it closes its output (True) or the
    deadline (False)."""
    kept = b""
    while True:
        remaining = deadline - clock()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return kept, False
        chunk = os.read(fd, 65536)
        if not chunk:
            return kept, True
        kept = (kept + chunk)[-OUTPUT_KEPT:]


def _exits(pid: int, deadline: float, clock: Callable[[], float]) -> bool:
    """Whether the command exits by the deadline (its output closed: it is about to), seen
    without reaping it (``WNOWAIT``)."""
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if clock() >= deadline:
            return False
        time.sleep(0.002)


def _end(pid: int, exited: bool) -> Optional[int]:
    """Its exit status (None when it ran out of time); whatever it left in its process
    group is killed, before it is reaped so that the group cannot be another's by then."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if exited else None


def judge(status: Optional[int], output: bytes, timeout: float) -> Answer:
    """Exit 0 is ready; the answer names the status, with the last line of output."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    last = lines[-1].strip()[:120] if lines else ""
    if status is None:
        return Answer(False, f"still running after {timeout:g}s (killed)", last)
    if status < 0:
        return Answer(False, f"killed by signal {-status}", last)
    return Answer(status == 0, f"exited {status}", last)
