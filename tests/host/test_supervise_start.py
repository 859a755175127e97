"""COMMAND starts clean: signal state, cwd, stdin, environment, process group, terminal."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import termios
import time

import psutil
import pytest

from tests.support.processes import MODES, driver_argv, host_program, processes_fixture, wait_for

processes = processes_fixture()


def report(proc) -> dict:
    return json.loads(proc.line(10))


@pytest.mark.parametrize("mode", MODES)
def test_command_starts_with_an_empty_signal_mask(processes, mode):
    """linkinit blocks signals for itself; COMMAND gets the (empty) mask linkinit started with."""
    proc = processes(driver_argv(host_program("report_start.py"), mode=mode))
    assert report(proc)["SigBlk"] == "0000000000000000"
    assert proc.wait(5) == 0


@pytest.mark.parametrize("mode", MODES)
def test_command_starts_with_default_sigpipe_and_sigxfsz(processes, mode):
    """Python ignores SIGPIPE and SIGXFSZ; COMMAND must not inherit that (nothing ignored)."""
    proc = processes(driver_argv(["grep", "^SigIgn:", "/proc/self/status"], mode=mode))
    assert proc.stdout_rest().split() == ["SigIgn:", "0000000000000000"]


@pytest.mark.parametrize("mode", MODES)
def test_signal_ignored_by_whoever_started_linkinit_stays_ignored(processes, mode):
    """`nohup linkinit -- COMMAND`: an ignored SIGHUP is inherited by COMMAND as exec would
    pass it on (tini and dumb-init do the same); only SIGPIPE and SIGXFSZ, which Python itself
    ignores, are reset."""
    proc = processes(
        driver_argv(["grep", "^SigIgn:", "/proc/self/status"], mode=mode),
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    assert proc.stdout_rest().split() == ["SigIgn:", f"{1 << (signal.SIGHUP - 1):016x}"]


@pytest.mark.parametrize("mode", MODES)
def test_yes_piped_to_head_returns(processes, mode):
    """`yes | head -1` ends: yes dies of SIGPIPE as it should (an ignored SIGPIPE hangs it)."""
    proc = processes(driver_argv(["sh", "-c", "yes | head -1"], mode=mode))
    assert proc.wait(10) == 0
    assert proc.stdout_rest() == "y\n"


@pytest.mark.parametrize("mode", MODES)
def test_command_runs_in_the_callers_working_directory(processes, tmp_path, mode):
    """COMMAND's cwd is the one linkinit was started in."""
    proc = processes(driver_argv(host_program("report_start.py"), mode=mode), cwd=str(tmp_path))
    assert report(proc)["cwd"] == str(tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_linkinit_leaves_its_working_directory_once_command_runs(processes, tmp_path, mode):
    """linkinit moves to / after starting COMMAND (as dumb-init), so it never holds a mount
    busy; COMMAND keeps the directory it was started in."""
    proc = processes(driver_argv(host_program("print_signals.py"), mode=mode), cwd=str(tmp_path))
    proc.expect("ready")
    command = psutil.Process(proc.pid).children()[0]
    assert command.cwd() == str(tmp_path)
    wait_for(lambda: os.readlink(f"/proc/{proc.pid}/cwd") == "/", 5, what="linkinit in /")


def test_ps_shows_linkinit_supervising_command(processes):
    """The re-executed supervisor reads `linkinit: supervising COMMAND` in ps (cmdline) and
    is named linkinit (comm), not `python3 -I -S -c import sys; ...`."""
    proc = processes(driver_argv(["sleep", "30"]))
    wait_for(lambda: psutil.Process(proc.pid).children(), 5, what="COMMAND started")

    def retitled() -> bool:
        with open(f"/proc/{proc.pid}/comm") as comm:
            return comm.read() == "linkinit\n"

    wait_for(retitled, 5, what="comm set")
    shown = subprocess.run(["ps", "-o", "args=", "-p", str(proc.pid)], capture_output=True,
                           text=True, timeout=10, check=True).stdout
    assert shown.strip() == "linkinit: supervising sleep 30"


@pytest.mark.parametrize("mode", MODES)
def test_stdin_is_passed_through(processes, mode):
    """`echo 'exit 0' | linkinit -- sh` works: COMMAND reads linkinit's stdin."""
    proc = processes(driver_argv(["sh"], mode=mode), stdin=subprocess.PIPE)
    proc.popen.stdin.write(b"echo hello-from-stdin; exit 7\n")
    proc.popen.stdin.close()
    assert proc.wait(10) == 7
    assert proc.stdout_rest() == "hello-from-stdin\n"


@pytest.mark.parametrize("mode", MODES)
def test_environment_is_exactly_the_one_given(processes, mode):
    """COMMAND's environment is the resolver's, nothing added (no LC_CTYPE from Python)."""
    env = {"PATH": "/usr/bin:/bin", "ONLY": "this", "ODD": "a=b\tc", "EMPTY": ""}
    proc = processes(driver_argv(["env", "-0"], mode=mode), env=env)
    pairs = [e.partition("=") for e in proc.stdout_rest().split("\0") if e]
    assert {k: v for k, _, v in pairs} == env


@pytest.mark.parametrize("mode", MODES)
def test_command_leads_its_own_process_group(processes, mode):
    """COMMAND is its own group's leader, apart from linkinit (kill(0) and -g stay inside)."""
    proc = processes(driver_argv(host_program("report_start.py"), mode=mode))
    state = report(proc)
    assert state["pgid"] == state["pid"]
    assert state["ppid"] == proc.pid
    assert os.getpgid(proc.pid) != state["pgid"]


class Terminal:
    """A pseudo-terminal whose slave is the controlling terminal of what runs on it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.output = b""

    def preexec(self) -> None:  # runs after setsid in the child: take the terminal
        fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, wanted: bytes, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while wanted not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{wanted!r} not seen within {timeout} s: {self.output!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:  # EIO: every slave end closed
                    raise AssertionError(f"terminal closed; {self.output!r}") from None
        return self.output

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def terminal():
    term = Terminal()
    yield term
    term.close()


def on_terminal(processes, terminal, argv, **kwargs):
    return processes(
        argv,
        stdin=terminal.slave,
        stdout=terminal.slave,
        stderr=terminal.slave,
        preexec_fn=terminal.preexec,
        **kwargs,
    )


@pytest.mark.parametrize("mode", MODES)
def test_terminal_is_handed_to_command(processes, terminal, mode):
    """With a terminal (docker run -it), COMMAND's group becomes its foreground group."""
    proc = on_terminal(processes, terminal, driver_argv(host_program("report_start.py"), mode=mode))
    assert proc.wait(10) == 0
    line = terminal.read_until(b"}\r\n").split(b"\r\n")[0]
    state = json.loads(line)
    assert state["tty"] is True
    assert state["foreground"] is True


def test_ctrl_c_reaches_the_foreground_command_not_linkinit(processes, terminal):
    """^C on the terminal goes to COMMAND's group (the foreground), which exits on it."""
    argv = driver_argv(host_program("print_signals.py", "--exit-on", int(signal.SIGINT)))
    proc = on_terminal(processes, terminal, argv)
    terminal.read_until(b"ready")
    terminal.write(b"\x03")
    terminal.read_until(b"2 SIGINT")
    assert proc.wait(10) == 0


def test_interactive_shell_has_job_control(processes, terminal):
    """An interactive bash gets job control: ^Z stops its foreground job, `fg` resumes it,
    ^C ends it and not the shell."""
    env = {"PATH": "/usr/bin:/bin", "PS1": "$ ", "TERM": "dumb", "HOME": "/"}
    proc = on_terminal(
        processes, terminal, driver_argv(["bash", "--norc", "--noprofile", "-i"]), env=env
    )
    terminal.read_until(b"$ ")
    assert b"no job control" not in terminal.output
    terminal.write(b"sleep 30\n")
    time.sleep(0.3)  # let bash start the job before ^Z (no handshake exists for this)
    terminal.write(b"\x1a")
    terminal.read_until(b"Stopped")
    terminal.write(b"fg\n")
    terminal.read_until(b"fg\r\nsleep 30\r\n")  # bash names the job it resumes
    time.sleep(0.3)  # as above: let the job be foreground again before ^C
    terminal.write(b"\x03")
    terminal.write(b"echo after-$?\n")
    terminal.read_until(b"after-130")  # the job died of the ^C, bash lives on
    terminal.write(b"exit 3\n")
    assert proc.wait(10) == 3


@pytest.mark.parametrize(("small_enough_kb", "reexecuted"), [(0, True), (1 << 30, False)])
def test_pid1_reexecutes_itself_only_when_it_holds_more_than_a_watcher(processes,
                                                                       small_enough_kb,
                                                                       reexecuted):
    """Above ``SMALL_ENOUGH_KB`` the supervisor re-executes a bare interpreter (the driver's
    imports, json's C module among them, are gone from its memory map); at or below it, it
    keeps watching in place (a second interpreter start buys nothing). Either way ps shows
    `linkinit: supervising COMMAND`."""
    proc = processes(driver_argv(["sleep", "30"], "--small-enough", str(small_enough_kb)))
    wait_for(lambda: psutil.Process(proc.pid).children(), 5, what="COMMAND started")

    def retitled() -> bool:
        with open(f"/proc/{proc.pid}/comm") as comm:
            return comm.read() == "linkinit\n"

    wait_for(retitled, 5, what="comm set")
    with open(f"/proc/{proc.pid}/maps") as maps:
        mapped = maps.read()
    assert ("_json." not in mapped) == reexecuted
    shown = subprocess.run(["ps", "-o", "args=", "-p", str(proc.pid)], capture_output=True,
                           text=True, timeout=10, check=True).stdout
    assert shown.strip() == "linkinit: supervising sleep 30"
