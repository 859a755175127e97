"""Services on a real swarm (tests/support/swarm.py): this host's Engine manages, a node
container works. A task on the worker is reached over the overlay network at its own
address; a service's virtual IP is not, on this kernel without IPVS."""

from __future__ import annotations

import pytest

from .dockerkit import output, wait_exit

HELLO = "/opt/linkinit-tests/tcp_hello.py"
PORT = "8080"
ON_WORKER = ("--constraint", "node.role==worker")

# The first swarm test pays for the session's swarm (and, on a fresh machine, the node image).
pytestmark = pytest.mark.timeout(900)


def serving(image: str) -> tuple[str, ...]:
    return (image, "python3", HELLO, "serve", PORT)


def test_swarm_overlay_reaches_worker_task(
    swarm, make_service, linkinit_image, run_container, unique
):
    """A dnsrr service's task on the worker answers a container on the manager at its IP."""
    swarm.load(linkinit_image)
    name = make_service(unique("hello"), *ON_WORKER, "--endpoint-mode", "dnsrr",
                        *serving(linkinit_image))
    task = swarm.running_task(name)
    assert task["NodeID"] == swarm.node_id
    hostname = swarm.task_container(task)["Config"]["Hostname"]
    asker = run_container(["python3", HELLO, "ask", swarm.task_address(task), PORT, "20"],
                          network=swarm.network)
    assert wait_exit(asker) == 0, output(asker, stdout=False, stderr=True)
    assert output(asker).strip() == f"hello from {hostname}"


def test_swarm_virtual_ip_carries_no_traffic_without_ipvs(
    swarm, make_service, linkinit_image, run_container, unique
):
    """The limit swarm.py documents: a vip service's task answers at its own address, its
    virtual IP not at all. When this fails, the kernel has IPVS and the VIP works: the limit
    (and what the swarm tests avoid because of it) can go."""
    swarm.load(linkinit_image)
    name = make_service(unique("vip"), *ON_WORKER, *serving(linkinit_image))
    task = swarm.running_task(name)
    [vip] = [entry["Addr"].split("/")[0]
             for entry in swarm.service(name)["Endpoint"]["VirtualIPs"]
             if entry["NetworkID"] == swarm.network_id]
    script = (f"python3 {HELLO} ask {swarm.task_address(task)} {PORT} 20; echo task=$?; "
              f"python3 {HELLO} ask {vip} {PORT} 3; echo vip=$?")
    asker = run_container(["sh", "-c", script], network=swarm.network)
    assert wait_exit(asker) == 0
    lines = output(asker).splitlines()
    assert "task=0" in lines, output(asker, stdout=False, stderr=True)
    assert "vip=1" in lines, f"the VIP {vip} carried traffic: {lines}"
