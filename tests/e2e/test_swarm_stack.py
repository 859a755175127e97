"""The README's swarm demo, as a user runs it: examples/swarm-demo.yml deployed with
``docker stack deploy`` on the test swarm (tests/support/swarm.py). Redis runs on the
manager, the web app on the worker with no Engine socket, reading the manager's view
through linkinit proxy; it sets and reads a key through its link variables."""

from __future__ import annotations

import subprocess
from typing import Optional

import pytest

from tests.support.paths import ROOT
from tests.support.processes import wait_for
from tests.support.swarm import host_docker

from .conftest import SESSION

IMAGES = ("redis-image", "webapp", "linkinit-proxy")
ENDED = {"complete", "failed", "rejected", "shutdown"}

pytestmark = pytest.mark.timeout(900)  # the images, their load into the node, the stack


def stack_tasks(swarm, service: str) -> list:
    return list(swarm.api.tasks(filters={"service": service}))


def ended(swarm, service: str) -> Optional[dict]:
    return next((task for task in stack_tasks(swarm, service)
                 if task["Status"]["State"] in ENDED), None)


def remove_stack(swarm, stack: str) -> None:
    """``docker stack rm`` returns before its network is gone: wait for that, bounded."""
    host_docker("stack", "rm", stack, check=False)
    label = {"label": f"com.docker.stack.namespace={stack}"}
    wait_for(lambda: not swarm.api.services(filters=label) and not swarm.api.networks(
        filters=label), 60, f"stack {stack} to be removed")


def test_the_readmes_stack_runs_the_demo_across_nodes(swarm):
    built = subprocess.run([str(ROOT / "scripts" / "build-demo-images")], capture_output=True,
                           text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    for image in IMAGES:
        swarm.load(image)
    stack = f"lt{SESSION}"[:20]
    host_docker("stack", "deploy", "--resolve-image", "never", "-c",
                str(ROOT / "examples" / "swarm-demo.yml"), stack)
    try:
        task = wait_for(lambda: ended(swarm, f"{stack}_webapp"), 240,
                        "the web app's task to end")
        container = task["Status"]["ContainerStatus"]["ContainerID"]
        shown = swarm.node("logs", container, check=False)
        assert task["NodeID"] == swarm.node_id, "the web app ran on the manager"
        assert task["Status"]["ContainerStatus"]["ExitCode"] == 0, shown.stdout + shown.stderr
        lines = shown.stdout.splitlines()
        assert "webapp: REDIS_ENV_PASSWORD=dockerpass" in lines
        assert any(line.startswith("webapp: SET greeting at tcp://")
                   and line.endswith("GET greeting -> hello from webapp") for line in lines)
        [db] = [t for t in stack_tasks(swarm, f"{stack}_db") if t["DesiredState"] == "running"]
        assert db["NodeID"] == swarm.manager_id
        address = swarm.task_address(db, f"{stack}_appnet")
        assert f"webapp: REDIS_PORT_6379_TCP_ADDR={address}" in lines
    finally:
        remove_stack(swarm, stack)
