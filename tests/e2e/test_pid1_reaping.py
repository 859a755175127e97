"""linkinit as PID 1 reaps every zombie, survives the known init traps, cleans up on exit."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

from .pid1_helpers import (
    containers_fixture,
    image_program,
    logs,
    process_table,
    run_as_child,
    run_pid1,
    wait_exit,
    wait_log,
)

containers = containers_fixture()


def orphans_of(container) -> list[int]:
    text = wait_log(container, "pids ")
    line = next(x for x in text.splitlines() if x.startswith("pids "))
    return [int(p) for p in line.split()[1:]]


def defunct_after_orphans_exit(container, pids: list[int], timeout: float = 15) -> list[dict]:
    """Wait until none of ``pids`` runs (each gone or <defunct>), then what is <defunct>."""
    deadline = time.monotonic() + timeout
    while True:
        table = process_table(container)
        alive = [r for r in table if r["pid"] in pids and not r["stat"].startswith("Z")]
        if not alive:
            break
        assert time.monotonic() < deadline, f"orphans still running: {alive}"
        time.sleep(0.1)
    time.sleep(0.5)  # a reaper's moment
    return [r for r in process_table(container) if r["stat"].startswith("Z")]


def test_orphans_leave_no_defunct_entries(containers):
    """20 orphans re-parented to PID 1 exit; `ps` then shows no <defunct> process."""
    container = run_pid1(containers, image_program("make_orphans.py", 20, 0.5, 60))
    pids = orphans_of(container)
    assert len(pids) == 20
    assert defunct_after_orphans_exit(container, pids) == []


def test_zombie_check_sees_defunct_entries_without_an_init(containers):
    """Negative control: with the orphan maker itself as PID 1 (no init), <defunct> stays."""
    container = containers(image_program("make_orphans.py", 5, 0.5, 60))
    pids = orphans_of(container)
    zombies = defunct_after_orphans_exit(container, pids)
    assert sorted(r["pid"] for r in zombies) == sorted(pids)


def test_command_exiting_with_its_orphans_keeps_its_status(containers):
    """COMMAND and 30 orphans exit together (coalesced SIGCHLD): the status is COMMAND's 42."""
    orphans = image_program("make_orphans.py", 30, 0.5, 60, "--exit-with", 42)
    container = run_pid1(containers, orphans)
    assert wait_exit(container) == 42, logs(container)


def test_instant_exit_many_times_never_hangs(containers):
    """A COMMAND that exits before PID 1 waits for it (early SIGCHLD), 16 times: no hang."""
    made = [run_pid1(containers, ["true"] if i % 2 else ["false"]) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda c: wait_exit(c, timeout=60), made))
    assert statuses == [1 if i % 2 == 0 else 0 for i in range(16)]


def test_kill_zero_from_a_forked_child_ends_command_not_linkinit(containers):
    """COMMAND's child calls kill(0, TERM): COMMAND's group dies; PID 1 is not in it and
    reports 143."""
    container = run_pid1(containers, image_program("kill_group.py", int(signal.SIGTERM)))
    assert wait_exit(container) == 143


def test_leftovers_get_term_when_command_exits(containers):
    """COMMAND exits leaving a child that honours TERM: the child gets TERM, the container
    ends at once with COMMAND's status."""
    script = (
        "(trap 'echo leftover-got-term; exit 0' TERM; echo leftover-ready; "
        "sleep 30 & wait) & sleep 0.5; exit 5"
    )
    container = run_pid1(containers, ["sh", "-c", script], "--grace", "10")
    started = time.monotonic()
    assert wait_exit(container) == 5
    assert time.monotonic() - started < 5
    assert "leftover-got-term" in logs(container)


def test_leftover_ignoring_term_is_killed_after_grace(containers):
    """A leftover that ignores TERM holds the container for --grace seconds, then is KILLed."""
    script = "(trap '' TERM; sleep 30) & sleep 0.3; echo exiting; exit 6"
    container = run_pid1(containers, ["sh", "-c", script], "--grace", "2")
    wait_log(container, "exiting")
    started = time.monotonic()
    assert wait_exit(container) == 6
    assert 1.0 < time.monotonic() - started < 6


LEFTOVER = (
    "(trap 'echo leftover-got-term; exit 0' TERM; echo leftover-ready; sleep 30 & wait) & "
    "sleep 0.5; exit 5"
)


def test_keep_orphans_as_pid1_exits_at_once_without_terming_leftovers(containers):
    """--keep-orphans as PID 1: COMMAND's status at once; its leftover gets no TERM from
    linkinit (the kernel ends it with PID 1, as under tini)."""
    container = run_pid1(containers, ["sh", "-c", LEFTOVER], "--keep-orphans", "--grace", "10")
    started = time.monotonic()
    assert wait_exit(container) == 5
    assert time.monotonic() - started < 5
    assert "leftover-ready" in logs(container)
    assert "leftover-got-term" not in logs(container)


def leftover_running(container) -> bool:
    return any(r["args"] == "sleep 30" and not r["stat"].startswith("Z")
               for r in process_table(container))


def test_leftovers_live_on_when_linkinit_is_not_pid1(containers):
    """linkinit under a shell, no --group: COMMAND's leftover is not TERMed when COMMAND exits
    (as tini and dumb-init): it may be meant to outlive it."""
    container = run_as_child(containers, ["sh", "-c", LEFTOVER])
    wait_log(container, "linkinit exited 5")
    assert "leftover-got-term" not in logs(container)
    assert leftover_running(container)


def test_group_mode_leftovers_get_term_when_linkinit_is_not_pid1(containers):
    """linkinit under a shell with --group: the leftover gets TERM when COMMAND exits."""
    container = run_as_child(containers, ["sh", "-c", LEFTOVER], "--group")
    text = wait_log(container, "linkinit exited 5")
    assert "leftover-got-term" in text


def test_keep_orphans_in_group_mode_by_variable_when_not_pid1(containers):
    """LINKINIT_KEEP_ORPHANS=1 with --group under a shell: the leftover lives on."""
    container = run_as_child(containers, ["sh", "-c", LEFTOVER], "--group",
                             environment={"LINKINIT_KEEP_ORPHANS": "1"})
    wait_log(container, "linkinit exited 5")
    assert "leftover-got-term" not in logs(container)
    assert leftover_running(container)
