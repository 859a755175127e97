"""The core stories on Podman 5.8 (Debian unstable's podman, compatible API 1.44): a node
container started here and removed after (tests/support/engine_node.py), its API service
driven through its socket with the docker SDK, as the host's Podman 4.3 is.

What Podman 5.8 changes, each checked below: it answers the compatible API as 1.44 (4.3:
1.41); it refuses ``--link`` outright ("link is not supported"), so a Podman container has no
Engine links and declares its links with labels, the file or flags. In this node its
containers run without cgroups of their own (crun refuses this host's hybrid cgroup tree), so
linkinit finds its container by ``/run/.containerenv`` and the hostname bind mount.
"""

from __future__ import annotations

from typing import Iterator

import docker
import pytest

from tests.support.engine_node import EngineNode

from .dockerkit import env_lines, output, wait_exit, wait_until
from .nodekit import OnNode, ip_on, open_node

pytestmark = pytest.mark.timeout(300)
REDIS = ["redis-server", "--protected-mode", "no"]


@pytest.fixture(scope="module")
def node(engines_under_test, tmp_path_factory) -> Iterator[EngineNode]:
    """Podman 5.8 in a node container, with this session's test image loaded into it."""
    yield from open_node("podman", engines_under_test, tmp_path_factory)


@pytest.fixture
def on_node(node: EngineNode, engines_under_test, tmp_path_factory) -> Iterator[OnNode]:
    place = OnNode(node, engines_under_test["docker"].image(tmp_path_factory))
    try:
        yield place
    finally:
        place.clean()


def test_the_engine_is_podman_5_8_answering_api_1_44(node):
    version = node.client.version()
    assert version["Version"].startswith("5.8."), version
    assert version["ApiVersion"] == "1.44"


def test_podman_5_refuses_link_so_a_container_has_no_engine_links(on_node):
    """`--link` is refused at create: on Podman links are declared by label, file or flag."""
    child = on_node.run(["sleep", "300"], on_node.name("db"), socket=False)
    with pytest.raises(docker.errors.APIError, match="link is not supported"):
        on_node.run(["true"], on_node.name("web"), links={child.name: "redis"})


def test_a_label_link_gives_the_variables_on_podman_5(on_node):
    """The label story: ports with their range, the child's environment."""
    child = on_node.run(REDIS, on_node.name("db"), socket=False, ports=[6379, 6380],
                        environment={"PASSWORD": "dockerpass"})
    parent = on_node.run(["linkinit", "--print-env"], on_node.name("web"),
                         labels={"link.redis": child.name})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    env = env_lines(output(parent))
    ip = ip_on(child, "podman")
    assert env["REDIS_PORT"] == f"tcp://{ip}:6379"
    assert env["REDIS_PORT_6379_TCP_END"] == f"tcp://{ip}:6380"
    assert env["REDIS_ENV_PASSWORD"] == "dockerpass"
    assert env["REDIS_NAME"] == f"/{parent.name}/redis"


def test_a_label_link_waits_for_a_late_child_on_podman_5(on_node):
    """The parent starts first; the child appears; linkinit goes on."""
    name = on_node.name("db")
    parent = on_node.run(["linkinit", "--timeout", "60", "--print-env"], on_node.name("web"),
                         labels={"link.redis": name})
    wait_until(lambda: "missing" in output(parent, stdout=False, stderr=True), 30,
               "the parent waiting for its missing child")
    child = on_node.run(REDIS, name, socket=False, ports=[6379])
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert env_lines(output(parent))["REDIS_PORT"] == f"tcp://{ip_on(child, 'podman')}:6379"
