"""Zombies are reaped: orphans, coalesced SIGCHLDs, early exits; leftovers cleaned up."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.processes import (
    MODES,
    PROGRAMS,
    PYTHON,
    driver_argv,
    host_program,
    proc_state,
    processes_fixture,
    zombies_after_exit,
)

processes = processes_fixture()


def orphan_pids(proc) -> list[int]:
    proc.expect("ready")
    words = proc.line(5).split()
    assert words[0] == "pids"
    return [int(p) for p in words[1:]]


@pytest.mark.parametrize("mode", MODES)
def test_orphans_reparented_to_linkinit_leave_no_zombie(processes, mode):
    """Orphans of COMMAND come to linkinit (subreaper here, PID 1 in a container) and are reaped."""
    proc = processes(driver_argv(host_program("make_orphans.py", 20, 0.3, 30), mode=mode))
    pids = orphan_pids(proc)
    assert len(pids) == 20
    assert zombies_after_exit(pids) == []
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 143


def test_zombie_check_detects_zombies_when_nobody_reaps(processes):
    """Negative control: under a subreaper that does not reap, the same orphans stay zombies."""
    control = [PYTHON, str(PROGRAMS / "no_reaper.py")]
    proc = processes([*control, *host_program("make_orphans.py", 5, 0.3, 30)])
    pids = orphan_pids(proc)
    assert sorted(zombies_after_exit(pids)) == sorted(pids)


@pytest.mark.parametrize("mode", MODES)
def test_command_exiting_with_its_orphans_coalesced_sigchld_keeps_its_status(processes, mode):
    """COMMAND and 30 orphans exit at the same instant: one SIGCHLD may stand for all of them;
    linkinit still finds COMMAND's status among them, and reaps every orphan. (--group: the
    mode that waits for leftovers outside PID 1; without it, an orphan a moment late would
    be left to the host's init.)"""
    argv = host_program("make_orphans.py", 30, 0.5, 30, "--exit-with", 42)
    for _ in range(3):
        proc = processes(driver_argv(argv, "--group", mode=mode))
        pids = orphan_pids(proc)
        assert proc.wait(10) == 42
        assert all(_gone(p) for p in pids)


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("mode", MODES)
def test_instant_exit_many_times_never_hangs(processes, mode):
    """A COMMAND that exits at once (its SIGCHLD may come before linkinit waits) never hangs."""
    for i in range(40):
        proc = processes(driver_argv(["true"] if i % 2 else ["false"], mode=mode))
        assert proc.wait(5) == (1 if i % 2 == 0 else 0)


@pytest.mark.parametrize("mode", MODES)
def test_leftovers_are_left_alone_outside_pid1_without_group(processes, mode):
    """Not PID 1 and no --group (tini's and dumb-init's default): when COMMAND exits, what it
    left in the background keeps running, and linkinit exits at once with its status."""
    command = ["sh", "-c", "sleep 30 & echo $!; exit 5"]
    proc = processes(driver_argv(command, "--grace", "10", mode=mode))
    leftover = int(proc.line(5))
    try:
        assert proc.wait(5) == 5
        assert proc_state(leftover) in ("S", "R")
    finally:
        os.kill(leftover, signal.SIGKILL)


def test_keep_orphans_leaves_leftovers_alone_in_group_mode(processes):
    """--keep-orphans turns the clean-up off where it is on (--group here, PID 1 in a
    container): the leftover lives on."""
    command = ["sh", "-c", "sleep 30 & echo $!; exit 5"]
    proc = processes(driver_argv(command, "--group", "--keep-orphans"))
    leftover = int(proc.line(5))
    try:
        assert proc.wait(5) == 5
        assert proc_state(leftover) in ("S", "R")
    finally:
        os.kill(leftover, signal.SIGKILL)


@pytest.mark.parametrize("mode", MODES)
def test_group_mode_leftovers_get_term_when_command_exits(processes, mode):
    """With --group, when COMMAND exits a background child it left is TERMed: linkinit ends at
    once."""
    command = ["sh", "-c", "sleep 30 & echo $!; exit 5"]
    proc = processes(driver_argv(command, "--group", "--grace", "10", mode=mode))
    leftover = int(proc.line(5))
    started = time.monotonic()
    assert proc.wait(5) == 5
    assert time.monotonic() - started < 3
    assert _gone(leftover)


def test_group_mode_leftover_ignoring_term_is_killed_after_grace(processes):
    """A leftover that ignores TERM is KILLed once the grace time is over, not before."""
    command = ["sh", "-c", "trap '' TERM; sleep 30 & echo $!; exit 6"]
    proc = processes(driver_argv(command, "--group", "--grace", "1"))
    leftover = int(proc.line(5))
    started = time.monotonic()
    assert proc.wait(10) == 6
    elapsed = time.monotonic() - started
    assert 0.8 <= elapsed < 4, elapsed
    assert _gone(leftover)


def test_group_mode_setsid_descendant_is_cleaned_up_too(processes):
    """With --group, a descendant that left COMMAND's group and session is still found and
    TERMed."""
    command = ["sh", "-c", "setsid sleep 30 & echo $!; exit 0"]
    proc = processes(driver_argv(command, "--group", "--grace", "5"))
    leftover = int(proc.line(5))
    assert proc.wait(5) == 0
    assert _gone(leftover)
