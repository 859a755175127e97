"""Signals reach COMMAND: each forwardable one, to its group with --group, none lost at start."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from linkinit.init import supervise
from tests.support.processes import (
    MODES,
    driver_argv,
    host_program,
    proc_state,
    processes_fixture,
    wait_for,
)

processes = processes_fixture()

# Job-control signals are tested on their own: linkinit stops itself after passing them on.
PLAIN = sorted(set(supervise.FORWARDED) - {signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
FAULTS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
          signal.SIGSYS, signal.SIGPIPE, signal.SIGXFSZ}


@pytest.mark.parametrize("mode", MODES)
def test_every_forwardable_signal_reaches_command(processes, mode):
    """Each signal an init passes on (TERM, INT, HUP, ..., real-time ones) reaches COMMAND."""
    proc = processes(driver_argv(host_program("print_signals.py"), mode=mode))
    proc.expect("ready")
    for sig in PLAIN:
        os.kill(proc.pid, sig)
        assert proc.line(5).split()[0] == str(sig), f"signal {sig}: seen {proc.seen}"


def test_forwarded_set_is_every_signal_but_kill_stop_and_chld():
    """Every signal a process can be sent is passed on (the fault signals too, when a user
    sends them); KILL and STOP cannot be caught, CHLD is linkinit's own."""
    uncatchable = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
    assert set(supervise.FORWARDED) == set(signal.valid_signals()) - uncatchable
    assert set(supervise.FORWARDED) >= FAULTS


@pytest.mark.parametrize("mode", MODES)
def test_command_honouring_term_ends_linkinit_with_its_status(processes, mode):
    """TERM to linkinit reaches a COMMAND that exits on it; linkinit exits with COMMAND's 0."""
    proc = processes(driver_argv(host_program("print_signals.py", "--exit-on", 15), mode=mode))
    proc.expect("ready")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 0


@pytest.mark.parametrize("mode", MODES)
def test_term_during_resolve_ends_linkinit_at_once_with_143(processes, mode):
    """A stop while the resolver waits kills it and exits 128+15 at once, not after the wait."""
    proc = processes(driver_argv(host_program("print_signals.py"), "--work", "sleep:30", mode=mode))
    proc.expect("resolving")
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 143
    assert time.monotonic() - started < 2
    assert "stopped by SIGTERM" in proc.stderr()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_other_stop_signals_during_resolve_exit_128_plus_n(processes, sig):
    """INT, HUP and QUIT during the resolver's wait end linkinit with 128+N too."""
    proc = processes(driver_argv(host_program("print_signals.py"), "--work", "sleep:30"))
    proc.expect("resolving")
    os.kill(proc.pid, sig)
    assert proc.wait(5) == 128 + sig


def test_harmless_signal_during_resolve_is_kept_for_command(processes):
    """A WINCH that arrives before COMMAND runs is not lost: it is passed on once COMMAND runs.

    linkinit is started with WINCH blocked, so COMMAND inherits that mask and the forwarded
    WINCH stays pending where report_start sees it (a handler would race COMMAND's start).
    """
    winch = int(signal.SIGWINCH)
    proc = processes(
        driver_argv(host_program("report_start.py", "--wait-pending", winch), "--work", "sleep:1"),
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGWINCH}),
    )
    proc.expect("resolving")
    os.kill(proc.pid, signal.SIGWINCH)
    report = json.loads(proc.line(10))
    assert int(report["pending"], 16) & (1 << (winch - 1))
    assert int(report["SigBlk"], 16) == 1 << (winch - 1)  # the original mask, given back


@pytest.mark.parametrize(
    ("point", "statuses"),
    [("blocked", {143}), ("resolved", {0, 143})],
    ids=["before-the-resolver", "before-command-starts"],
)
def test_signal_right_after_start_is_not_lost(processes, point, statuses):
    """TERM sent the moment linkinit blocks signals, or once the resolver is done and before
    COMMAND exists, still ends it.

    The driver holds at that point until the test has sent TERM (a handshake: the windows last
    milliseconds). Held right after blocking, TERM is pending when the resolver starts: a stop
    during the wait, 143. Held before COMMAND starts, TERM is passed on to it: it exits on it
    (0), or dies of it before its handler is in place (143). A lost TERM leaves COMMAND
    running and the bounded wait fails.
    """
    proc = processes(
        driver_argv(host_program("print_signals.py", "--exit-on", 15), "--hold-at", point),
        stdin=subprocess.PIPE,
    )
    proc.expect(point)
    os.kill(proc.pid, signal.SIGTERM)
    proc.popen.stdin.write(b"go\n")
    proc.popen.stdin.close()
    assert proc.wait(10) in statuses


