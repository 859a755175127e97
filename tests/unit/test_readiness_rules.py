"""Readiness: what one look at a child's inspect document says, for each wait mode.

``observe`` is fed canned inspect dicts (the shape the Engine returns) and a fake ``probe``
that records where it was asked to connect; no Engine and no socket are involved.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from linkinit.errors import (
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    EX_USAGE,
    EngineUnreachable,
    NotReady,
    ResolveError,
)
from linkinit.init.readiness import PORT_CLOSED, UNHEALTHY, Observation, observe
from linkinit.init.readiness import link_address as shared_address
from linkinit.init.waiter import not_ready_message
from linkinit.model.container import first_tcp_port
from linkinit.model.declare import LinkSpec

CHILD_IP = "172.18.0.2"
FINISHED = "2024-05-01T10:00:00.123456789Z"


def inspect(
    status: str = "running",
    health: Optional[str] = None,
    health_log: Sequence[str] = (),
    networks: Optional[Dict[str, str]] = None,
    exposed: Sequence[str] = ("6379/tcp",),
    exit_code: int = 0,
    name: str = "/db1",
) -> dict:
    """A child's inspect document, trimmed to the fields readiness reads."""
    state: dict = {
        "Status": status,
        "Running": status in ("running", "restarting"),
        "ExitCode": exit_code,
        "FinishedAt": FINISHED,
    }
    if health is not None:
        state["Health"] = {
            "Status": health,
            "FailingStreak": 0,
            "Log": [{"ExitCode": 1, "Output": out} for out in health_log],
        }
    if networks is None:
        networks = {"demo": CHILD_IP if status == "running" else ""}
    return {
        "Id": "c" * 64,
        "Name": name,
        "State": state,
        "Config": {"ExposedPorts": {port: {} for port in exposed}, "Hostname": "c0ffee"},
        "NetworkSettings": {
            "Networks": {net: {"IPAddress": ip, "Aliases": None} for net, ip in networks.items()}
        },
    }


def parent(networks: Sequence[str] = ("demo",), name: str = "/webapp") -> dict:
    return {
        "Id": "p" * 64,
        "Name": name,
        "NetworkSettings": {"Networks": {net: {"IPAddress": "172.18.0.3"} for net in networks}},
    }


def spec(wait: str = "listening", alias: str = "redis", child: str = "db1") -> LinkSpec:
    return LinkSpec(alias, child, wait, origin=f"label link.{alias}")


class Probe:
    """A fake TCP probe: answers ``open`` and remembers each (address, port) it was asked."""

    def __init__(self, open_: bool = True) -> None:
        self.open = open_
        self.calls: List[Tuple[str, int]] = []

    def __call__(self, address: str, port: int) -> bool:
        self.calls.append((address, port))
        return self.open


def look(wait: str, container: Optional[dict], probe: Optional[Probe] = None) -> Observation:
    return observe(spec(wait), parent(), container, probe or Probe())


def summary(seen: Observation) -> Tuple[str, bool, str]:
    return (seen.state, seen.ready, seen.detail)


# ---------------------------------------------------------------------------------------------
# Not running: never ready, whatever the wait mode
# ---------------------------------------------------------------------------------------------

ALL_WAITS = ["started", "healthy", "listening", "none"]


@pytest.mark.parametrize("wait", ALL_WAITS)
@pytest.mark.parametrize(
    ("container", "expected"),
    [
        pytest.param(None, ("missing", False, "no container answers to this name"), id="missing"),
        pytest.param(inspect("created"), ("created", False, "state created"), id="created"),
        pytest.param(
            inspect("exited", exit_code=1),
            ("exited(1)", False, f"exited with 1 at {FINISHED}"),
            id="exited-1",
        ),
        pytest.param(
            inspect("exited", exit_code=0),
            ("exited(0)", False, f"exited with 0 at {FINISHED}"),
            id="exited-0",
        ),
        pytest.param(
            inspect("dead", exit_code=137),
            ("exited(137)", False, f"exited with 137 at {FINISHED}"),
            id="dead",
        ),
        pytest.param(
            inspect("restarting", networks={"demo": ""}),
            ("restarting", False, "state restarting"),
            id="restarting",
        ),
        pytest.param(inspect("paused"), ("paused", False, "state paused"), id="paused"),
    ],
)
def test_a_child_that_is_not_running_is_never_ready(wait, container, expected):
    """Missing, created, exited, dead, restarting or paused: not ready, and the look says why."""
    probe = Probe()
    assert summary(observe(spec(wait), parent(), container, probe)) == expected
    assert probe.calls == []


def test_a_running_child_without_an_address_yet_is_not_ready():
    """Running but with no IP on the shared network: 'no address', not ready."""
    seen = look("started", inspect(networks={"demo": ""}))
    assert summary(seen) == ("no address", False, "running but without an IP address")


