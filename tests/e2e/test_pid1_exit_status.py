"""linkinit as PID 1 exits with COMMAND's status: 0..255, 128+N, 126 and 127."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from .pid1_helpers import containers_fixture, image_program, logs, run_pid1, wait_exit

containers = containers_fixture()


@pytest.mark.timeout(600)  # 256 containers: minutes on a busy 2-CPU machine
def test_every_exit_status_0_to_255_is_the_containers(containers):
    """Each status 0..255 of COMMAND becomes the container's exit status."""
    codes = list(range(256))

    def one(code: int) -> int:
        container = run_pid1(containers, ["sh", "-c", f"exit {code}"])
        status = wait_exit(container, timeout=120)
        container.remove(force=True)
        return status

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, codes)) == codes


@pytest.mark.parametrize(
    "sig", [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL, signal.SIGTERM]
)
def test_death_by_signal_exits_128_plus_n(containers, sig):
    """COMMAND killing itself with HUP, INT, QUIT, KILL, TERM: 129, 130, 131, 137, 143."""
    container = run_pid1(containers, image_program("exit_with.py", "--signal", int(sig)))
    assert wait_exit(container) == 128 + sig, logs(container)


def test_command_not_found_exits_127(containers):
    """An unknown COMMAND: 127, with a message naming it."""
    container = run_pid1(containers, ["no-such-command"])
    assert wait_exit(container) == 127
    assert "linkinit: no-such-command: command not found" in logs(container)


def test_command_not_executable_exits_126(containers):
    """A COMMAND that is not executable: 126, with a message naming it."""
    container = run_pid1(containers, ["/etc/hostname"])
    assert wait_exit(container) == 126
    assert "linkinit: /etc/hostname: permission denied" in logs(container)