@pytest.mark.parametrize("mode", MODES)
def test_group_mode_signals_the_whole_pipeline(processes, mode):
    """With --group a TERM reaches every process of COMMAND's group: `yes | tail` all gone."""
    proc = processes(
        driver_argv(["sh", "-c", "echo ready; yes | tail -f /dev/null"], "--group", mode=mode)
    )
    proc.expect("ready")
    wait_for(lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= 3, 5)
    family = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 143
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_without_group_mode_only_command_gets_the_signal(processes):
    """Without --group, `sh -c 'yes | tail'` alone gets TERM; outside PID 1 linkinit then
    leaves the rest of the pipeline alone (as tini and dumb-init do)."""
    proc = processes(
        driver_argv(["sh", "-c", "echo ready; yes | tail -f /dev/null"], "--grace", "5")
    )
    proc.expect("ready")

    wait_for(lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= 3, 5)
    family = psutil.Process(proc.pid).children(recursive=True)
    try:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(5) == 143  # the shell died of TERM
        left = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert sorted(p.name() for p in left) == ["tail", "yes"]
    finally:
        kill_all(family)


def kill_all(family: list[psutil.Process]) -> None:
    """Teardown for processes that outlived linkinit (no longer its descendants)."""
    for process in family:
        with contextlib.suppress(psutil.Error):
            process.kill()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sig", sorted(FAULTS))
def test_fault_signals_sent_with_kill_reach_command_and_linkinit_lives(processes, mode, sig):
    """SEGV, BUS, FPE, ILL, TRAP, SYS, PIPE, XFSZ sent by `kill` are a user's signals: passed
    on like any other, and linkinit (not PID 1 here) does not die of them."""
    proc = processes(driver_argv(host_program("print_signals.py"), mode=mode))
    proc.expect("ready")
    os.kill(proc.pid, sig)
    assert proc.line(5).split()[0] == str(int(sig))
    os.kill(proc.pid, signal.SIGUSR1)
    assert proc.line(5).split()[0] == str(int(signal.SIGUSR1))
    assert proc_state(proc.pid) in ("S", "R")


class Info:
    """What sigwaitinfo returns, for the origin rule alone."""

    def __init__(self, signo: int, code: int, pid: int) -> None:
        self.si_signo, self.si_code, self.si_pid = signo, code, pid


@pytest.mark.parametrize(
    ("info", "acted_on"),
    [
        (Info(signal.SIGSEGV, 0, 4242), True),  # SI_USER: kill -SEGV from another process
        (Info(signal.SIGSEGV, -1, 4242), True),  # SI_QUEUE: sigqueue
        (Info(signal.SIGSEGV, -6, 4242), True),  # SI_TKILL: tgkill
        (Info(signal.SIGSEGV, 1, 0), False),  # SEGV_MAPERR: the kernel, a fault of ours
        (Info(signal.SIGBUS, 4, 0), False),  # BUS_MCEERR_AO: the kernel
        (Info(signal.SIGPIPE, 0, os.getpid()), False),  # our own write to a closed pipe
        (Info(signal.SIGXFSZ, 0, os.getpid()), False),  # our own write past RLIMIT_FSIZE
        (Info(signal.SIGPIPE, 0, 4242), True),  # kill -PIPE from another process
        (Info(signal.SIGTERM, 0x80, 0), True),  # SI_KERNEL: e.g. a tty's signal, still ours
        (Info(signal.SIGWINCH, 0x80, 0), True),
    ],
)
def test_fault_signals_are_acted_on_only_when_another_process_sent_them(info, acted_on):
    """The rule behind the test above: a fault signal the kernel raised in linkinit (si_code
    > 0), or one linkinit raised by its own write (its own pid), is not passed on."""
    assert supervise._sent_to_us(info) is acted_on


@pytest.mark.parametrize("mode", MODES)
def test_group_mode_stops_the_whole_group_on_tstp_and_cont_resumes_it(processes, mode):
    """With --group, TSTP/TTIN/TTOU become STOP for COMMAND's group (a COMMAND that catches
    TSTP stops too), linkinit stops itself; CONT resumes linkinit, then the group."""
    proc = processes(driver_argv(host_program("print_signals.py"), "--group", mode=mode))
    proc.expect("ready")
    command = psutil.Process(proc.pid).children()[0].pid
    for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        os.kill(proc.pid, sig)
        wait_for(lambda: proc_state(proc.pid) == proc_state(command) == "T", 5,
                 what="linkinit and COMMAND stopped")
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.line(5) == f"{int(signal.SIGCONT)} SIGCONT"  # not TSTP: it got STOP
        assert proc_state(proc.pid) in ("S", "R")
        assert proc_state(command) in ("S", "R")


