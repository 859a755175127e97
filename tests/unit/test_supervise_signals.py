"""Signals reach COMMAND: each forwardable one, to its group with --group, none lost at start."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import psutil
import pytest

from linkinit import supervise
from tests.programs.harness import (
    MODES,
    driver_argv,
    proc_state,
    processes_fixture,
    program,
    wait_for,
)

processes = processes_fixture()

# Job-control signals are tested on their own: linkinit stops itself after passing them on.
PLAIN = sorted(set(supervise.FORWARDED) - {signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


@pytest.mark.parametrize("mode", MODES)
def test_every_forwardable_signal_reaches_command(processes, mode):
    """Each signal an init passes on (TERM, INT, HUP, ..., real-time ones) reaches COMMAND."""
    proc = processes(driver_argv(program("print_signals.py"), mode=mode))
    proc.expect("ready")
    for sig in PLAIN:
        os.kill(proc.pid, sig)
        assert proc.line(5).split()[0] == str(sig), f"signal {sig}: seen {proc.seen}"


def test_forwarded_set_covers_the_usual_signals():
    """TERM, INT, HUP, QUIT, USR1, USR2, WINCH, ALRM, CONT and job control are passed on."""
    usual = {"SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH",
             "SIGALRM", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU"}
    assert usual <= {signal.Signals(s).name for s in supervise.FORWARDED if s < signal.SIGRTMIN}
    assert signal.SIGCHLD not in supervise.FORWARDED
    assert signal.SIGKILL not in supervise.FORWARDED


@pytest.mark.parametrize("mode", MODES)
def test_command_honouring_term_ends_linkinit_with_its_status(processes, mode):
    """TERM to linkinit reaches a COMMAND that exits on it; linkinit exits with COMMAND's 0."""
    proc = processes(driver_argv(program("print_signals.py", "--exit-on", 15), mode=mode))
    proc.expect("ready")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 0


@pytest.mark.parametrize("mode", MODES)
def test_term_during_resolve_ends_linkinit_at_once_with_143(processes, mode):
    """A stop while the resolver waits kills it and exits 128+15 at once, not after the wait."""
    proc = processes(driver_argv(program("print_signals.py"), "--work", "sleep:30", mode=mode))
    proc.expect("resolving")
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 143
    assert time.monotonic() - started < 2
    assert "stopped by SIGTERM" in proc.stderr()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_other_stop_signals_during_resolve_exit_128_plus_n(processes, sig):
    """INT, HUP and QUIT during the resolver's wait end linkinit with 128+N too."""
    proc = processes(driver_argv(program("print_signals.py"), "--work", "sleep:30"))
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
        driver_argv(program("report_start.py", "--wait-pending", winch), "--work", "sleep:1"),
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGWINCH}),
    )
    proc.expect("resolving")
    os.kill(proc.pid, signal.SIGWINCH)
    report = json.loads(proc.line(10))
    assert int(report["pending"], 16) & (1 << (winch - 1))
    assert int(report["SigBlk"], 16) == 1 << (winch - 1)  # the original mask, given back


def test_signal_right_after_start_is_not_lost(processes):
    """TERM sent the moment linkinit blocks signals, before COMMAND exists, still ends it."""
    proc = processes(driver_argv(program("print_signals.py", "--exit-on", 15)))
    blocked = 1 << (signal.SIGTERM - 1)

    def term_blocked() -> bool:
        try:
            with open(f"/proc/{proc.pid}/status") as status:
                line = next(x for x in status if x.startswith("SigBlk:"))
        except (OSError, StopIteration):
            return False
        return bool(int(line.split()[1], 16) & blocked)

    wait_for(term_blocked, timeout=10, what="linkinit blocking TERM")
    os.kill(proc.pid, signal.SIGTERM)
    # COMMAND may not exist yet, or not have its handlers yet (TERM kills it: 143), or exit
    # on it (0); a lost TERM leaves it running and this bounded wait fails.
    assert proc.wait(10) in (0, 143)


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
    """Without --group, `sh -c 'yes | tail'` alone gets TERM; linkinit then TERMs the rest."""
    proc = processes(
        driver_argv(["sh", "-c", "echo ready; yes | tail -f /dev/null"], "--grace", "5")
    )
    proc.expect("ready")

    wait_for(lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= 3, 5)
    family = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 143  # the shell died of TERM; its pipeline got the cleanup TERM
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_job_control_signals_are_passed_on_then_linkinit_stops_until_cont(processes):
    """TSTP reaches COMMAND, then linkinit stops itself (not PID 1); CONT resumes both."""
    proc = processes(driver_argv(program("print_signals.py")))
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
    proc = processes(driver_argv(program("kill_group.py", int(signal.SIGKILL))))
    assert proc.wait(10) == 137


def test_send_refuses_pid_zero_and_negatives(processes):
    """The guard on kill: pid 0 (our group) and -1 (everyone) are never signalled."""
    code = (
        "import os, signal\n"
        "from linkinit import supervise\n"
        "signal.signal(signal.SIGUSR1, lambda *a: os.write(1, b'hit\\n'))\n"
        "print(supervise._send(0, signal.SIGUSR1), supervise._send(-1, signal.SIGUSR1),"
        " supervise._send_group(0, signal.SIGUSR1), supervise._send_group(1, signal.SIGUSR1),"
        " flush=True)\n"
    )
    proc = processes([sys.executable, "-c", code])
    assert proc.stdout_rest(10).split() == ["False", "False", "False", "False"]
