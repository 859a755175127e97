"""Helpers for the PID-1 end-to-end tests: linkinit as a container's init, observed from the host.

dockerd runs on this machine, so a container's PID 1 is also a host process: its
/proc/<pid>/status (signal masks, VmRSS) is read directly, with no `docker exec` in between.
Every wait here is bounded.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import pytest

from tests.support.processes import wait_for

from .conftest import SOCKET_VOLUME
from .dockerkit import wait_exit

__all__ = ["wait_exit"]  # the one exit-status helper, for the PID-1 tests' imports

PROGRAMS = "/opt/linkinit-tests"  # where the test image holds tests/programs


def image_program(name: str, *args: Any) -> list[str]:
    """argv running one of the cooperating programs inside the container (the host's copy
    is ``tests.support.processes.host_program``)."""
    return ["python3", f"{PROGRAMS}/{name}", *(str(a) for a in args)]


def run_pid1(
    factory: Callable[..., Any],
    command: Sequence[str],
    *options: str,
    **kwargs: Any,
) -> Any:
    """A container whose PID 1 is ``linkinit OPTIONS -- COMMAND`` (no links declared)."""
    volumes = dict(kwargs.pop("volumes", {}) or {})
    volumes.update(SOCKET_VOLUME)
    return factory(["linkinit", *options, "--", *command], volumes=volumes, **kwargs)


def logs(container: Any) -> str:
    return container.logs(stdout=True, stderr=True).decode(errors="replace")


def wait_log(container: Any, text: str, timeout: float = 30.0) -> str:
    """The container's output once ``text`` shows up in it; fail after ``timeout`` seconds."""
    return wait_for(lambda: (lambda seen: seen if text in seen else "")(logs(container)),
                    timeout, f"{text!r} in the output")


def host_pid(container: Any) -> int:
    """The host pid of the container's PID 1."""
    container.reload()
    pid = int(container.attrs["State"]["Pid"])
    assert pid > 0, "container not running"
    return pid


def status_field(pid: int, name: str) -> str:
    """One field of /proc/<pid>/status (``""`` if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def children(pid: int) -> list[int]:
    """Direct children of a host process, from /proc."""
    found = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            found = [int(p) for p in listing.read().split()]
    except OSError:
        pass
    return found


def wait_child_named(pid: int, name: str, timeout: float = 30.0) -> None:
    """Wait until the host process ``pid`` has a child called ``name`` (COMMAND started),
    then a moment for the resolver's exit and the slim re-exec to settle."""
    wait_for(lambda: any(status_field(c, "Name") == name for c in children(pid)), timeout,
             f"{name} started under {pid}")
    time.sleep(0.3)


def process_table(container: Any) -> list[dict]:
    """`ps` inside the container: pid, ppid, stat and command of every process."""
    result = container.exec_run(["ps", "-eo", "pid=,ppid=,stat=,args="])
    assert result.exit_code == 0, result.output
    rows = []
    for line in result.output.decode().splitlines():
        pid, ppid, stat, args = [*line.split(None, 3), ""][:4]
        rows.append({"pid": int(pid), "ppid": int(ppid), "stat": stat, "args": args})
    return rows


def containers_fixture() -> Any:
    """The ``containers`` fixture (conftest's run_container); bind it per module:
    ``containers = containers_fixture()``."""

    @pytest.fixture(name="containers")
    def containers(run_container: Callable[..., Any]) -> Callable[..., Any]:
        return run_container

    return containers


CHILD_SCRIPT = 'linkinit "$@"; echo "linkinit exited $?"; exec sleep 120'


def run_as_child(
    factory: Callable[..., Any],
    command: Sequence[str],
    *options: str,
    **kwargs: Any,
) -> Any:
    """A container whose PID 1 is a shell running ``linkinit OPTIONS -- COMMAND`` as its child
    (linkinit is then a subreaper, not PID 1); the shell prints ``linkinit exited N`` and
    stays, so what linkinit left behind can be looked at."""
    volumes = dict(kwargs.pop("volumes", {}) or {})
    volumes.update(SOCKET_VOLUME)
    argv = ["sh", "-c", CHILD_SCRIPT, "sh", *options, "--", *command]
    return factory(argv, volumes=volumes, **kwargs)


def linkinit_pid(container: Any, timeout: float = 30.0) -> int:
    """The host pid of linkinit in a run_as_child container (PID 1's only child)."""
    pid1 = host_pid(container)
    return wait_for(lambda: children(pid1), timeout, "linkinit started")[0]


def wait_state(pid: int, states: str, timeout: float = 5.0) -> None:
    """Wait until the host process is in one of ``states`` (letters of /proc State)."""
    wait_for(lambda: status_field(pid, "State")[:1] in tuple(states), timeout,
             f"{pid} in one of the states {states}")
