"""The core stories on Docker 28.5 (Debian unstable's docker.io, API 1.51), the last Engine that
injects link variables on the default bridge by default: a node container started here and
removed after (tests/support/engine_node.py), driven through its socket.

What 28.5 changes that linkinit relies on, each checked below: its own ``--link`` variables
sort TCP ports first (moby v28; 20.10 sorted by number alone), so the whole set, UDP ranges
included, is the oracle for linkinit's; the inspect answers API 1.51 with the same
``HostConfig.Links`` and per-network ``Links`` as 20.10.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Iterator

import pytest

from tests.support.engine_node import EngineNode

from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import link_variables
from .nodekit import MOUNT, NodeProxy, OnNode, ip_on, open_node
from .proxykit import container_request

pytestmark = pytest.mark.timeout(300)
REDIS = ["redis-server", "--protected-mode", "no"]
BOTH = "env; echo ---; linkinit --print-env"  # the Engine's own variables, then linkinit's
LIBRARY = "import linkinit; print(linkinit.require('redis').ip)"


@pytest.fixture(scope="module")
def node(engines_under_test, tmp_path_factory) -> Iterator[EngineNode]:
    """Docker 28.5 in a node container, with this session's test image loaded into it."""
    yield from open_node("docker", engines_under_test, tmp_path_factory)


@pytest.fixture
def on_node(node: EngineNode, engines_under_test, tmp_path_factory) -> Iterator[OnNode]:
    place = OnNode(node, engines_under_test["docker"].image(tmp_path_factory))
    try:
        yield place
    finally:
        place.clean()


def test_the_engine_is_docker_28_5_with_api_1_51(node):
    """The node runs what the issue names: 28.5 (the oracle), API 1.51."""
    version = node.client.version()
    assert version["Version"].startswith("28.5."), version
    assert version["ApiVersion"] == "1.51"


def test_a_default_bridge_link_matches_docker_28s_own_variables(on_node):
    """`docker run --link db:redis` on 28.5, no label: linkinit's variables equal the Engine's
    own, UDP ranges and TCP-first order (moby v28) included."""
    child = on_node.run(REDIS, on_node.name("db"), socket=False,
                        ports=[6379, 6380, (53, "udp"), (54, "udp")],
                        environment={"PASSWORD": "dockerpass", "EMPTY": ""})
    parent = on_node.run(["sh", "-c", BOTH], on_node.name("web"), links={child.name: "redis"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    engine, _, mine = output(parent).partition("---\n")
    injected = link_variables(env_lines(engine), "REDIS")
    assert injected["REDIS_PORT_53_UDP_START"].startswith("udp://")
    assert env_lines(mine) == injected
    ports = [key for key in mine.split() if key.endswith(("_PROTO=tcp", "_PROTO=udp"))]
    assert [port.split("=")[1] for port in ports] == ["tcp", "tcp", "udp", "udp"]


def test_a_label_link_waits_for_a_late_child(on_node):
    """The label story on 28.5: the parent starts first, the child appears, linkinit goes on."""
    name = on_node.name("db")
    parent = on_node.run(["linkinit", "--timeout", "60", "--print-env"], on_node.name("web"),
                         labels={"link.redis": name})
    wait_until(lambda: "missing" in output(parent, stdout=False, stderr=True), 30,
               "the parent waiting for its missing child")
    child = on_node.run(REDIS, name, socket=False, ports=[6379])
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert env_lines(output(parent))["REDIS_PORT"] == f"tcp://{ip_on(child, 'bridge')}:6379"


def test_a_user_network_link_and_follow_mode(on_node):
    """`docker run --network n --link db:redis` on 28.5: the Engine injects nothing there,
    linkinit exports the link and, with on-change=hosts, follows the child recreated under
    its name at another address."""
    subnet = ipaddress.ip_network(f"10.232.{uuid.uuid4().int % 200 + 20}.0/24")
    network = on_node.network(str(subnet)).name
    name = on_node.name("db")
    first = on_node.run(REDIS, name, network=network, socket=False, ports=[6379],
                        address=str(subnet[10]))
    parent = on_node.run(["linkinit", "--", "sleep", "300"], on_node.name("web"),
                         network=network, links={name: "redis"},
                         labels={"linkinit.on-change": "hosts"})

    def library_ip() -> str:
        return parent.exec_run(["python3", "-c", LIBRARY]).output.decode().strip()

    wait_until(lambda: library_ip() == str(subnet[10]), 60, "the first resolution")
    first.remove(force=True)
    on_node.run(REDIS, name, network=network, socket=False, ports=[6379],
                address=str(subnet[20]))
    wait_until(lambda: library_ip() == str(subnet[20]), 60, "require() at the new address")


def test_the_proxy_scopes_a_link_parent_on_docker_28(node, on_node):
    """Through `linkinit proxy` (on this host, for the node's Engine) a parent with only a
    `--link` gets its child's variables and sees nothing else: a stranger is a 404."""
    proxy = NodeProxy(node)
    try:
        proxy.start()
        child = on_node.run(REDIS, on_node.name("db"), socket=False, ports=[6379])
        stranger = on_node.run(["sleep", "300"], on_node.name("vault"), socket=False,
                               environment={"VAULT_TOKEN": "stranger-secret"})
        parent = on_node.run(["linkinit", "--", "sleep", "300"], on_node.name("web"),
                             links={child.name: "redis"}, socket=False,
                             host_config_binds=[f"{proxy.in_node}:{MOUNT}:ro"])
        wait_until(lambda: parent.reload() or parent.status == "running", 60, "parent up")
        library = "import linkinit; print(linkinit.require('redis').ip)"
        wait_until(lambda: parent.exec_run(["python3", "-c", library]).output.decode()
                   .strip() == ip_on(child, "bridge"), 60, "the link through the proxy")
        seen = container_request(parent, "GET", f"/containers/{child.name}/json")
        hidden = container_request(parent, "GET", f"/containers/{stranger.name}/json")
        assert seen["status"] == 200 and hidden["status"] == 404, proxy.output()
        assert "stranger-secret" not in str(hidden)
    finally:
        proxy.cleanup()
