"""Helpers for the newer-engine tests: a node engine for a module (``open_node``), containers
and networks on it (``OnNode``), and ``linkinit proxy`` for its Engine (``NodeProxy``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest

from tests.support.engine_node import EngineNode
from tests.support.paths import ROOT

from .conftest import SESSION, TEST_LABEL, connect_engine
from .proxykit import MOUNT, ProxyProcess


def open_node(kind: str, engines_under_test: dict, tmp_path_factory: Any) -> Iterator[EngineNode]:
    """The body of a module's ``node`` fixture: build the node image if needed
    (scripts/build-engine-node KIND), start the node, load this session's test image."""
    build = subprocess.run([str(ROOT / "scripts" / "build-engine-node"), kind],
                           capture_output=True, text=True, timeout=900)
    if build.returncode != 0:
        pytest.fail(f"scripts/build-engine-node {kind} failed: {build.stderr[-2000:]}",
                    pytrace=False)
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    image = engines_under_test["docker"].image(tmp_path_factory)
    made = EngineNode(uuid.uuid4().hex[:8], {TEST_LABEL: SESSION}, kind)
    try:
        made.open()
        made.load(image)
        yield made
    finally:
        problems = made.close()
        assert not problems, problems


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
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]) \
            if subnet else None
        return self.client.networks.create(self.name(f"net{uuid.uuid4().hex[:4]}"), ipam=ipam,
                                           labels={TEST_LABEL: SESSION})

    def clean(self) -> None:
        for container in self.client.containers.list(all=True, filters={
                "label": f"{TEST_LABEL}={SESSION}"}):
            if container.status == "running":  # Podman's forced removal waits 10 s on sleep
                with contextlib.suppress(docker.errors.APIError):  # it ended meanwhile
                    container.kill()
            container.remove(force=True)
        for network in self.client.networks.list(filters={"label": f"{TEST_LABEL}={SESSION}"}):
            network.remove()


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


