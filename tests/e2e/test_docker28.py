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
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.engine_node import EngineNode
from tests.support.paths import ROOT

from .conftest import SESSION, TEST_LABEL, connect_engine
from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import link_variables
from .proxykit import MOUNT, ProxyProcess, container_request

pytestmark = pytest.mark.timeout(300)
REDIS = ["redis-server", "--protected-mode", "no"]
BOTH = "env; echo ---; linkinit --print-env"  # the Engine's own variables, then linkinit's
LIBRARY = "import linkinit; print(linkinit.require('redis').ip)"


class OnNode:
    """Containers and networks on the node, labelled for the session, removed at teardown."""

    def __init__(self, node: EngineNode, image: str) -> None:
        self.node, self.client, self.image = node, node.client, image
        self.token = uuid.uuid4().hex[:6]

    def name(self, prefix: str) -> str:
        return f"lt-{prefix}-{self.token}"

    def run(self, command: list, name: str, network: str = "", links: Any = None,
            socket: bool = True, start: bool = True, address: str = "", **create: Any) -> Any:
        """A container on the node; ``links`` {child: alias} as `docker run --link` sets them
        (in HostConfig on the default bridge, in the endpoint on a user network)."""
        api = self.client.api
        binds = create.pop("host_config_binds", None) or ([
            f"{path}:{bind['bind']}:{bind['mode']}"
            for path, bind in self.node.socket_volume.items()] if socket else None)
        endpoint = api.create_endpoint_config(
            links=links if network else None, ipv4_address=address or None)
        host_config = api.create_host_config(
            network_mode=network or "default", links=None if network else links, binds=binds)
        created = api.create_container(
            self.image, command, name=name, labels={TEST_LABEL: SESSION, **create.pop(
                "labels", {})}, host_config=host_config,
            networking_config=api.create_networking_config({network: endpoint})
            if network else None, **create)
        container = self.client.containers.get(created["Id"])
        if start:
            container.start()
        return container

    def network(self, subnet: str = "") -> Any:
        import docker

        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]) \
            if subnet else None
        return self.client.networks.create(self.name(f"net{uuid.uuid4().hex[:4]}"), ipam=ipam,
                                           labels={TEST_LABEL: SESSION})

    def clean(self) -> None:
        for container in self.client.containers.list(all=True, filters={
                "label": f"{TEST_LABEL}={SESSION}"}):
            container.remove(force=True)
        for network in self.client.networks.list(filters={"label": f"{TEST_LABEL}={SESSION}"}):
            network.remove()


@pytest.fixture(scope="module")
def node(engines_under_test, tmp_path_factory) -> Iterator[EngineNode]:
    """Docker 28.5 in a node container, with this session's test image loaded into it."""
    import subprocess

    build = subprocess.run([str(ROOT / "scripts" / "build-engine-node")], capture_output=True,
                           text=True, timeout=900)
    if build.returncode != 0:
        pytest.fail(f"scripts/build-engine-node failed: {build.stderr[-2000:]}", pytrace=False)
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    image = engines_under_test["docker"].image(tmp_path_factory)
    made = EngineNode(uuid.uuid4().hex[:8], {TEST_LABEL: SESSION})
    try:
        made.open()
        made.load(image)
        yield made
    finally:
        problems = made.close()
        assert not problems, problems


@pytest.fixture
def on_node(node: EngineNode, engines_under_test, tmp_path_factory) -> Iterator[OnNode]:
    place = OnNode(node, engines_under_test["docker"].image(tmp_path_factory))
    try:
        yield place
    finally:
        place.clean()


class NodeProxy(ProxyProcess):
    """`linkinit proxy` on this host for the node's Engine, its socket in the node's shared
    directory so that the node's containers mount it (``volumes``)."""

    def __init__(self, node: EngineNode) -> None:
        super().__init__(upstream=node.socket)
        shutil.rmtree(self.directory)
        name = f"proxy-{uuid.uuid4().hex[:6]}"
        self.directory = Path(node.directory) / name
        self.directory.mkdir(mode=0o755)
        os.chmod(self.directory, 0o755)
        self.in_node = f"/engine/{name}"
        self.socket = str(self.directory / "engine.sock")
        self.log = self.directory.with_suffix(".log")
        self.args = ["--listen", self.socket, "--verbose"]

    @property
    def volumes(self) -> dict:
        return {self.in_node: {"bind": MOUNT, "mode": "ro"}}


def ip_on(container: Any, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


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
