"""Host-side helpers for tests that start processes: the driver, reads, the one waiter.

Every wait here has a deadline; every process tree started is killed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Optional, Sequence

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"  # the cooperating programs
PYTHON = sys.executable
MODES = ("slim", "in-place")  # supervise re-executing a bare interpreter, or not


def host_program(name: str, *args: Any) -> list[str]:
    """argv running one of the cooperating programs with this interpreter."""
    return [PYTHON, str(PROGRAMS / name), *(str(a) for a in args)]


class Running:
    """A started process with line-by-line reads of its stdout, each with a deadline."""

    def __init__(self, popen: subprocess.Popen, stderr: IO[bytes]) -> None:
        self.popen = popen
        self._stderr = stderr
        self._buffer = b""
        self.seen: list[str] = []

    @property
    def pid(self) -> int:
        return self.popen.pid

    def line(self, timeout: float = 10.0) -> str:
        """The next stdout line; fails on EOF or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        fd = self.popen.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line within {timeout} s; seen {self.seen}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError(f"EOF; seen {self.seen}; stderr {self.stderr()!r}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n", 1)
        text = raw.decode(errors="replace").rstrip("\r")
        self.seen.append(text)
        return text

    def expect(self, wanted: str, timeout: float = 10.0) -> None:
        """Read lines until one equals ``wanted``, all within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.line(max(0.01, deadline - time.monotonic())) != wanted:
            pass

    def wait(self, timeout: float = 10.0) -> int:
        """The exit status (negative: killed by that signal); fails after ``timeout``."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s; seen {self.seen}") from None

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stdout_rest(self, timeout: float = 10.0) -> str:
        """Everything left on stdout up to EOF (the process must end within ``timeout``)."""
        self.wait(timeout)
        rest = self._buffer + self.popen.stdout.read()
        self._buffer = b""
        return rest.decode(errors="replace")

    def kill_tree(self) -> None:
        """Teardown: SIGKILL the process and every descendant (orphans included)."""
        import psutil

        try:
            family = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for pid in [self.pid, *(p.pid for p in family)]:
            if pid > 0:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._stderr.close()


def launch(
    argv: Sequence[str],
    *,
    stdin: Any = subprocess.DEVNULL,
    cwd: Optional[str] = None,
    env: Optional[dict] = None,
    preexec_fn: Optional[Callable[[], None]] = None,
    stdout: Any = subprocess.PIPE,
    stderr: Any = None,
) -> Running:
    """Start argv in its own session (no terminal of ours leaks in) with stdout piped and
    stderr kept in a file (or sent to ``stderr`` if given). It starts with no signal ignored,
    as in a container, whatever the test run inherited (``nohup pytest`` ignores SIGHUP);
    ``preexec_fn`` runs after that, to set up what a test wants."""
    kept = tempfile.TemporaryFile()  # noqa: SIM115 - closed by Running.kill_tree

    def prepare() -> None:
        unignore_all()
        if preexec_fn is not None:
            preexec_fn()

    popen = subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=stdout,
        stderr=kept if stderr is None else stderr,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=prepare,
    )
    return Running(popen, kept)


def unignore_all() -> None:
    """Every ignored signal back to its default action (in a child, before exec)."""
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


def driver_argv(command: Sequence[str], *options: str, mode: str = "slim") -> list[str]:
    """argv for the driver: supervise.py used exactly as cli.main uses it."""
    extra = ["--in-place"] if mode == "in-place" else []
    return [PYTHON, str(PROGRAMS / "supervise_driver.py"), *options, *extra, "--", *command]


def proc_state(pid: int) -> Optional[str]:
    """The state letter /proc shows (``Z`` for a zombie), or None once the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0].decode()
    except (FileNotFoundError, ProcessLookupError):
        return None


def zombies_after_exit(pids: Sequence[int], timeout: float = 10.0, settle: float = 0.5) -> list:
    """Wait until each pid is gone or a zombie, give a reaper ``settle`` s, return zombies."""
    deadline = time.monotonic() + timeout
    while any(proc_state(p) not in (None, "Z") for p in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes still running after {timeout} s")
        time.sleep(0.02)
    settle_until = time.monotonic() + settle
    while time.monotonic() < settle_until and any(proc_state(p) == "Z" for p in pids):
        time.sleep(0.02)
    return [p for p in pids if proc_state(p) == "Z"]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` every 20 ms until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)


def _processes_fixture():  # a pytest fixture, made below without importing pytest at the top
    started: list[Running] = []

    def start(argv: Sequence[str], **kwargs: Any) -> Running:
        running = launch(argv, **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.kill_tree()


def processes_fixture() -> Any:
    """``processes``: start(argv, **launch kwargs) -> Running; every tree killed at teardown."""
    import pytest

    return pytest.fixture(name="processes")(_processes_fixture)