# ---------------------------------------------------------------------------------------------
# started / none: running is enough
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wait", ["started", "none"])
@pytest.mark.parametrize("health", [None, "starting", "unhealthy", "healthy"])
def test_started_and_none_need_only_a_running_child(wait, health):
    """wait=started/none: running is ready, whatever the healthcheck says; no port probe."""
    probe = Probe(open_=False)
    seen = observe(spec(wait), parent(), inspect(health=health), probe)
    assert (seen.state, seen.ready, seen.address) == ("running", True, CHILD_IP)
    assert probe.calls == []


def test_a_ready_observation_carries_the_container_and_its_address():
    """The endpoint is built from the look that found the child ready."""
    child = inspect()
    seen = look("started", child)
    assert seen.container is child
    assert seen.address == CHILD_IP


# ---------------------------------------------------------------------------------------------
# healthy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wait", ["healthy", "listening"])
@pytest.mark.parametrize(
    ("health", "log", "detail"),
    [
        pytest.param("starting", [], "health starting", id="starting-no-checks-yet"),
        pytest.param(
            "starting",
            ["Could not connect\nConnection refused\n"],
            "health starting, last check said: Connection refused",
            id="starting-last-line-of-last-check",
        ),
        pytest.param(
            "unhealthy",
            ["old failure", "NOAUTH Authentication required."],
            "health unhealthy, last check said: NOAUTH Authentication required.",
            id="unhealthy-last-check",
        ),
        pytest.param("unhealthy", [""], "health unhealthy", id="unhealthy-empty-output"),
    ],
)
def test_a_healthcheck_that_is_not_healthy_holds_healthy_and_listening(wait, health, log, detail):
    """With a HEALTHCHECK only 'healthy' passes; the last check's last line is shown."""
    probe = Probe()
    seen = observe(spec(wait), parent(), inspect(health=health, health_log=log), probe)
    assert summary(seen) == (health, False, detail)
    assert probe.calls == []


def test_a_healthy_child_is_ready_for_wait_healthy():
    """health=healthy passes wait=healthy, and the port is not probed."""
    probe = Probe(open_=False)
    seen = observe(spec("healthy"), parent(), inspect(health="healthy"), probe)
    assert (seen.state, seen.ready) == ("healthy", True)
    assert probe.calls == []


def test_a_child_without_a_healthcheck_is_ready_for_wait_healthy_once_running():
    """No HEALTHCHECK: 'healthy' means running."""
    seen = look("healthy", inspect(health=None), Probe(open_=False))
    assert (seen.state, seen.ready) == ("running", True)


# ---------------------------------------------------------------------------------------------
# listening
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("health", [None, "healthy"])
def test_listening_is_ready_when_the_first_tcp_port_accepts(health):
    """wait=listening probes <ALIAS>_PORT's port at the shared address; an answer is ready."""
    probe = Probe(open_=True)
    seen = observe(spec("listening"), parent(), inspect(health=health), probe)
    assert summary(seen) == ("listening", True, "listening on 6379")
    assert probe.calls == [(CHILD_IP, 6379)]


def test_listening_is_not_ready_while_the_port_refuses():
    """A closed port: 'port <n> closed', naming address and port."""
    probe = Probe(open_=False)
    seen = observe(spec("listening"), parent(), inspect(), probe)
    assert summary(seen) == (
        "port 6379 closed", False, f"{CHILD_IP}:6379 refused connections"
    )
    assert seen.address == CHILD_IP


def test_listening_probes_the_lowest_tcp_port_not_a_lower_udp_one():
    """The probed port is the one <ALIAS>_PORT names: the lowest TCP port."""
    probe = Probe()
    child = inspect(exposed=("53/udp", "8080/tcp", "80/tcp", "9/sctp"))
    observe(spec("listening"), parent(), child, probe)
    assert probe.calls == [(CHILD_IP, 80)]


@pytest.mark.parametrize(
    "exposed",
    [pytest.param((), id="no-ports"), pytest.param(("53/udp", "2905/sctp"), id="udp-sctp-only")],
)
def test_listening_without_an_exposed_tcp_port_is_ready_once_healthy(exposed):
    """Nothing to probe: listening reduces to healthy."""
    probe = Probe(open_=False)
    seen = observe(spec("listening"), parent(), inspect(exposed=exposed), probe)
    assert (seen.state, seen.ready) == ("running", True)
    assert probe.calls == []


