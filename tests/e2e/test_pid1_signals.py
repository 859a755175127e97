"""linkinit as a container's PID 1 passes signals on: every one, to the group, at any time."""

from __future__ import annotations

import os
import signal
import time

import pytest

from linkinit.init import supervise

from .pid1_helpers import (
    children,
    containers_fixture,
    host_pid,
    image_program,
    linkinit_pid,
    logs,
    process_table,
    run_as_child,
    run_pid1,
    status_field,
    wait_exit,
    wait_log,
    wait_state,
)

containers = containers_fixture()
EVERY = sorted(supervise.FORWARDED)


def lines(container) -> list[str]:
    return logs(container).splitlines()


def test_every_forwardable_signal_reaches_command(containers):
    """Each signal `docker kill -s` sends to PID 1 (TERM, INT, HUP, ..., TSTP, real-time) is
    observed by COMMAND; PID 1 neither drops nor stops on any of them."""
    container = run_pid1(containers, image_program("print_signals.py"))
    wait_log(container, "ready")
    for sig in EVERY:
        container.kill(signal=sig)
        deadline = time.monotonic() + 10
        while not any(line.split()[:1] == [str(sig)] for line in lines(container)):
            assert time.monotonic() < deadline, f"signal {sig} not seen: {lines(container)}"
            time.sleep(0.02)
    container.reload()
    assert container.status == "running"


def test_docker_stop_ends_within_a_second_when_command_honours_term(containers):
    """`docker stop` TERMs PID 1; a COMMAND that exits on TERM ends the container in < 1 s
    (not the Engine's 10 s KILL), with COMMAND's status."""
    container = run_pid1(containers, image_program("print_signals.py", "--exit-on", 15))
    wait_log(container, "ready")
    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started
    assert wait_exit(container) == 0
    assert elapsed < 1.0, f"docker stop took {elapsed:.2f} s"


def test_docker_stop_while_waiting_for_a_child_ends_at_once_with_143(
    containers, docker_client, unique
):
    """A stop while linkinit waits for a child that never gets ready ends it at once: 143."""
    child = containers(["sleep", "300"], name=unique("never-ready"), ports={"6379/tcp": None})
    child.reload()
    container = run_pid1(
        containers, ["true"], "--link", f"{child.name}:redis", "--timeout", "60"
    )
    wait_log(container, "redis", timeout=30)  # the progress line: it is waiting
    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started
    assert wait_exit(container) == 143
    assert elapsed < 2.0, f"stop took {elapsed:.2f} s"


def test_term_sent_as_soon_as_pid1_blocks_signals_is_not_lost(containers):
    """A TERM sent the moment linkinit has blocked signals (before COMMAND exists) is held
    and acted on: the container ends with 143 or COMMAND's 0, it does not keep running."""
    container = run_pid1(containers, image_program("print_signals.py", "--exit-on", 15))
    pid = host_pid(container)
    term = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + 10
    while not int(status_field(pid, "SigBlk") or "0", 16) & term:
        assert time.monotonic() < deadline, "PID 1 never blocked TERM"
        time.sleep(0.001)
    container.kill(signal=signal.SIGTERM)
    assert wait_exit(container, timeout=10) in (0, 143), logs(container)


GROUP_SCRIPT = "trap 'echo shell-got-term' TERM; echo ready; yes | tail -f /dev/null; echo ended"


def wait_for_pipeline(container) -> None:
    """The handshake: ``yes`` and ``tail`` both in the container's process table."""
    def running() -> bool:
        commands = {row["args"].split()[0] for row in process_table(container) if row["args"]}
        return {"yes", "tail"} <= commands

    deadline = time.monotonic() + 10
    while not running():
        assert time.monotonic() < deadline, "the pipeline never started"
        time.sleep(0.05)


def test_group_mode_term_reaches_the_whole_pipeline(containers):
    """With --group, TERM reaches `yes` and `tail` too: the pipeline ends, the shell goes on."""
    container = run_pid1(containers, ["sh", "-c", GROUP_SCRIPT], "--group")
    wait_log(container, "ready")
    wait_for_pipeline(container)
    container.kill(signal=signal.SIGTERM)
    assert wait_exit(container, timeout=10) == 0
    assert "shell-got-term" in logs(container)
    assert "ended" in logs(container)


def test_without_group_mode_the_pipeline_does_not_get_term(containers):
    """Negative control: without --group only the shell gets TERM and waits for its pipeline."""
    container = run_pid1(containers, ["sh", "-c", GROUP_SCRIPT])
    wait_log(container, "ready")
    wait_for_pipeline(container)
    container.kill(signal=signal.SIGTERM)
    time.sleep(1.5)  # the window in which, with --group, the pipeline would have ended
    container.reload()
    assert container.status == "running"
    assert "ended" not in logs(container)


@pytest.mark.parametrize("sig", [signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU])
def test_job_control_signals_stop_a_default_command_and_cont_resumes_it(
    containers, sig
):
    """TSTP/TTIN/TTOU stop a COMMAND with default dispositions; CONT resumes it."""
    container = run_pid1(containers, ["sh", "-c", "echo ready; exec sleep 300"])
    wait_log(container, "ready")
    pid1 = host_pid(container)
    command = children(pid1)[0]
    container.kill(signal=sig)
    deadline = time.monotonic() + 5
    while not status_field(command, "State").startswith("T"):
        assert time.monotonic() < deadline, "COMMAND not stopped"
        time.sleep(0.02)
    container.kill(signal=signal.SIGCONT)
    while status_field(command, "State").startswith("T"):
        assert time.monotonic() < deadline + 5, "COMMAND not resumed"
        time.sleep(0.02)
    container.stop(timeout=10)
    assert wait_exit(container) == 143


