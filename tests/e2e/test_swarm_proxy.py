"""``linkinit proxy --listen tcp://...`` on a real two-node swarm (tests/support/swarm.py): the
proxy runs as a container on the manager, attached to the overlay network, with the manager's
Engine socket; parents run as tasks on the worker with no socket at all and
``DOCKER_HOST=tcp://<the proxy>:2375``. The proxy knows each caller by the overlay address
swarm gave its task, and shows it itself (which the manager's Engine cannot inspect: it runs
on another node), the services it links, their tasks and image, and nothing else.

Children are dnsrr services on the manager: the kernel here has no IPVS, so a virtual IP
carries no traffic (test_swarm.py) and a task's own address does. A worker parent without
the proxy (its node's own socket) is test_swarm_links.py's
``test_a_worker_parent_without_a_manager_fails_at_once_saying_what_to_deploy``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.support.moby import moby_to_env
from tests.support.paths import ROOT
from tests.support.swarm import poll

from .dockerkit import env_lines, output
from .swarmkit import (
    ON_MANAGER,
    ON_WORKER,
    ONCE,
    ended_task,
    exit_code,
    parent_before_child,
    serving,
)

pytestmark = pytest.mark.timeout(900)  # the first swarm test of a session makes the swarm

PORT = 2375
MANAGER_SOCKET = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "ro"}}
# What a task that links nothing tries through the proxy, each answer as JSON.
STRANGER = """
import json, socket
from linkinit.engine.client import Engine
from linkinit.errors import EngineError
engine = Engine("tcp://{proxy}:{port}")
tries = {{
    "itself": lambda: engine.inspect_container(socket.gethostname())["Name"],
    "service": lambda: engine.inspect_service("{service}"),
    "tasks": lambda: engine.list_tasks({{"service": ["{service}"]}}),
    "every task": lambda: engine.get("/tasks"),
    "the proxy's container": lambda: engine.inspect_container("{proxy}"),
}}
found = {{}}
for what, attempt in tries.items():
    try:
        found[what] = attempt()
    except EngineError as error:
        found[what] = [error.http_status, str(error)]
print(json.dumps(found))
"""
_PROXY_IMAGES: dict[str, str] = {}


def proxy_image_for(linkinit_image: str, docker_client: Any, tmp_path_factory: Any) -> str:
    """The test image plus aiohttp (the ``host`` extra), from wheels built here: images
    reach no package index. Built once a session per test image."""
    if linkinit_image in _PROXY_IMAGES:
        return _PROXY_IMAGES[linkinit_image]
    context = tmp_path_factory.mktemp("proxy-image")
    wheels = ROOT / "build" / "wheels-host"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q",
                            "--disable-pip-version-check", "-w", str(wheels), "aiohttp>=3.12"],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"pip wheel aiohttp: {built.stderr[-2000:]}"
    shutil.copytree(wheels, context / "wheels")
    (context / "Dockerfile").write_text(
        f"FROM {linkinit_image}\nCOPY wheels/ /tmp/wheels/\n"
        "RUN PIP_BREAK_SYSTEM_PACKAGES=1 pip install --no-cache-dir --no-index "
        "--find-links /tmp/wheels aiohttp && rm -rf /tmp/wheels\n")
    tag = linkinit_image.replace("linkinit-test:", "linkinit-test-proxy:")
    docker_client.images.build(path=str(context), tag=tag, rm=True)
    _PROXY_IMAGES[linkinit_image] = tag
    return tag


@pytest.fixture
def tcp_proxy(swarm, linkinit_image, docker_client, tmp_path_factory, run_container, unique):
    """The proxy, a container on the manager on the overlay network, once it has found
    itself there (it logs the networks it tells TCP callers apart on)."""
    image = proxy_image_for(linkinit_image, docker_client, tmp_path_factory)
    proxy = run_container(["linkinit", "proxy", "--listen", f"tcp://0.0.0.0:{PORT}", "-v"],
                          image=image, name=unique("proxy"), network=swarm.network,
                          volumes=MANAGER_SOCKET)
    poll(lambda: f"TCP callers are the tasks and containers on: {swarm.network} ("
         in output(proxy, stdout=False, stderr=True), 60,
         "the proxy to find itself on the overlay network")
    return proxy


def worker_logs(swarm: Any, task: dict, stderr: bool = False) -> str:
    """What a task's container on the worker printed."""
    done = swarm.node("logs", task["Status"]["ContainerStatus"]["ContainerID"])
    return done.stderr if stderr else done.stdout