@pytest.mark.parametrize(
    ("exposed", "port"),
    [
        pytest.param({"6379/tcp": {}}, 6379, id="one-tcp"),
        pytest.param({"53/udp": {}, "8080/tcp": {}}, 8080, id="tcp-before-udp"),
        pytest.param({"7002/tcp": {}, "7000/tcp": {}, "7001/tcp": {}}, 7000, id="lowest"),
        pytest.param({"53/udp": {}}, None, id="udp-only"),
        pytest.param({}, None, id="none-exposed"),
        pytest.param(None, None, id="null-exposed-ports"),
    ],
)
def test_first_tcp_port_is_the_lowest_exposed_tcp_port(exposed, port):
    """first_tcp_port reads Config.ExposedPorts; no TCP port gives None."""
    assert first_tcp_port({"Config": {"ExposedPorts": exposed}}) == port


def test_first_tcp_port_of_a_document_without_config_is_none():
    """A trimmed inspect document without Config has no port."""
    assert first_tcp_port({}) is None
    assert first_tcp_port({"Config": None}) is None


# ---------------------------------------------------------------------------------------------
# Networks: the address both sides share
# ---------------------------------------------------------------------------------------------


def test_a_child_on_no_shared_network_is_an_error_naming_both_network_lists():
    """No common network: a ResolveError (64) that lists each side's networks and the fix."""
    child = inspect(networks={"other": "10.9.0.2", "backend": "10.8.0.2"})
    with pytest.raises(ResolveError) as caught:
        observe(spec("started"), parent(("demo", "bridge")), child, Probe())
    assert caught.value.exit_status == EX_USAGE
    assert caught.value.message == (
        "link redis: child db1 shares no network with webapp "
        "(db1 is on: backend, other; webapp is on: bridge, demo); "
        "connect them, e.g. docker network connect <network> db1"
    )


def test_a_child_on_no_network_at_all_says_none():
    """An empty network list is shown as 'none'."""
    with pytest.raises(ResolveError) as caught:
        shared_address(spec(), parent(()), inspect(networks={}))
    assert "(db1 is on: none; webapp is on: none)" in caught.value.message


@pytest.mark.parametrize(
    ("parent_networks", "child_networks", "address"),
    [
        pytest.param(["demo"], {"demo": "172.18.0.2"}, "172.18.0.2", id="one-shared"),
        pytest.param(
            ["bridge", "demo"], {"demo": "172.18.0.2", "other": "10.0.0.2"}, "172.18.0.2",
            id="only-the-shared-one",
        ),
        pytest.param(
            ["zeta", "alpha"], {"zeta": "10.2.0.2", "alpha": "10.1.0.2"}, "10.1.0.2",
            id="first-shared-by-name",
        ),
        pytest.param(
            ["alpha", "zeta"], {"zeta": "10.2.0.2", "alpha": ""}, "10.2.0.2",
            id="first-shared-with-an-address",
        ),
        pytest.param(["demo"], {"demo": ""}, "", id="shared-but-no-address-yet"),
        pytest.param(
            ["host"], {"bridge": "172.17.0.2", "demo": "172.18.0.2"}, "172.17.0.2",
            id="host-network-parent-reaches-every-network",
        ),
    ],
)
def test_the_address_is_the_childs_ip_on_a_network_both_share(
    parent_networks, child_networks, address
):
    """The child's IP on the first shared network (by name) that has one; host reaches all."""
    assert shared_address(spec(), parent(parent_networks), inspect(networks=child_networks)) == (
        address
    )


def test_a_host_network_parent_links_a_running_bridge_child():
    """A parent with network_mode host observes the child at its bridge address."""
    seen = observe(
        spec("listening"), parent(["host"]), inspect(networks={"bridge": "172.17.0.5"}), Probe()
    )
    assert (seen.state, seen.ready, seen.address) == ("listening", True, "172.17.0.5")


# ---------------------------------------------------------------------------------------------
# Timeout message and statuses
# ---------------------------------------------------------------------------------------------


def test_the_not_ready_message_has_one_line_per_child_with_its_last_state():
    """Each unready child: alias, child, time waited, wait mode, state and last detail."""
    redis, pg = spec("healthy"), spec("listening", alias="pg", child="postgres-1")
    seen = {
        "redis": Observation(UNHEALTHY, "unhealthy", "health unhealthy, last check said: NOAUTH"),
        "pg": Observation(PORT_CLOSED, "port 5432 closed", "172.18.0.4:5432 refused connections"),
    }
    assert not_ready_message([redis, pg], seen, 59.6) == (
        "redis (db1) not ready after 60s (wait=healthy): unhealthy; "
        "last seen: health unhealthy, last check said: NOAUTH\n"
        "pg (postgres-1) not ready after 60s (wait=listening): port 5432 closed; "
        "last seen: 172.18.0.4:5432 refused connections"
    )


def test_not_ready_exits_75_and_an_unreachable_engine_69():
    """Timeouts are temporary failures (75); an Engine that never answered is unavailable (69)."""
    assert NotReady("x").exit_status == EX_TEMPFAIL == 75
    assert EngineUnreachable("x").exit_status == EX_UNAVAILABLE == 69
    assert ResolveError("x").exit_status == EX_USAGE == 64
