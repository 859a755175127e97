"""sd_notify: READY=1 on NOTIFY_SOCKET once every child is ready and COMMAND runs, never
before; COMMAND does not get the variable unless LINKINIT_NOTIFY=command; Podman's
--sdnotify=container passes linkinit's READY=1 on to the socket it was given."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from typing import Any, Iterator

import pytest

from .conftest import SESSION, TEST_LABEL
from .dockerkit import output, wait_exit, wait_until
from .linkkit import run_parent, start_child


class Listener:
    """A datagram socket the test binds, in a directory a container can mount."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def receive(self, timeout: float = 30.0) -> str:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except TimeoutError:
            raise AssertionError(f"nothing on {self.path} within {timeout} s") from None

    def until(self, text: str, timeout: float = 30.0) -> list[str]:
        """Every message up to the first containing ``text``."""
        deadline = time.monotonic() + timeout
        seen = [self.receive(timeout)]
        while text not in seen[-1]:
            seen.append(self.receive(max(deadline - time.monotonic(), 0.01)))
        return seen

    def pending(self) -> list[str]:
        """What was sent and not yet read, without waiting."""
        found = []
        self.sock.setblocking(False)
        try:
            while True:
                found.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return found


@pytest.fixture
def listener(tmp_path) -> Iterator[Listener]:
    directory = tmp_path / "notify"
    directory.mkdir()
    made = Listener(str(directory))
    yield made
    made.sock.close()


def mounted(listener: Listener) -> dict:
    return {listener.directory: {"bind": "/notify", "mode": "rw"}}


SHOW = 'echo "NOTIFY_SOCKET=${NOTIFY_SOCKET-unset}"; exec sleep 300'


def test_ready_comes_once_the_child_is_ready_and_not_before(
    docker_client, linkinit_image, run_container, unique, listener
):
    """STATUS=waiting for db while the port is closed, no READY=1; READY=1 once it listens;
    COMMAND runs without NOTIFY_SOCKET."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["sh", "-c", "until [ -f /tmp/go ]; do sleep 0.05; done; "
                                 "exec nc -lk 6379"])
    parent = run_parent(run_container, unique("web"), ["--", "sh", "-c", SHOW],
                        labels={"link.db": child.name}, volumes=mounted(listener),
                        environment={"NOTIFY_SOCKET": "/notify/notify.sock"})
    assert listener.receive() == "STATUS=waiting for db"
    wait_until(lambda: "port 6379 closed" in output(parent, stdout=False, stderr=True),
               timeout=15, what="linkinit seeing the port closed")
    assert listener.pending() == []
    child.exec_run(["touch", "/tmp/go"])
    assert listener.receive().startswith("READY=1\nSTATUS=running COMMAND (pid ")
    wait_until(lambda: "NOTIFY_SOCKET=unset\n" in output(parent), timeout=15,
               what="COMMAND's output")


def test_notify_command_passes_the_socket_on_and_sends_nothing(run_container, unique, listener):
    """LINKINIT_NOTIFY=command: COMMAND gets NOTIFY_SOCKET; linkinit itself is silent."""
    parent = run_parent(run_container, unique("web"),
                        ["--", "sh", "-c", 'echo "NOTIFY_SOCKET=${NOTIFY_SOCKET-unset}"'],
                        volumes=mounted(listener),
                        environment={"NOTIFY_SOCKET": "/notify/notify.sock",
                                     "LINKINIT_NOTIFY": "command"})
    assert wait_exit(parent) == 0
    assert output(parent) == "NOTIFY_SOCKET=/notify/notify.sock\n"
    assert listener.pending() == []


@pytest.mark.engines("podman")
def test_podman_sdnotify_container_gets_ready_from_linkinit(engine, linkinit_image, listener):
    """`podman run --sdnotify=container`: Podman hands the container its own socket and
    passes READY=1 on to the one it was given, here the test's."""
    name = f"lt-sdnotify-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, NOTIFY_SOCKET=listener.path,
               CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF",
                                              "/etc/linkinit/containers.conf"))
    try:
        subprocess.run(["podman", "run", "-d", "--name", name, "--label",
                        f"{TEST_LABEL}={SESSION}", "--sdnotify=container",
                        f"docker.io/library/{linkinit_image}", "linkinit", "-q", "--",
                        "sh", "-c", SHOW], env=env, check=True, capture_output=True,
                       timeout=120)
        assert "READY=1" in listener.until("READY=1")[-1]
        container: Any = engine.client.containers.get(name)
        wait_until(lambda: "NOTIFY_SOCKET=unset\n" in output(container), timeout=15,
                   what="COMMAND's output")
    finally:
        subprocess.run(["podman", "rm", "-f", name], env=env, capture_output=True, timeout=60)
