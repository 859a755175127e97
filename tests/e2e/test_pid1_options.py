"""linkinit's options in a real container: from the environment, without a socket, and the
init-parity ones (--remap-exit, --pdeathsig), as PID 1 and as a shell's child."""

from __future__ import annotations

import os
import signal
import time

import pytest

from .conftest import SOCKET_VOLUME
from .pid1_helpers import (
    children,
    containers_fixture,
    host_pid,
    image_program,
    logs,
    run_as_child,
    run_pid1,
    wait_exit,
    wait_log,
)

containers = containers_fixture()

NOTICE = (
    "linkinit: no Docker Engine socket at /var/run/docker.sock and no links declared by file, "
    "flag or LINKINIT_LINKS: running COMMAND without links (--require-engine or "
    "LINKINIT_REQUIRE_ENGINE=1 makes this exit 69)\n"
)
NO_SOCKET_69 = (
    "linkinit: no Docker Engine socket at /var/run/docker.sock: mount it with "
    "-v /var/run/docker.sock:/var/run/docker.sock\n"
)


def no_socket(factory, command, *options, **kwargs):
    """``linkinit OPTIONS -- COMMAND`` as PID 1 of a container without the Engine socket."""
    return factory(["linkinit", *options, "--", *command], **kwargs)


def test_no_socket_and_no_links_runs_command_with_its_exit_status(containers):
    """No socket, nothing declared: COMMAND runs (a plain init), one notice, status kept."""
    container = no_socket(containers, ["sh", "-c", "echo ran; exit 7"])
    assert wait_exit(container) == 7
    # each stream on its own: Docker reads stdout and stderr through two pipes, and the
    # merged log's order across them is not the order they were written in under load
    assert container.logs(stdout=False, stderr=True).decode() == NOTICE
    assert container.logs(stdout=True, stderr=False).decode() == "ran\n"


def test_no_socket_plain_init_is_quiet_with_q_and_passes_signals(containers):
    """-q: no notice; `docker stop` reaches COMMAND and ends the container in under 1 s."""
    container = no_socket(containers, image_program("print_signals.py", "--exit-on", 15), "-q")
    wait_log(container, "ready")
    started = time.monotonic()
    container.stop(timeout=10)
    assert time.monotonic() - started < 1.0
    assert wait_exit(container) == 0
    assert logs(container) == "ready\n15 SIGTERM\n"


@pytest.mark.parametrize(
    ("options", "environment"),
    [
        (["--require-engine"], {}),
        ([], {"LINKINIT_REQUIRE_ENGINE": "1"}),
        (["--link", "db1:redis"], {}),
        ([], {"LINKINIT_LINKS": "db1:redis"}),
    ],
)
def test_no_socket_is_69_when_required_or_links_are_declared(containers, options, environment):
    """--require-engine, its variable, or a declared link: no socket exits 69 as before."""
    container = no_socket(containers, ["true"], *options, environment=environment)
    assert wait_exit(container) == 69
    assert logs(container) == NO_SOCKET_69


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"LINKINIT_TIMEOUT": "soon"},
         "linkinit: LINKINIT_TIMEOUT=soon: expected a finite number of seconds >= 0, "
         "e.g. 30 or 2.5\n"),
        ({"LINKINIT_TIMEOUT": "inf"},
         "linkinit: LINKINIT_TIMEOUT=inf: expected a finite number of seconds >= 0, "
         "e.g. 30 or 2.5\n"),
        ({"LINKINIT_GROUP": "maybe"},
         "linkinit: LINKINIT_GROUP=maybe: expected 1 or 0 (or true/false, yes/no, on/off)\n"),
        ({"LINKINIT_REMAP_EXIT": "300"},
         "linkinit: LINKINIT_REMAP_EXIT=300: expected an exit status from 0 to 255\n"),
    ],
)
def test_bad_variable_exits_64_naming_it(containers, environment, message):
    """A bad LINKINIT_* value: 64 and one line naming the variable; COMMAND never runs."""
    container = run_pid1(containers, ["echo", "ran"], environment=environment)
    assert wait_exit(container) == 64
    assert logs(container) == message


def test_option_after_the_entrypoints_double_dash_exits_127_saying_where_it_goes(containers):
    """`docker run IMAGE --timeout 3 app` under ENTRYPOINT ["linkinit", "--"]: 127 with how to
    give the option."""
    container = run_pid1(containers, ["--timeout", "3", "true"])
    assert wait_exit(container) == 127
    assert 'give it before "--"' in logs(container)
    assert "LINKINIT_TIMEOUT=3" in logs(container)


def test_timeout_from_the_environment_bounds_the_wait(containers, unique):
    """LINKINIT_TIMEOUT=1 with a child that never gets ready: 75 after about 1 s, not 60."""
    child = containers(["sleep", "300"], name=unique("never-ready"), ports={"6379/tcp": None})
    started = time.monotonic()
    container = run_pid1(containers, ["true"], environment={
        "LINKINIT_TIMEOUT": "1", "LINKINIT_LINKS": f"{child.name}:redis"})
    assert wait_exit(container) == 75, logs(container)
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("options", "environment", "status"),
    [
        (["--remap-exit", "3"], {}, 0),
        ([], {"LINKINIT_REMAP_EXIT": "4,3"}, 0),
        (["--remap-exit", "4"], {}, 3),
    ],
)
def test_remap_exit_reports_status_as_0_pid1(containers, options, environment, status):
    """--remap-exit N (or LINKINIT_REMAP_EXIT): the container exits 0 for COMMAND's N."""
    container = run_pid1(containers, ["sh", "-c", "exit 3"], *options, environment=environment)
    assert wait_exit(container) == status


def test_remap_exit_of_a_signal_death_when_not_pid1(containers):
    """Under a shell, --remap-exit 143: COMMAND killed by TERM is reported as 0."""
    container = run_as_child(containers, image_program("exit_with.py", "--signal", 15),
                             "--remap-exit", "143")
    wait_log(container, "linkinit exited 0")


def test_pdeathsig_signals_command_when_linkinit_loses_its_parent(containers):
    """--pdeathsig USR1: when linkinit's parent dies (TERMed from the host here), the kernel
    sends linkinit USR1, which reaches COMMAND. (As PID 1 the parent is the container
    runtime, which a test must not kill.)"""
    parent = image_program("parent_until_eof.py", "linkinit", "--pdeathsig", "USR1", "--",
                     *image_program("print_signals.py"))
    # PID 1 is a shell that outlives the parent; stdin stays open, so only TERM ends it.
    container = containers(["sh", "-c", '"$@"; exec sleep 120', "sh", *parent],
                           volumes=SOCKET_VOLUME, stdin_open=True)
    wait_log(container, "ready")
    pid1 = host_pid(container)
    parent_pid = children(pid1)[0]
    assert children(parent_pid), "linkinit not under the parent"
    os.kill(parent_pid, signal.SIGTERM)
    wait_log(container, f"{int(signal.SIGUSR1)} SIGUSR1")