FAULTS = [signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
          signal.SIGSYS, signal.SIGPIPE, signal.SIGXFSZ]


def seen(container, sig: int, timeout: float = 10.0) -> None:
    """Wait until COMMAND (print_signals) has printed signal ``sig``."""
    deadline = time.monotonic() + timeout
    while not any(line.split()[:1] == [str(int(sig))] for line in lines(container)):
        assert time.monotonic() < deadline, f"signal {sig} not seen: {lines(container)}"
        time.sleep(0.02)


def test_fault_signals_sent_by_a_user_reach_command_from_pid1(containers):
    """`docker kill -s SEGV` (BUS, FPE, ILL, TRAP, SYS, PIPE, XFSZ): a user's signal, passed
    on like any other; PID 1 neither drops it nor dies of it."""
    container = run_pid1(containers, image_program("print_signals.py"))
    wait_log(container, "ready")
    for sig in FAULTS:
        container.kill(signal=sig)
        seen(container, sig)
    container.reload()
    assert container.status == "running"


def test_fault_signals_sent_by_a_user_reach_command_when_not_pid1(containers):
    """linkinit as a shell's child: `kill -SEGV` (and BUS, FPE, ILL, TRAP, SYS, PIPE, XFSZ)
    reaches COMMAND, and linkinit lives on (it used to die with 139, leaving COMMAND
    unsupervised)."""
    container = run_as_child(containers, image_program("print_signals.py"))
    wait_log(container, "ready")
    pid = linkinit_pid(container)
    for sig in FAULTS:
        os.kill(pid, sig)
        seen(container, sig)
    wait_state(pid, "SR")
    assert "linkinit exited" not in logs(container)


def test_group_mode_tstp_stops_the_whole_group_and_cont_resumes_it_pid1(containers):
    """--group as PID 1: TSTP becomes STOP for COMMAND's group, so a COMMAND that catches TSTP
    stops too; CONT resumes it (and reaches it: it prints SIGCONT, never SIGTSTP)."""
    container = run_pid1(containers, image_program("print_signals.py"), "--group")
    wait_log(container, "ready")
    command = children(host_pid(container))[0]
    for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        container.kill(signal=sig)
        wait_state(command, "T")
        container.kill(signal=signal.SIGCONT)
        wait_state(command, "SR")
    seen(container, signal.SIGCONT)
    assert not any(line.split()[:1] == [str(int(signal.SIGTSTP))] for line in lines(container))


def test_group_mode_tstp_stops_linkinit_and_its_group_when_not_pid1(containers):
    """--group under a shell: TSTP stops COMMAND's group and linkinit itself (a shell's job
    stops whole, so `fg` resumes it whole); CONT resumes both."""
    container = run_as_child(containers, image_program("print_signals.py"), "--group")
    wait_log(container, "ready")
    pid = linkinit_pid(container)
    command = children(pid)[0]
    os.kill(pid, signal.SIGTSTP)
    wait_state(command, "T")
    wait_state(pid, "T")
    os.kill(pid, signal.SIGCONT)
    wait_state(pid, "SR")
    wait_state(command, "SR")
    seen(container, signal.SIGCONT)


def test_rewrite_overrides_group_mode_stop_pid1(containers):
    """--group --rewrite TSTP:TSTP: TSTP reaches COMMAND as TSTP, which catches it and runs."""
    container = run_pid1(containers, image_program("print_signals.py"), "--group",
                         "--rewrite", "TSTP:TSTP")
    wait_log(container, "ready")
    command = children(host_pid(container))[0]
    container.kill(signal=signal.SIGTSTP)
    seen(container, signal.SIGTSTP)
    wait_state(command, "SR")


def test_rewrite_term_to_quit_makes_docker_stop_a_graceful_quit(containers):
    """--rewrite TERM:QUIT (nginx's graceful stop): `docker stop` reaches COMMAND as QUIT;
    given by variable here (LINKINIT_REWRITE), as an image with a baked entrypoint would."""
    container = run_pid1(containers, image_program("print_signals.py", "--exit-on", 3),
                         environment={"LINKINIT_REWRITE": "TERM:QUIT"})
    wait_log(container, "ready")
    started = time.monotonic()
    container.stop(timeout=10)
    assert time.monotonic() - started < 2
    assert wait_exit(container) == 0
    assert "3 SIGQUIT" in lines(container)


def test_rewrite_to_zero_drops_the_signal_when_not_pid1(containers):
    """--rewrite USR1:0 under a shell: USR1 is dropped; the USR2 sent after it is the next
    signal COMMAND sees."""
    container = run_as_child(containers, image_program("print_signals.py"), "--rewrite", "USR1:0")
    wait_log(container, "ready")
    pid = linkinit_pid(container)
    os.kill(pid, signal.SIGUSR1)
    os.kill(pid, signal.SIGUSR2)
    seen(container, signal.SIGUSR2)
    assert not any(line.split()[:1] == [str(int(signal.SIGUSR1))] for line in lines(container))
