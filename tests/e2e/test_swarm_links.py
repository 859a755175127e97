"""Links to swarm services on a real two-node swarm (tests/support/swarm.py): this host's
Engine manages, a node container works. Children run on the worker, parents on the manager
with its Engine socket (the worker's parents through linkinit proxy: test_swarm_proxy.py).

The kernel here has no IPVS, so a service's virtual IP is exported but carries no traffic
(test_swarm.py holds that limit): the exact variables are checked on a vip service, and
reaching the child through them on a dnsrr one, whose address is its task's.
"""

from __future__ import annotations

from typing import Any

import pytest

from linkinit.init.resolve import WORKER_HINT
from tests.support.moby import moby_to_env
from tests.support.swarm import host_docker

from .dockerkit import env_lines, output, wait_until
from .swarmkit import (
    ON_MANAGER,
    ON_WORKER,
    ONCE,
    ended_task,
    exit_code,
    parent_before_child,
    serving,
)

OWN_SOCKET = ("--mount", "type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock")
LIBRARY = "import linkinit; print(linkinit.require('db').ip)"

pytestmark = pytest.mark.timeout(900)  # the first swarm test of a session makes the swarm


def manager_task_logs(docker_client: Any, task: dict, stderr: bool = False) -> str:
    container = docker_client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    return output(container, stdout=not stderr, stderr=stderr)


def test_a_parent_task_gets_a_vip_services_exact_variables(
    swarm, make_service, linkinit_image, unique, docker_client
):
    """VIP on the shared overlay network, the target ports, the container spec's env."""
    swarm.load(linkinit_image)
    child = make_service(unique("db"), *ON_WORKER, "--env", "PASSWORD=dockerpass",
                         "--env", "EMPTY=", "--env", "EQUALS=a=b",
                         "--publish", "mode=host,target=8080",
                         "--publish", "mode=host,target=53,protocol=udp",
                         *serving(linkinit_image))
    swarm.running_task(child)
    parent = make_service(unique("web"), *ON_MANAGER, *OWN_SOCKET, *ONCE,
                          "--container-label", f"link.db={child}",
                          "--container-label", "link.db.wait=started",
                          linkinit_image, "linkinit", "--print-env")
    task = ended_task(swarm, parent)
    printed = manager_task_logs(docker_client, task)
    assert exit_code(task) == 0, manager_task_logs(docker_client, task, stderr=True)
    [vip] = [entry["Addr"].split("/")[0] for entry in swarm.service(child)["Endpoint"]
             ["VirtualIPs"] if entry["NetworkID"] == swarm.network_id]
    name = docker_client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"]).name
    expected = moby_to_env(f"/{name}/db", vip, [(8080, "tcp"), (53, "udp")],
                           ["PASSWORD=dockerpass", "EMPTY=", "EQUALS=a=b"])
    assert env_lines(printed) == dict(expected)


def test_a_parent_deployed_first_waits_and_reaches_a_dnsrr_child_on_another_node(
    swarm, make_service, linkinit_image, unique, docker_client
):
    """The parent starts before its child exists, says it waits, and once a task of the
    child listens, reaches it at the exported address and port (wait=listening)."""
    swarm.load(linkinit_image)
    child = unique("db")
    task = parent_before_child(
        swarm, make_service, linkinit_image, child, (unique("web"), *ON_MANAGER, *OWN_SOCKET),
        ON_WORKER, lambda task, stderr=False: manager_task_logs(docker_client, task, stderr))
    errors = manager_task_logs(docker_client, task, stderr=True)
    assert exit_code(task) == 0, errors
    child_task = swarm.running_task(child)
    assert child_task["NodeID"] == swarm.node_id  # on the other node
    hostname = swarm.task_container(child_task)["Config"]["Hostname"]
    assert manager_task_logs(docker_client, task).strip() == f"hello from {hostname}"
    assert f"waiting for db ({child}): missing" in errors


def test_follow_mode_follows_a_service_scaled_to_0_and_back(
    swarm, make_service, linkinit_image, unique, docker_client
):
    """A parent task in follow mode: down at 0 replicas (reported, nothing changed); back at
    1, /etc/hosts and the links file name the new task's address within seconds, though no
    task event exists. (A task, not a container run on the attachable network: starting one
    right after another left the network is refused now and then, "network not found".)"""
    swarm.load(linkinit_image)
    child = make_service(unique("db"), *ON_WORKER, "--endpoint-mode", "dnsrr",
                         "--publish", "mode=host,target=8080", *serving(linkinit_image))
    first = swarm.task_address(swarm.running_task(child))
    service = make_service(unique("web"), *ON_MANAGER, *OWN_SOCKET,
                           "--container-label", f"link.db={child}",
                           "--container-label", "linkinit.on-change=hosts",
                           linkinit_image, "linkinit", "--", "sleep", "600")
    task = swarm.running_task(service, timeout=90)
    parent = docker_client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])

    def hosts_name(address: str) -> bool:
        hosts = parent.exec_run(["cat", "/etc/hosts"]).output.decode()
        return any(line.split()[:2] == [address, "db"] for line in hosts.splitlines())

    wait_until(lambda: hosts_name(first), 60, f"the parent's /etc/hosts to name db {first}")
    _scale(child, 0)
    wait_until(lambda: f"follow: db ({child}) is down" in output(parent, stderr=True), 60,
               "the parent to report its child down")
    _scale(child, 1)
    second = swarm.task_address(swarm.running_task(child, timeout=90))
    wait_until(lambda: hosts_name(second), 30, f"the parent's /etc/hosts to name db {second}")
    library = parent.exec_run(["python3", "-c", LIBRARY])
    assert library.output.decode().strip() == second  # the links file, as the library reads it
    reported = output(parent, stderr=True)
    assert (f"follow: db ({child}) changed: now at {second}" in reported
            or (second == first and f"follow: db ({child}) is up again" in reported))


def _scale(service: str, replicas: int) -> None:
    host_docker("service", "scale", "--detach", f"{service}={replicas}")


def test_a_worker_parent_without_a_manager_fails_at_once_saying_what_to_deploy(
    swarm, make_service, linkinit_image, unique
):
    """The worker's own socket knows no services: 69 at once, not a wait until the timeout."""
    swarm.load(linkinit_image)
    child = make_service(unique("db"), *ON_MANAGER, *serving(linkinit_image))
    parent = make_service(unique("web"), *ON_WORKER, *OWN_SOCKET, *ONCE,
                          "--container-label", f"link.db={child}",
                          linkinit_image, "linkinit", "--timeout", "120", "--", "true")
    task = ended_task(swarm, parent, 60)
    container = task["Status"]["ContainerStatus"]["ContainerID"]
    errors = swarm.node("logs", container).stderr
    assert exit_code(task) == 69, errors
    assert errors.strip() == (f"linkinit: link db: {child!r} is not a container on this node; "
                              f"{WORKER_HINT}")
