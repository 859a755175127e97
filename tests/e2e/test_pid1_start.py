"""COMMAND starts clean under linkinit as PID 1: signals, cwd, stdin, terminal, job control."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time

from .conftest import SESSION, SOCKET, TEST_LABEL
from .pid1_helpers import (
    containers_fixture,
    image_program,
    logs,
    process_table,
    run_as_child,
    run_pid1,
    wait_exit,
)

containers = containers_fixture()


def test_command_starts_with_empty_mask_and_no_ignored_signals(containers):
    """COMMAND's blocked mask is empty and nothing is ignored (SIGPIPE, SIGXFSZ default)."""
    container = run_pid1(containers, ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"])
    assert wait_exit(container) == 0
    assert logs(container).split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]


def test_yes_piped_to_head_returns(containers):
    """`yes | head -1` ends: yes gets a default SIGPIPE."""
    container = run_pid1(containers, ["sh", "-c", "yes | head -1"])
    assert wait_exit(container, timeout=20) == 0
    assert logs(container) == "y\n"


def test_command_runs_in_the_working_directory(containers):
    """COMMAND starts in the container's working directory (-w)."""
    container = run_pid1(containers, image_program("report_start.py"), working_dir="/tmp")
    assert wait_exit(container) == 0
    report = json.loads(logs(container).splitlines()[-1])
    assert report["cwd"] == "/tmp"
    assert report["SigBlk"] == "0" * 16
    assert report["pgid"] == report["pid"] != 1  # its own group, apart from PID 1


def docker_run(*args: str, stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess:
    """`docker run --rm` through the CLI, as a user types it (labelled for cleanup)."""
    return subprocess.run(
        ["docker", "run", "--rm", "--label", f"{TEST_LABEL}={SESSION}",
         "-v", f"{SOCKET}:{SOCKET}:ro", *args],
        input=stdin, capture_output=True, timeout=timeout,
    )


def test_stdin_is_passed_to_command(linkinit_image):
    """`echo 'exit 0' | docker run -i IMAGE linkinit -- sh` works: sh reads our stdin."""
    done = docker_run("-i", linkinit_image, "linkinit", "--", "sh",
                      stdin=b"echo from-stdin; exit 7\n")
    assert done.returncode == 7, done.stderr
    assert done.stdout == b"from-stdin\n"


def test_tty_is_handed_to_command(linkinit_image):
    """`docker run -t`: COMMAND's group is the terminal's foreground group."""
    done = docker_run("-t", linkinit_image, "linkinit", "--", *image_program("report_start.py"))
    assert done.returncode == 0, done.stdout
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["tty"] is True
    assert report["foreground"] is True


class Terminal:
    """A pty on the host running `docker run -it`, as a user's terminal would."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.output = b""

    def read_until(self, wanted: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{wanted!r} not seen: {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:
                    raise AssertionError(f"terminal closed: {self.output!r}") from None

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        os.close(self.master)


def test_interactive_shell_job_control_and_ctrl_c(linkinit_image):
    """`docker run -it IMAGE linkinit -- bash -i`: job control works (^Z stops the job, fg
    resumes it), ^C reaches the foreground job and not the shell, exit status passes."""
    term = Terminal(
        ["docker", "run", "--rm", "-it", "--label", f"{TEST_LABEL}={SESSION}",
         "-e", "PS1=$ ", "-v", f"{SOCKET}:{SOCKET}:ro", linkinit_image,
         "linkinit", "--", "bash", "--norc", "--noprofile", "-i"]
    )
    try:
        term.read_until(b"$ ")
        assert b"no job control" not in term.output
        term.write(b"sleep 30\r")
        time.sleep(0.5)  # let bash start the job (no handshake exists for this)
        term.write(b"\x1a")
        term.read_until(b"Stopped")
        term.write(b"fg\r")
        term.read_until(b"sleep 30\r\n", timeout=10)
        time.sleep(0.5)
        term.write(b"\x03")
        term.write(b"echo after-$?\r")
        term.read_until(b"after-130")
        term.write(b"exit 3\r")
        assert term.proc.wait(30) == 3
    finally:
        term.close()


def wait_title(container, timeout: float = 30) -> list[dict]:
    """`ps` in the container once a process shows linkinit's title."""
    deadline = time.monotonic() + timeout
    while True:
        table = process_table(container)
        if any(r["args"].startswith("linkinit: supervising") for r in table):
            return table
        assert time.monotonic() < deadline, f"no linkinit title in {table}"
        time.sleep(0.1)


def test_ps_and_docker_top_show_pid1_as_linkinit_supervising_command(containers):
    """`ps` and `docker top` show PID 1 as `linkinit: supervising sleep 60`, not as
    `python3 -I -S -c import sys; ...`."""
    container = run_pid1(containers, ["sleep", "60"])
    table = wait_title(container)
    assert next(r["args"] for r in table if r["pid"] == 1) == "linkinit: supervising sleep 60"
    top = container.top()
    column = top["Titles"].index("CMD")
    assert "linkinit: supervising sleep 60" in [row[column] for row in top["Processes"]]


def test_pid1_moves_to_root_and_command_keeps_the_working_directory(containers):
    """As PID 1, linkinit chdirs to / once COMMAND runs (it holds no mount busy); COMMAND
    stays in the container's working directory."""
    container = run_pid1(containers, ["sleep", "60"], working_dir="/tmp")
    table = wait_title(container)
    sleep = next(r["pid"] for r in table if r["args"] == "sleep 60")
    for pid, expected in ((1, "/"), (sleep, "/tmp")):
        done = container.exec_run(["readlink", f"/proc/{pid}/cwd"])
        assert done.output.decode().strip() == expected


def test_linkinit_not_pid1_moves_to_root_and_shows_its_title(containers):
    """Under a shell too: linkinit's process reads `linkinit: supervising ...` and sits in /,
    COMMAND in the working directory."""
    container = run_as_child(containers, ["sleep", "60"], working_dir="/tmp")
    table = wait_title(container)
    linkinit = next(r for r in table if r["args"].startswith("linkinit: supervising"))
    assert linkinit["args"] == "linkinit: supervising sleep 60"
    done = container.exec_run(["readlink", f"/proc/{linkinit['pid']}/cwd"])
    assert done.output.decode().strip() == "/"