def test_a_worker_parent_gets_its_service_childrens_variables_through_the_tcp_proxy(
    swarm, make_service, linkinit_image, unique, tcp_proxy
):
    """db publishes its target port (the ports come from the service); cache publishes none
    (the ports come from its image, which the parent may inspect through the proxy). The
    parent waits until db listens at its task's address, across the nodes."""
    swarm.load(linkinit_image)
    db = make_service(unique("db"), *ON_MANAGER, "--endpoint-mode", "dnsrr",
                      "--env", "PASSWORD=dockerpass", "--env", "EMPTY=",
                      "--publish", "mode=host,target=8080", *serving(linkinit_image))
    cache = make_service(unique("cache"), *ON_MANAGER, "--endpoint-mode", "dnsrr",
                         *serving(linkinit_image, 9090))
    parent = make_service(unique("web"), *ON_WORKER, *ONCE,
                          "--env", f"DOCKER_HOST=tcp://{tcp_proxy.name}:{PORT}",
                          "--container-label", f"link.db={db}",
                          "--container-label", f"link.cache={cache}",
                          "--container-label", "link.cache.wait=started",
                          linkinit_image, "linkinit", "--timeout", "120", "--print-env")
    task = ended_task(swarm, parent, 180)
    assert task["NodeID"] == swarm.node_id
    errors = worker_logs(swarm, task, stderr=True)
    assert exit_code(task) == 0, errors + output(tcp_proxy, stdout=False, stderr=True)[-3000:]
    container = swarm.task_container(task)
    assert container["Mounts"] == []  # no Engine socket in the parent
    name = container["Name"]
    db_address = swarm.task_address(swarm.running_task(db))
    cache_address = swarm.task_address(swarm.running_task(cache))
    expected = (moby_to_env(f"{name}/db", db_address, [(8080, "tcp")],
                            ["PASSWORD=dockerpass", "EMPTY="])
                + moby_to_env(f"{name}/cache", cache_address, [], []))
    assert env_lines(worker_logs(swarm, task)) == dict(expected)
    served = output(tcp_proxy, stdout=False, stderr=True)
    caller = name.lstrip("/")
    for request in (f"GET /v1.41/services/{db} 200", "GET /v1.41/tasks 200",
                    f"GET /v1.41/images/{linkinit_image}/json 200"):
        assert any(request in line and caller in line for line in served.splitlines()), (
            f"{request} for {caller} not in the proxy's log:\n{served[-3000:]}")


def test_a_worker_task_that_links_nothing_sees_only_itself(
    swarm, make_service, linkinit_image, unique, tcp_proxy
):
    """Deny by default for TCP callers: an existing service reads as missing, task lists are
    refused, the proxy's own container is invisible; the task itself is answered."""
    swarm.load(linkinit_image)
    db = make_service(unique("db"), *ON_MANAGER, "--endpoint-mode", "dnsrr",
                      *serving(linkinit_image))
    script = STRANGER.format(proxy=tcp_proxy.name, port=PORT, service=db)
    stranger = make_service(unique("stranger"), *ON_WORKER, *ONCE,
                            linkinit_image, "python3", "-c", script)
    task = ended_task(swarm, stranger, 120)
    assert exit_code(task) == 0, worker_logs(swarm, task, stderr=True)
    found = json.loads(worker_logs(swarm, task).strip().splitlines()[-1])
    assert found["itself"] == swarm.task_container(task)["Name"]
    assert found["service"] is None  # a 404, as for a service that does not exist
    assert found["tasks"][0] == 403 and f"/tasks of service {db!r} is refused" in found["tasks"][1]
    assert found["every task"][0] == 403
    assert found["the proxy's container"] is None


def test_a_worker_parent_deployed_first_waits_through_the_proxy_for_its_child(
    swarm, make_service, linkinit_image, unique, tcp_proxy, docker_client
):
    """The child does not exist when the parent asks: the proxy's answer is a 404 (no
    refusal, so linkinit waits); the child's creation reaches the parent's event stream
    through the proxy, whose scope for it now holds the new service; then the parent reaches
    the child's task on the other node at the exported address."""
    swarm.load(linkinit_image)
    child = unique("db")
    through_proxy = ("--env", f"DOCKER_HOST=tcp://{tcp_proxy.name}:{PORT}")
    task = parent_before_child(
        swarm, make_service, linkinit_image, child, (unique("web"), *ON_WORKER, *through_proxy),
        ON_MANAGER, lambda task, stderr=False: worker_logs(swarm, task, stderr))
    errors = worker_logs(swarm, task, stderr=True)
    assert exit_code(task) == 0, errors + output(tcp_proxy, stdout=False, stderr=True)[-3000:]
    on_manager = swarm.running_task(child)["Status"]["ContainerStatus"]["ContainerID"]
    hostname = docker_client.containers.get(on_manager).attrs["Config"]["Hostname"]
    assert worker_logs(swarm, task).strip() == f"hello from {hostname}"
    served = output(tcp_proxy, stdout=False, stderr=True)
    assert "GET /v1.41/events 200 streaming to " in served
