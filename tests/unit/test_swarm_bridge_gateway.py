"""The swarm tests' manager address (tests/support/swarm.py): the host's address on the
default bridge, from what is really there when the Engine's inspect leaves Gateway out (Docker
20.10 on a fresh machine: ``IPAM.Config`` is ``[{"Subnet": "172.17.0.0/16"}]``)."""

from __future__ import annotations

import pytest

from tests.support.swarm import bridge_gateway


def bridge(*configs: dict) -> dict:
    return {"Name": "bridge", "IPAM": {"Config": list(configs)}}


@pytest.mark.parametrize(
    ("network", "interface", "expected"),
    [
        (bridge({"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}), [], "172.17.0.1"),
        (bridge({"Subnet": "172.17.0.0/16"}), ["172.17.0.1"], "172.17.0.1"),
        (bridge({"Subnet": "172.18.0.0/16"}), ["10.0.0.5", "172.18.0.7"], "172.18.0.7"),
        (bridge({"Subnet": "172.17.0.0/16"}), [], "172.17.0.1"),
        (bridge({"Subnet": "fd00::/64"}, {"Subnet": "10.9.0.0/24"}), [], "10.9.0.1"),
    ],
    ids=["gateway-given", "no-gateway-interface-address", "interface-address-in-the-subnet",
         "no-gateway-no-interface-first-host", "ipv6-subnet-skipped"],
)
def test_the_hosts_address_on_the_bridge(network, interface, expected):
    assert bridge_gateway(network, interface) == expected


def test_a_bridge_without_an_ipv4_subnet_is_a_clear_failure():
    with pytest.raises(AssertionError, match="bridge network bridge has no IPv4 subnet"):
        bridge_gateway(bridge({"Subnet": "fd00::/64"}), ["172.17.0.1"])
