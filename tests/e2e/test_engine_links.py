"""Zero-change migration on this host's Docker: a parent started with ``--link`` (on the default
bridge or a user network) and linkinit as its entrypoint gets the link variables with no label,
through the socket or the proxy; ``ls`` shows those links, follow mode follows them, a label
replaces one alias or sets its wait mode, and ``--print-env`` with no Engine exits 69.

Docker 20.10 still injects the variables on the default bridge: they are the oracle there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import SESSION, TEST_LABEL
from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import link_variables, run_parent, start_child
from .proxykit import proxies
from .test_follow import Rig, address, library_ip, subnet_network  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(180)
REDIS = ["redis-server", "--protected-mode", "no"]
CHILD_ENV = {"PASSWORD": "dockerpass", "EMPTY": "", "EQUALS": "a=b"}
BOTH = 'env; echo ---; linkinit --print-env'  # the Engine's own variables, then linkinit's


def network_parent(client, image: str, name: str, command: list, network: str, links: dict,
                   labels: dict | None = None, start: bool = True):
    """A parent made as `docker run --network NETWORK --link CHILD:ALIAS` makes it: the links
    in the network's endpoint (the SDK's ``links=`` beside ``network=`` is dropped)."""
    endpoint = client.api.create_endpoint_config(links=links)
    created = client.api.create_container(
        image, command, name=name, labels={**(labels or {}), TEST_LABEL: SESSION},
        host_config=client.api.create_host_config(network_mode=network, binds=[
            "/var/run/docker.sock:/var/run/docker.sock:ro"]),
        networking_config=client.api.create_networking_config({network: endpoint}))
    parent = client.containers.get(created["Id"])
    if start:
        parent.start()
    return parent


def ip_on(container, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def halves(text: str) -> tuple[dict, dict]:
    engine, _, mine = text.partition("---\n")
    return env_lines(engine), env_lines(mine)


def test_a_default_bridge_link_gives_the_engines_own_variables(
    docker_client, linkinit_image, run_container, unique
):
    """`docker run --link db:redis` with no label: linkinit's variables are the Engine's own,
    name for name and value for value (ranges, the child's env)."""
    child = start_child(docker_client, linkinit_image, unique("db"), command=REDIS,
                        expose=[6379, 6380, 6381, 8080], environment=CHILD_ENV)
    parent = run_container(["sh", "-c", BOTH], name=unique("web"), links={child.name: "redis"},
                           volumes=run_container.socket_volume)
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    engine, mine = halves(output(parent))
    assert "REDIS_PORT_6379_TCP_START" in engine and engine["REDIS_ENV_EQUALS"] == "a=b"
    assert mine == link_variables(engine, "REDIS")


def test_a_user_network_link_a_label_replacing_one_and_a_connect_link(
    docker_client, linkinit_image, run_container, make_network, unique
):
    """On a user network the Engine injects nothing; linkinit exports each --link (from `docker
    run` and from `docker network connect --link`) except the alias a label replaces."""
    network = make_network(unique("net")).name
    db, other, third = (start_child(docker_client, linkinit_image, unique(name), command=REDIS,
                                    expose=[port], network=network)
                        for name, port in (("db", 6379), ("other", 6380), ("third", 6381)))
    parent = network_parent(
        docker_client, linkinit_image, unique("web"), ["linkinit", "--", "env"], network,
        {db.name: "redis", other.name: "cache"}, start=False,
        labels={"link.cache": third.name, "link.cache.wait": "started"})
    try:
        extra = make_network(unique("extra"))
        extra.connect(parent, links=[(db.name, "spare")])
        parent.start()
        assert wait_exit(parent) == 0, output(parent, stderr=True)
        env = env_lines(output(parent))
    finally:
        parent.remove(force=True)
    ip = {child.name: ip_on(child, network) for child in (db, third)}
    assert env["REDIS_PORT"] == f"tcp://{ip[db.name]}:6379"
    assert env["REDIS_NAME"] == f"/{parent.name}/redis"
    assert env["CACHE_PORT"] == f"tcp://{ip[third.name]}:6381"
    assert env["SPARE_PORT"] == f"tcp://{ip[db.name]}:6379"  # db shares `network` with it


def test_a_wait_label_sets_an_engine_links_wait_mode(
    docker_client, linkinit_image, run_container, unique
):
    """An Engine link waits as a label's does (listening, by default: a child that never
    listens is 75); `link.redis.wait=started` alone applies to the Engine's `redis` link."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    args = ["linkinit", "--timeout", "2", "--print-env"]
    waits = run_container(args, name=unique("waits"), links={child.name: "redis"},
                          volumes=run_container.socket_volume)
    started = run_container(args, name=unique("started"), links={child.name: "redis"},
                            volumes=run_container.socket_volume,
                            labels={"link.redis.wait": "started"})
    assert wait_exit(waits) == 75, output(waits, stderr=True)
    assert "redis" in output(waits, stdout=False, stderr=True)
    assert wait_exit(started) == 0, output(started, stderr=True)
    assert env_lines(output(started))["REDIS_PORT"].endswith(":6379")


def test_print_env_without_an_engine_exits_69(run_container, unique):
    """No socket, no proxy directory, no DOCKER_HOST: --print-env cannot read the container's
    links (the Engine's among them) and says so, rather than print nothing."""
    parent = run_parent(run_container, unique("web"), ["--print-env"], socket=False)
    assert wait_exit(parent) == 69
    assert output(parent, stdout=False, stderr=True) == (
        "linkinit: --print-env: cannot read this container's links (no Engine socket at "
        "/var/run/docker.sock, no proxy directory /run/linkinit, DOCKER_HOST unset), so there "
        "are no link variables to print: mount the proxy's directory "
        "(-v /run/linkinit:/run/linkinit:ro) or the Engine's socket "
        "(mount it with -v /var/run/docker.sock:/var/run/docker.sock)\n")


def test_ls_shows_engine_links_and_the_proxy_scopes_by_them(
    docker_client, linkinit_image, run_container, unique
):
    """`linkinit ls` lists a --link as a parent/alias row; through `linkinit proxy` a parent
    with only a --link sees its child (and gets its variables)."""
    child = start_child(docker_client, linkinit_image, unique("db"), command=REDIS,
                        expose=[6379])
    for start in proxies():
        proxy = start()
        parent = run_container(["linkinit", "--print-env"], name=unique("web"),
                               links={child.name: "redis"}, volumes=proxy.volumes)
        assert wait_exit(parent) == 0, output(parent, stderr=True) + proxy.output()
        ip = ip_on(child, "bridge")
        assert env_lines(output(parent))["REDIS_PORT"] == f"tcp://{ip}:6379"
        done = subprocess.run([sys.executable, "-m", "linkinit", "ls", "--all", "--format",
                               "json"], capture_output=True, text=True, timeout=60,
                              env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"})
        assert done.returncode == 0, done.stderr
        rows = {row["name"]: row for row in json.loads(done.stdout)}
        assert rows[f"{parent.name}/redis"]["container"] == child.id[:12]


def test_follow_mode_follows_an_engine_link(
    docker_client, linkinit_image, run_container, unique, subnet_network  # noqa: F811
):
    """on-change=hosts with the link from `docker run --network n --link`: the library view
    follows the child to its new address."""
    rig = Rig(docker_client, linkinit_image, run_container, unique, subnet_network())
    parent = network_parent(docker_client, linkinit_image, unique("web"),
                            ["linkinit", "--", "sleep", "300"], rig.network.name,
                            {rig.child.name: "redis"}, labels={"linkinit.on-change": "hosts"})
    old = address(rig.child, rig.network)
    wait_until(lambda: library_ip(parent) == old, timeout=60, what="the first resolution")
    new = rig.move_child()
    wait_until(lambda: library_ip(parent) == new, timeout=60, what="require() at the new IP")
