"""Every way a link can fail ends with the documented status and a message naming it."""

from __future__ import annotations

import socket
import time

import pytest

from bench.proxy import CountingProxy

from .dockerkit import output, wait_exit
from .linkkit import run_parent, start_child

pytestmark = pytest.mark.engines("docker", "podman")
MOUNT_HINTS = {
    "docker": "-v /var/run/docker.sock:/var/run/docker.sock",
    "podman": "-v /run/podman/podman.sock:/var/run/docker.sock",
}


def failed(container, status):
    """Assert the exit status; return stderr (never a traceback)."""
    code = wait_exit(container)
    stderr = output(container, stdout=False, stderr=True)
    assert code == status, stderr
    assert "Traceback" not in stderr
    return stderr


def test_bad_label_exits_64_naming_the_label(run_container, unique):
    """An unknown link attribute is a declaration error (64) that names the label."""
    parent = run_parent(run_container, unique("web"), ["--", "true"],
                        labels={"link.redis": "db1", "link.redis.colour": "red"})
    stderr = failed(parent, 64)
    assert "label link.redis.colour: unknown link attribute 'colour'" in stderr


@pytest.mark.engines("docker")
def test_bad_yaml_line_exits_64_naming_the_line(run_container, unique, tmp_path):
    """A YAML error names the file and line."""
    config = tmp_path / "links.yaml"
    config.write_text("links:\n  redis:\n    container: db1\n    wait: eventually\n")
    parent = run_parent(run_container, unique("web"),
                        ["--config", "/links.yaml", "--", "true"],
                        volumes={str(config): {"bind": "/links.yaml", "mode": "ro"}})
    stderr = failed(parent, 64)
    assert "/links.yaml:2: link redis.wait: wait must be one of" in stderr


def test_missing_child_exits_75_naming_alias_and_child(run_container, unique):
    """A child that never appears: 75 after the timeout, with alias, child and state."""
    ghost = unique("ghost")
    parent = run_parent(run_container, unique("web"), ["--timeout", "1", "--", "true"],
                        labels={"link.redis": ghost})
    stderr = failed(parent, 75)
    assert f"redis ({ghost}) not ready after 1s (wait=listening): missing" in stderr


def test_no_shared_network_names_both_lists(
    engine, docker_client, linkinit_image, run_container, make_network, unique
):
    """Child and parent on different networks: 64, naming each one's networks."""
    network = make_network(unique("net"))
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        network=network.name)
    parent = run_parent(run_container, unique("web"), ["--", "true"],
                        labels={"link.redis": child.name})
    stderr = failed(parent, 64)
    assert (f"({child.name} is on: {network.name}; "
            f"{parent.name} is on: {engine.default_network})") in stderr


def test_ambiguous_alias_exits_64_naming_both(
    docker_client, linkinit_image, run_container, make_network, unique
):
    """Two containers holding one network alias: an ambiguity error, not a guess."""
    network = make_network(unique("net"))
    one = start_child(docker_client, linkinit_image, unique("a"), network=network.name,
                      aliases=["cache"])
    two = start_child(docker_client, linkinit_image, unique("b"), network=network.name,
                      aliases=["cache"])
    parent = run_parent(run_container, unique("web"), ["--", "true"], network=network.name,
                        labels={"link.cache": "cache"})
    stderr = failed(parent, 64)
    assert "ambiguous" in stderr
    assert one.name in stderr and two.name in stderr


def test_no_socket_exits_69_saying_to_mount_it(engine, run_container, unique):
    """A link declared by flag without the Engine socket: 69 and how to mount it (Podman's
    socket under Podman). Labels alone cannot be read without the socket: that runs COMMAND
    as a plain init, see test_pid1_options."""
    parent = run_parent(run_container, unique("web"), ["--link", "db1:redis", "--", "true"],
                        socket=False, labels={"link.redis": "db1"})
    stderr = failed(parent, 69)
    assert MOUNT_HINTS[engine.name] in stderr


def test_unreachable_engine_exits_69_after_retries(run_container, unique):
    """An Engine that does not answer is retried until the timeout, then 69."""
    parent = run_parent(run_container, unique("web"), ["--timeout", "1", "--", "true"],
                        socket=False, environment={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    stderr = failed(parent, 69)
    assert "retried until the timeout" in stderr


@pytest.mark.engines("docker")
def test_command_not_found_exits_127(docker_client, linkinit_image, run_container, unique):
    """COMMAND that does not exist: 127 and its name."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    parent = run_parent(run_container, unique("web"), ["--", "no-such-command"],
                        labels={"link.redis": child.name, "link.redis.wait": "started"})
    stderr = failed(parent, 127)
    assert "no-such-command" in stderr


@pytest.mark.engines("docker")
def test_engine_that_answers_late_is_retried_until_it_does(
    docker_client, linkinit_image, run_container, unique, tmp_path
):
    """A socket that refuses at first (dockerd restarting) is retried with backoff."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    path = tmp_path / "docker.sock"
    refusing = socket.socket(socket.AF_UNIX)
    refusing.bind(str(path))
    refusing.close()  # the file stays: connecting to it is refused, as to a stopped dockerd
    parent = run_parent(
        run_container, unique("web"), ["--timeout", "30", "--", "sh", "-c", "echo $DB_PORT"],
        socket=False, environment={"DOCKER_HOST": "unix:///engine/docker.sock"},
        volumes={str(tmp_path): {"bind": "/engine", "mode": "rw"}},
        labels={"link.db": child.name, "link.db.wait": "started"},
    )
    time.sleep(1.5)  # bounded: long enough for several refused attempts
    parent.reload()
    assert parent.status == "running"
    proxy = CountingProxy(str(path)).start()
    try:
        assert wait_exit(parent) == 0, output(parent, stderr=True)
    finally:
        proxy.close()
    assert output(parent).strip().endswith(":6379")
    assert proxy.requests()  # it went through the Engine that came up