def test_rewrite_overrides_the_group_mode_stop(processes):
    """--rewrite TSTP:TSTP in --group mode passes TSTP on as it is: a COMMAND that catches it
    keeps running; linkinit still stops itself until CONT."""
    tstp = int(signal.SIGTSTP)
    proc = processes(
        driver_argv(host_program("print_signals.py"), "--group", "--rewrite", f"{tstp}:{tstp}")
    )
    proc.expect("ready")
    os.kill(proc.pid, signal.SIGTSTP)
    assert proc.line(5) == f"{tstp} SIGTSTP"
    wait_for(lambda: proc_state(proc.pid) == "T", 5, what="linkinit stopped")
    os.kill(proc.pid, signal.SIGCONT)
    assert proc.line(5) == f"{int(signal.SIGCONT)} SIGCONT"


@pytest.mark.parametrize("mode", MODES)
def test_rewrite_turns_one_signal_into_another_and_zero_drops_it(processes, mode):
    """--rewrite 15:3 makes TERM arrive as QUIT (nginx's graceful stop); --rewrite 10:0 drops
    USR1: the next signal COMMAND sees is the USR2 sent after it."""
    proc = processes(
        driver_argv(host_program("print_signals.py"), "--rewrite", "15:3", "--rewrite", "10:0",
                    mode=mode)
    )
    proc.expect("ready")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.line(5) == "3 SIGQUIT"
    os.kill(proc.pid, signal.SIGUSR1)
    os.kill(proc.pid, signal.SIGUSR2)
    assert proc.line(5) == f"{int(signal.SIGUSR2)} SIGUSR2"


@pytest.mark.parametrize("mode", MODES)
def test_pdeathsig_turns_the_parents_death_into_a_signal_for_command(processes, mode):
    """--pdeathsig USR1: when linkinit's parent dies, the kernel sends linkinit USR1, which
    reaches COMMAND like any signal (tini -p)."""
    usr1 = int(signal.SIGUSR1)
    argv = driver_argv(host_program("print_signals.py"), "--pdeathsig", str(usr1), mode=mode)
    proc = processes(host_program("parent_until_eof.py", *argv), stdin=subprocess.PIPE)
    proc.expect("ready")
    family = psutil.Process(proc.pid).children(recursive=True)  # orphans once the parent exits
    try:
        proc.popen.stdin.close()  # the parent exits
        assert proc.line(5) == f"{usr1} SIGUSR1"
    finally:
        kill_all(family)


def test_job_control_signals_are_passed_on_then_linkinit_stops_until_cont(processes):
    """TSTP reaches COMMAND, then linkinit stops itself (not PID 1); CONT resumes both."""
    proc = processes(driver_argv(host_program("print_signals.py")))
    proc.expect("ready")
    for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        os.kill(proc.pid, sig)
        assert proc.line(5).split()[0] == str(int(sig))
        wait_for(lambda: proc_state(proc.pid) == "T", 5, what="linkinit stopped")
        os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: proc_state(proc.pid) in ("S", "R"), 5, what="linkinit resumed")
        assert proc.line(5) == f"{int(signal.SIGCONT)} SIGCONT"


def test_stop_passed_on_stops_a_default_command_and_cont_resumes_it(processes):
    """A COMMAND with default dispositions is stopped by a forwarded TSTP and resumed by CONT."""
    proc = processes(driver_argv(["sh", "-c", "echo ready; sleep 30"]))
    proc.expect("ready")
    shell = psutil.Process(proc.pid).children()[0]
    os.kill(proc.pid, signal.SIGTSTP)
    wait_for(lambda: shell.status() == psutil.STATUS_STOPPED, 5, what="COMMAND stopped")
    os.kill(proc.pid, signal.SIGCONT)
    wait_for(lambda: shell.status() != psutil.STATUS_STOPPED, 5, what="COMMAND resumed")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 143


def test_kill_zero_from_a_forked_child_does_not_reach_linkinit(processes):
    """COMMAND's child calling kill(0, KILL) kills COMMAND's group, not linkinit: status 137."""
    proc = processes(driver_argv(host_program("kill_group.py", int(signal.SIGKILL))))
    assert proc.wait(10) == 137


def test_send_refuses_pid_zero_and_negatives(processes):
    """The guard on kill: pid 0 (our group) and -1 (everyone) are never signalled."""
    code = (
        "import os, signal\n"
        "from linkinit.init import supervise\n"
        "signal.signal(signal.SIGUSR1, lambda *a: os.write(1, b'hit\\n'))\n"
        "print(supervise._send(0, signal.SIGUSR1), supervise._send(-1, signal.SIGUSR1),"
        " supervise._send_group(0, signal.SIGUSR1), supervise._send_group(1, signal.SIGUSR1),"
        " flush=True)\n"
    )
    proc = processes([sys.executable, "-c", code])
    assert proc.stdout_rest(10).split() == ["False", "False", "False", "False"]
