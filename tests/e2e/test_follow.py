"""Follow mode on the real Engine: a child that comes back on a new address is followed.

Each test makes a user-defined network with a fixed subnet of its own. To move a child to a
new address, the child is stopped, a filler container takes the address it had (the first
free one), and the child is started again: the Engine then gives it the next one.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any, Callable, Iterator, List

import pytest

from .conftest import SESSION, TEST_LABEL
from .dockerkit import output, wait_exit, wait_until
from .linkkit import run_parent, start_child
from .pid1_helpers import process_table

LIBRARY = "import linkinit; print(linkinit.require('redis').ip)"
# Moving a child takes a stop, a filler and a start: ten of them take minutes under load.
pytestmark = pytest.mark.timeout(300)


def stderr_of(container: Any) -> str:
    return output(container, stdout=False, stderr=True)


@pytest.fixture
def subnet_network(docker_client) -> Iterator[Callable[[], Any]]:
    """Networks on a /24 of their own under 10.231.0.0/16 (removed with their containers)."""
    import docker

    made: List[Any] = []

    def make() -> Any:
        for _ in range(20):  # another test's /24 may overlap: pick another, a bounded number
            subnet = f"10.231.{uuid.uuid4().int % 230 + 20}.0/24"
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
            try:
                network = docker_client.networks.create(
                    f"lt-follow-{uuid.uuid4().hex[:8]}", ipam=ipam, labels={TEST_LABEL: SESSION}
                )
            except docker.errors.APIError as error:
                if "overlap" in str(error):
                    continue
                raise
            made.append(network)
            return network
        raise AssertionError("no free /24 under 10.231.0.0/16 for the test network")

    yield make
    for network in made:
        for container in docker_client.containers.list(all=True, filters={"network": network.id}):
            container.remove(force=True)
        network.remove()


def address(container: Any, network: Any) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]


class Rig:
    """A child on its own subnet and the containers that move it."""

    def __init__(self, docker_client, image, run_container, unique, network) -> None:
        self.client, self.image, self.network = docker_client, image, network
        self.run_container, self.unique = run_container, unique
        self.child = start_child(docker_client, image, unique("db"), expose=[6379],
                                 command=["nc", "-lk", "6379"], network=network.name,
                                 aliases=["db"])
        self.fillers: List[Any] = []

    def move_child(self) -> str:
        """Stop the child, let a filler take its address, start it again: its new address."""
        old = address(self.child, self.network)
        self.child.stop(timeout=1)
        name = self.unique(f"filler{len(self.fillers)}")
        filler = self.run_container(["sleep", "300"], name=name, network=self.network.name)
        self.fillers.append(filler)
        assert address(filler, self.network) == old, "the filler did not take the address"
        self.child.start()
        new = address(self.child, self.network)
        assert new != old
        return new

    def parent(self, command: List[str], policy: str, *args: str, **labels: str) -> Any:
        labels = {"link.redis": self.child.name, "linkinit.on-change": policy, **labels}
        return run_parent(self.run_container, self.unique("web"), [*args, "--", *command],
                          labels=labels, network=self.network.name)


@pytest.fixture
def rig(docker_client, linkinit_image, run_container, unique, subnet_network) -> Rig:
    return Rig(docker_client, linkinit_image, run_container, unique, subnet_network())


def hosts_lines(parent: Any, alias: str = "redis") -> List[str]:
    done = parent.exec_run(["cat", "/etc/hosts"])
    return [line for line in done.output.decode().splitlines()
            if len(line.split()) > 1 and line.split()[1] == alias]


def library_ip(parent: Any) -> str:
    return parent.exec_run(["python3", "-c", LIBRARY]).output.decode().strip()


def test_hosts_policy_rewrites_etc_hosts_and_the_library_view(rig: Rig) -> None:
    """on-change=hosts: the parent's /etc/hosts, linkinit.require() and linkinit health
    follow the child."""
    parent = rig.parent(["sleep", "300"], "hosts")
    old = address(rig.child, rig.network)
    wait_until(lambda: library_ip(parent) == old, timeout=60, what="the first resolution")
    new = rig.move_child()
    wait_until(lambda: library_ip(parent) == new, timeout=60, what="require() at the new IP")
    wait_until(lambda: hosts_lines(parent) and hosts_lines(parent)[0].startswith(new + "\t"),
               timeout=60, what="/etc/hosts at the new IP")
    assert len(hosts_lines(parent)) == 1
    assert f"follow: redis ({rig.child.name}) changed: now at {new}" in stderr_of(parent)
    # linkinit health checks the current values (the old address is the filler's, closed)
    wait_until(lambda: parent.exec_run(["linkinit", "health"]).exit_code == 0, timeout=15,
               what="linkinit health at the new address")


def bounce(rig: Rig, parent: Any) -> None:
    """Stop the child and start it again on the same address, the watcher seeing both."""
    downs, ups = stderr_of(parent).count("is down"), stderr_of(parent).count("is up again")
    rig.child.stop(timeout=1)
    wait_until(lambda: stderr_of(parent).count("is down") > downs, timeout=60,
               what="the watcher seeing the child down")
    rig.child.start()
    wait_until(lambda: stderr_of(parent).count("is up again") > ups, timeout=60,
               what="the watcher seeing the child up again")


def test_signal_policy_sends_one_signal_per_change_and_none_without(rig: Rig) -> None:
    """on-change=signal:HUP: exactly one HUP per change; a restart onto the same address
    (nothing changed for COMMAND) sends none."""
    parent = rig.parent(["python3", "/opt/linkinit-tests/print_signals.py", "--lifetime", "120"],
                        "signal:HUP")
    wait_until(lambda: "ready" in output(parent), timeout=60, what="COMMAND ready")
    bounce(rig, parent)  # same address, same container: no change
    assert "SIGHUP" not in output(parent)
    rig.move_child()
    wait_until(lambda: "SIGHUP" in output(parent), timeout=60, what="the HUP")
    bounce(rig, parent)
    assert output(parent).count("SIGHUP") == 1, output(parent)


def test_restart_policy_gives_the_new_command_the_new_variables(rig: Rig) -> None:
    command = ["sh", "-c", "echo ADDR=$REDIS_PORT_6379_TCP_ADDR; exec sleep 300"]
    parent = rig.parent(command, "restart", "--grace", "1")
    old = address(rig.child, rig.network)
    wait_until(lambda: f"ADDR={old}" in output(parent), timeout=60, what="the first COMMAND")
    new = rig.move_child()
    wait_until(lambda: f"ADDR={new}" in output(parent), timeout=60, what="the restarted COMMAND")
    assert output(parent).splitlines() == [f"ADDR={old}", f"ADDR={new}"]
    parent.reload()
    assert parent.status == "running"


def test_exit_policy_ends_the_container_with_the_documented_status(rig: Rig) -> None:
    parent = rig.parent(["sleep", "300"], "exit")
    wait_until(lambda: library_ip(parent), timeout=60, what="the parent running")
    rig.move_child()
    assert wait_exit(parent, timeout=60) == 75, stderr_of(parent)
    assert "on-change=exit" in stderr_of(parent)


def test_a_compose_style_recreate_is_followed(rig: Rig, docker_client, linkinit_image) -> None:
    """Removed and run again under the same name and network alias: another container."""
    parent = rig.parent(["sleep", "300"], "hosts", **{"link.redis": "db"})
    first = address(rig.child, rig.network)
    wait_until(lambda: library_ip(parent) == first, timeout=60, what="the first resolution")
    name = rig.child.name
    rig.child.remove(force=True)
    filler = rig.run_container(["sleep", "300"], name=rig.unique("filler-c"),
                               network=rig.network.name)
    assert address(filler, rig.network) == first
    again = start_child(docker_client, linkinit_image, name, expose=[6379],
                        command=["nc", "-lk", "6379"], network=rig.network.name, aliases=["db"])
    new = address(again, rig.network)
    wait_until(lambda: library_ip(parent) == new, timeout=60, what="the recreated child")


def test_ten_changes_leave_no_zombie_no_duplicate_line_and_one_watcher(rig: Rig) -> None:
    """Ten moves in a row: ten HUPs, one hosts line, one watcher, no zombie."""
    command = ["sh", "-c", "trap 'echo hup' HUP; echo ready; while :; do sleep 0.2; done"]
    parent = rig.parent(command, "signal:HUP")
    wait_until(lambda: "ready" in output(parent), timeout=60, what="COMMAND ready")
    for moves in range(1, 11):
        new = rig.move_child()
        wait_until(lambda n=moves: output(parent).count("hup") == n, timeout=60,
                   what=f"HUP number {moves}")
    assert hosts_lines(parent) == [f"{new}\t{hosts_lines(parent)[0].split(chr(9))[1]}"]
    table = process_table(parent)
    assert [p for p in table if p["stat"].startswith("Z")] == [], table
    watchers = [p for p in table if "_follow" in p["args"]]
    assert len(watchers) == 1, table


def test_a_bad_policy_exits_64_naming_its_label(rig: Rig) -> None:
    parent = rig.parent(["true"], "sometimes")
    assert wait_exit(parent) == 64
    assert re.search(r"label linkinit.on-change: on-change must be one of", stderr_of(parent))


def test_the_network_has_the_subnet_it_was_made_with(rig: Rig) -> None:
    """The rig itself: addresses come from the network's own /24."""
    subnet = rig.network.attrs["IPAM"]["Config"][0]["Subnet"]
    assert ipaddress.ip_address(address(rig.child, rig.network)) in ipaddress.ip_network(subnet)


def test_a_watcher_that_dies_is_started_again_and_command_keeps_running(rig: Rig) -> None:
    """Kill the watcher: PID 1 logs it, starts another after its backoff, COMMAND runs on,
    and the next change is still followed."""
    parent = rig.parent(["sleep", "300"], "hosts")
    wait_until(lambda: library_ip(parent), timeout=60, what="the parent running")

    def watchers() -> List[dict]:
        return [p for p in process_table(parent) if "_follow" in p["args"]]

    first = wait_until(watchers, timeout=60, what="the watcher")[0]
    parent.exec_run(["kill", "-KILL", str(first["pid"])])
    wait_until(lambda: f"the watcher (pid {first['pid']}) exited" in stderr_of(parent),
               timeout=60, what="PID 1 logging the watcher's death")
    wait_until(lambda: [p for p in watchers() if p["pid"] != first["pid"]], timeout=60,
               what="a new watcher")
    parent.reload()
    assert parent.status == "running"
    new = rig.move_child()
    wait_until(lambda: library_ip(parent) == new, timeout=60, what="the change followed")
