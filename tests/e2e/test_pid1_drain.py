"""What the minimal inits refuse, as PID 1 of a real container: orphans killed while COMMAND
runs (--kill-orphans), a drain window before the stop signal (--stop-delay), and waiting for
every process rather than COMMAND alone (--wait-all). Each next to its control."""

from __future__ import annotations

import signal
import time

from .dockerkit import output, wait_until
from .linkkit import run_parent, start_child
from .pid1_helpers import (
    containers_fixture,
    image_program,
    logs,
    process_table,
    run_pid1,
    wait_exit,
    wait_log,
)

containers = containers_fixture()


def pids_line(container, prefix: str = "pids ") -> list[int]:
    text = wait_log(container, prefix)
    line = next(x for x in text.splitlines() if x.startswith(prefix))
    return [int(p) for p in line.split()[1:]]


def running(container, pids: list[int]) -> list[int]:
    """Which of ``pids`` still run (a zombie does not)."""
    return sorted(r["pid"] for r in process_table(container)
                  if r["pid"] in pids and not r["stat"].startswith("Z"))


def test_kill_orphans_ends_what_command_left_while_it_runs(containers):
    """--kill-orphans: three orphans are TERMed while COMMAND runs on. The controls, started
    alongside, keep theirs: without the option, and with --group (COMMAND's own group)."""
    maker = image_program("make_orphans.py", 3, 300, 300)  # orphans that outlive the test
    killing = run_pid1(containers, maker, "--kill-orphans")
    control = run_pid1(containers, maker)
    grouped = run_pid1(containers, maker, "--kill-orphans", "--group")
    pids = {c.id: pids_line(c) for c in (killing, control, grouped)}
    wait_until(lambda: running(killing, pids[killing.id]) == [], timeout=15,
               what="the orphans gone")
    assert "make_orphans.py" in " ".join(r["args"] for r in process_table(killing))
    assert logs(killing).count("was left to linkinit; sending it SIGTERM") == 3
    assert running(control, pids[control.id]) == sorted(pids[control.id])
    assert running(grouped, pids[grouped.id]) == sorted(pids[grouped.id])


ORPHAN_IGNORING_TERM = (
    "sh -c 'trap \"\" TERM; sleep 300 & echo orphan $!'; echo ready; exec sleep 300"
)


def test_kill_orphans_kills_one_ignoring_term_after_grace(containers):
    """An orphan that ignores TERM still runs right after it; KILL ends it after --grace."""
    container = run_pid1(containers, ["sh", "-c", ORPHAN_IGNORING_TERM],
                         "--kill-orphans", "--grace", "3")
    orphan = pids_line(container, "orphan ")
    wait_log(container, f"process {orphan[0]} was left to linkinit; sending it SIGTERM")
    termed = time.monotonic()
    assert running(container, orphan) == orphan
    wait_until(lambda: running(container, orphan) == [], timeout=15, what="the orphan gone")
    assert time.monotonic() - termed > 1.5  # KILL comes 3 s after TERM, seen from here


LEAVES_AN_ORPHAN = "sh -c 'sleep 300 & echo orphan $!'; echo ready; exec sleep 300"


def test_kill_orphans_spares_follow_modes_watcher(
    docker_client, linkinit_image, run_container, make_network, unique
):
    """Follow mode's watcher is PID 1's child too, but no orphan: once an orphan beside it
    is gone, the watcher still runs and was never restarted."""
    network = make_network(unique("net"))
    child = start_child(docker_client, linkinit_image, unique("db"), network=network.name)
    parent = run_parent(run_container, unique("web"),
                        ["--kill-orphans", "--", "sh", "-c", LEAVES_AN_ORPHAN],
                        labels={"link.db": child.name, "link.db.wait": "started",
                                "linkinit.on-change": "hosts"}, network=network.name)
    orphan = pids_line(parent, "orphan ")
    wait_until(lambda: running(parent, orphan) == [], timeout=15, what="the orphan gone")
    assert any("_follow" in r["args"] for r in process_table(parent))
    assert "sending it SIGTERM" in logs(parent)
    assert "watcher" not in logs(parent)


def test_stop_delay_holds_the_first_term_for_the_drain_window(containers):
    """--stop-delay 1.5: COMMAND gets TERM 1.5 s after `docker kill -s TERM`, not before."""
    container = run_pid1(containers, image_program("print_signals.py", "--exit-on", 15),
                         "--stop-delay", "1.5")
    wait_log(container, "ready")
    sent = time.monotonic()
    container.kill(signal="SIGTERM")
    assert wait_exit(container) == 0
    took = time.monotonic() - sent
    assert 1.5 <= took < 4.0, f"TERM reached COMMAND after {took:.2f} s"
    assert "linkinit: SIGTERM reaches COMMAND in 1.5 s (--stop-delay)" in logs(container)
    assert output(container) == "ready\n15 SIGTERM\n"


def test_a_second_signal_during_the_delay_goes_through_at_once(containers):
    """The first TERM is held 60 s; an INT then reaches COMMAND at once, in its place."""
    container = run_pid1(containers, image_program("print_signals.py"), "--stop-delay", "60")
    wait_log(container, "ready")
    container.kill(signal="SIGTERM")
    wait_log(container, "(--stop-delay)")
    container.kill(signal="SIGINT")
    wait_log(container, f"{int(signal.SIGINT)} SIGINT", timeout=5)
    assert output(container) == f"ready\n{int(signal.SIGINT)} SIGINT\n"  # no TERM


def test_docker_stops_timeout_still_ends_a_held_stop(containers):
    """`docker stop -t 1` with a 60 s delay: the Engine's KILL comes after 1 s (137)."""
    container = run_pid1(containers, image_program("print_signals.py"), "--stop-delay", "60")
    wait_log(container, "ready")
    sent = time.monotonic()
    container.stop(timeout=1)
    assert wait_exit(container) == 137
    assert time.monotonic() - sent < 5.0


WAITS = ("(until [ -f /tmp/go ]; do sleep 0.05; done; echo late done) & "
         "echo command $$; exit 3")


def test_wait_all_waits_for_every_process_then_exits_with_commands_status(containers):
    """--wait-all: COMMAND exits 3 with a background job left; the container runs on until
    the job is done, then exits 3. The control exits 3 at once and the job never finishes."""
    waiting = run_pid1(containers, ["sh", "-c", WAITS], "--wait-all")
    control = run_pid1(containers, ["sh", "-c", WAITS])
    assert wait_exit(control) == 3
    assert "late done" not in logs(control)
    command = pids_line(waiting, "command ")
    wait_until(lambda: running(waiting, command) == [], timeout=15, what="COMMAND gone")
    waiting.reload()
    assert waiting.status == "running"
    waiting.exec_run(["touch", "/tmp/go"])
    assert wait_exit(waiting) == 3
    assert "late done\n" in logs(waiting)
