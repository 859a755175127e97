"""linkinit exits with COMMAND's status, 128+N for a signal death, 126/127 for exec failures."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.processes import MODES, driver_argv, host_program, launch, processes_fixture

processes = processes_fixture()


def run_status(argv: list[str]) -> int:
    proc = launch(argv)
    try:
        return proc.wait(20)
    finally:
        proc.kill_tree()


def test_every_exit_status_0_to_255_is_passed_through():
    """COMMAND's exit status, whatever it is in 0..255, is linkinit's."""
    codes = list(range(256))
    with ThreadPoolExecutor(8) as pool:  # a plain exit: a shell is as good as Python here
        got = list(pool.map(lambda c: run_status(driver_argv(["sh", "-c", f"exit {c}"])), codes))
    assert got == codes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "sig",
    [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL, signal.SIGTERM,
     signal.SIGSEGV, signal.SIGABRT, signal.SIGUSR1],
)
def test_death_by_signal_is_reported_as_128_plus_n(processes, mode, sig):
    """A COMMAND killed by signal N makes linkinit exit 128+N (129, 130, 131, 137, 143...),
    never 0 (WEXITSTATUS of a signal death) and never 255."""
    proc = processes(driver_argv(host_program("exit_with.py", "--signal", int(sig)), mode=mode))
    assert proc.wait(10) == 128 + sig


@pytest.mark.parametrize("mode", MODES)
def test_command_not_found_exits_127_naming_it(processes, mode):
    """A COMMAND that is nowhere in PATH: 127, and a linkinit: message naming it."""
    proc = processes(driver_argv(["no-such-command-xyz"], mode=mode))
    assert proc.wait(10) == 127
    assert proc.stderr().startswith("linkinit: no-such-command-xyz: command not found in PATH=")


def test_option_given_as_command_exits_127_saying_where_options_go(processes):
    """`docker run IMAGE --timeout 3 app` with ENTRYPOINT ["linkinit", "--"] makes --timeout
    COMMAND: 127, and the message says how to give linkinit an option."""
    env = {"PATH": "/usr/bin:/bin"}
    proc = processes(driver_argv(["--timeout", "3", "app"]), env=env)
    assert proc.wait(10) == 127
    assert proc.stderr() == (
        "linkinit: --timeout: command not found in PATH=/usr/bin:/bin; if it is a linkinit "
        'option, give it before "--" (linkinit --timeout 3 -- COMMAND) or in the environment '
        "(docker run -e LINKINIT_TIMEOUT=3 ...)\n"
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("command", "remap", "status"),
    [
        (["exit_with.py", 3], ["3"], 0),
        (["exit_with.py", 3], ["4", "3"], 0),
        (["exit_with.py", 4], ["3"], 4),
        (["exit_with.py", "--signal", 15], ["143"], 0),
        (["exit_with.py", "--signal", 15], ["15"], 143),
    ],
)
def test_remap_exit_reports_the_given_statuses_as_0(processes, mode, command, remap, status):
    """--remap-exit N (tini -e, repeatable): COMMAND's status N, 128+N for a signal death
    included, becomes 0; any other status passes unchanged."""
    options = [word for n in remap for word in ("--remap-exit", n)]
    proc = processes(driver_argv(host_program(*command), *options, mode=mode))
    assert proc.wait(10) == status


def test_missing_path_exits_127(processes):
    """A COMMAND given as a path that does not exist: 127."""
    proc = processes(driver_argv(["/nonexistent/prog"]))
    assert proc.wait(10) == 127
    assert "linkinit: /nonexistent/prog: not found" in proc.stderr()


@pytest.mark.parametrize("mode", MODES)
def test_command_not_executable_exits_126(processes, tmp_path, mode):
    """A COMMAND without execute permission: 126, and a message that says how to fix it."""
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    proc = processes(driver_argv([str(script)], mode=mode))
    assert proc.wait(10) == 126
    assert f"linkinit: {script}: permission denied" in proc.stderr()
    assert "chmod +x" in proc.stderr()


def test_directory_as_command_exits_126(processes, tmp_path):
    """A directory named as COMMAND: 126."""
    proc = processes(driver_argv([str(tmp_path)]))
    assert proc.wait(10) == 126
    assert "is a directory" in proc.stderr()


def test_exec_format_error_exits_126(processes, tmp_path):
    """An executable file the kernel cannot run (no #!, not ELF): exec fails, 126, named."""
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x00\x01\x02 not a host_program")
    blob.chmod(0o755)
    proc = processes(driver_argv([str(blob)]))
    assert proc.wait(10) == 126
    assert f"linkinit: {blob}: cannot execute" in proc.stderr()


def test_command_found_through_its_own_path(processes, tmp_path):
    """COMMAND is looked up in the PATH of the environment it gets, not linkinit's own."""
    (tmp_path / "only-here").write_text("#!/bin/sh\nexit 33\n")
    (tmp_path / "only-here").chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:/usr/bin:/bin")
    proc = processes(driver_argv(["only-here"]), env=env)
    assert proc.wait(10) == 33


@pytest.mark.parametrize("status", [1, 64, 69, 75])
def test_resolver_exit_status_is_linkinit_status(processes, status):
    """A resolver ending with SystemExit(N) (N != 0) ends linkinit with N; COMMAND never runs."""
    proc = processes(driver_argv(host_program("report_start.py"), "--work", f"exit:{status}"))
    assert proc.wait(10) == status
    assert proc.stdout_rest() == ""


def test_resolver_crash_exits_70_with_one_line(processes):
    """An unexpected exception in the resolver: exit 70 (EX_SOFTWARE) and one line naming it."""
    proc = processes(driver_argv(host_program("report_start.py"), "--work", "raise"))
    assert proc.wait(10) == 70
    lines = proc.stderr().splitlines()
    assert lines == [
        "linkinit: internal error while resolving links: RuntimeError: scripted failure"
    ]
