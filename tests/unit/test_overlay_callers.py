"""Who a TCP caller of the proxy is (host/proxy/overlay.py): the task or container holding the
peer's address on the overlay network the connection arrived on, from the shapes a Docker
20.10 manager answers with. Subnets of two networks may overlap; the ingress network and the
load balancer's endpoint name nobody; a peer that matches nothing is nobody, with a reason."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any, Optional

from hypothesis import given
from hypothesis import strategies as st

from linkinit.host.proxy import overlay

NET_A = "neta00000000000000000000a"  # swarm network IDs are 25 characters
NET_B = "netb00000000000000000000b"
INGRESS = "ingress000000000000000000"
PROXY_ID = "f" * 64
LOCAL_ID = "1" * 64  # a plain container on this node, attached to NET_A


def proxy_document(networks: dict[str, tuple[str, str, int]]) -> dict:
    """The proxy's own container: {name: (network ID, address, prefix length)}."""
    return {"Id": PROXY_ID, "Name": "/linkinit-proxy", "State": {"Running": True},
            "NetworkSettings": {"Networks": {
                name: {"NetworkID": network_id, "IPAddress": ip, "IPPrefixLen": prefix}
                for name, (network_id, ip, prefix) in networks.items()}}}


def attachment(network_id: str, address: str, name: str = "", ingress: bool = False) -> dict:
    return {"Network": {"ID": network_id, "Spec": {"Name": name or network_id[:4],
                                                   "Ingress": ingress}},
            "Addresses": [address]}


def task(task_id: str, container_id: str, *attachments: dict, desired: str = "running",
         state: str = "running", service: str = "svcweb") -> dict:
    return {"ID": task_id, "ServiceID": service, "Slot": 1, "DesiredState": desired,
            "Status": {"State": state, "ContainerStatus": {"ContainerID": container_id}},
            "Spec": {"ContainerSpec": {"Labels": {"link.redis": "db"}}},
            "NetworksAttachments": list(attachments)}


def network(network_id: str, containers: dict[str, str]) -> dict:
    """``GET /networks/<id>``: this node's endpoints, {container ID: "10.0.1.7/24"}."""
    return {"Id": network_id, "Containers": {
        cid: {"Name": cid[:6], "IPv4Address": ip, "IPv6Address": ""}
        for cid, ip in containers.items()}}


# Two networks with the same subnet (operator-given): the proxy is on A only.
PROXY_ON_A = proxy_document({"a": (NET_A, "10.0.1.9", 24)})
REMOTE_ON_A = task("taskA", "a" * 64, attachment(NET_A, "10.0.1.5/24", "a"))
REMOTE_ON_B = task("taskB", "b" * 64, attachment(NET_B, "10.0.1.5/24", "b"))
NETWORK_A = network(NET_A, {PROXY_ID: "10.0.1.9/24", LOCAL_ID: "10.0.1.7/24",
                            "lb-a": "10.0.1.3/24"})


def book(*tasks: dict, own: Optional[dict] = PROXY_ON_A, networks: Any = (NETWORK_A,),
         problem: str = "") -> overlay.AddressBook:
    return overlay.build(own, tasks, networks, problem)


def test_overlapping_subnets_the_network_is_the_one_the_connection_arrived_on() -> None:
    """10.0.1.5 is held on A and on B; the proxy holds 10.0.1.9 on A only: A's task."""
    found = overlay.who(book(REMOTE_ON_B, REMOTE_ON_A), "10.0.1.5", "10.0.1.9")
    assert found.holder is not None
    assert (found.holder.kind, found.holder.task["ID"]) == (overlay.TASK, "taskA")


def test_a_task_only_on_the_other_overlapping_network_is_nobody() -> None:
    found = overlay.who(book(REMOTE_ON_B), "10.0.1.5", "10.0.1.9")
    assert found.holder is None
    assert "is no running task or container on a" in found.why
    assert overlay.SERVES in found.why


def test_with_the_proxy_on_both_networks_its_arrival_address_decides() -> None:
    own = proxy_document({"a": (NET_A, "10.0.1.9", 24), "b": (NET_B, "10.0.1.10", 24)})
    two = book(REMOTE_ON_A, REMOTE_ON_B, own=own)
    assert overlay.who(two, "10.0.1.5", "10.0.1.9").holder.task["ID"] == "taskA"
    assert overlay.who(two, "10.0.1.5", "10.0.1.10").holder.task["ID"] == "taskB"


def test_a_missing_peer_is_nobody_and_the_reason_names_the_network() -> None:
    found = overlay.who(book(REMOTE_ON_A), "10.0.1.77", "10.0.1.9")
    assert found.holder is None
    assert found.why.startswith("is no running task or container on a;")


def test_an_arrival_address_on_no_overlay_network_is_nobody() -> None:
    """The docker_gwbridge, a published port: not an overlay address of the proxy's."""
    found = overlay.who(book(REMOTE_ON_A), "172.18.0.1", "172.18.0.3")
    assert found.holder is None
    assert "reached the proxy at 172.18.0.3, which is on none of the proxy's overlay" in found.why


def test_a_local_container_on_an_attachable_overlay_is_a_container() -> None:
    found = overlay.who(book(REMOTE_ON_A), "10.0.1.7", "10.0.1.9")
    assert found.holder == overlay.Holder(overlay.CONTAINER, LOCAL_ID, None)


def test_a_task_on_this_node_is_its_container() -> None:
    """The Engine inspects it: the real document, not one made from the task."""
    here = task("taskL", LOCAL_ID, attachment(NET_A, "10.0.1.7/24", "a"))
    found = overlay.who(book(here), "10.0.1.7", "10.0.1.9")
    assert found.holder == overlay.Holder(overlay.CONTAINER, LOCAL_ID, None)


def test_the_load_balancer_endpoint_and_ingress_name_nobody() -> None:
    on_ingress = task("taskI", "c" * 64, attachment(INGRESS, "10.0.0.5/24", "ingress", True))
    own = proxy_document({"a": (NET_A, "10.0.1.9", 24), "ingress": (INGRESS, "10.0.0.9", 24)})
    ingress_network = network(INGRESS, {})
    both = book(on_ingress, own=own, networks=(NETWORK_A, ingress_network))
    assert overlay.who(both, "10.0.1.3", "10.0.1.9").holder is None  # lb-a
    assert overlay.who(both, "10.0.0.5", "10.0.0.9").holder is None  # ingress: not ours


def test_tasks_not_wanted_running_or_ended_hold_nothing() -> None:
    leaving = task("taskS", "d" * 64, attachment(NET_A, "10.0.1.6/24", "a"), desired="shutdown")
    failed = task("taskF", "e" * 64, attachment(NET_A, "10.0.1.8/24", "a"), state="failed")
    both = book(leaving, failed)
    assert overlay.who(both, "10.0.1.6", "10.0.1.9").holder is None
    assert overlay.who(both, "10.0.1.8", "10.0.1.9").holder is None


def test_two_holders_of_one_address_are_nobody() -> None:
    """An address moving between two tasks while the list was made: refused, try again."""
    other = task("taskA2", "9" * 64, attachment(NET_A, "10.0.1.5/24", "a"))
    found = overlay.who(book(REMOTE_ON_A, other), "10.0.1.5", "10.0.1.9")
    assert found.holder is None
    assert "held by 2" in found.why


def test_without_its_own_container_the_proxy_names_nobody_and_says_why() -> None:
    found = overlay.who(book(REMOTE_ON_A, own=None), "10.0.1.5", "10.0.1.9")
    assert found.holder is None
    assert "LINKINIT_CONTAINER" in found.why


def test_on_a_worker_engine_local_containers_still_count_and_a_miss_says_why() -> None:
    worker = book(problem="the proxy's Engine lists no swarm tasks: run the proxy on a "
                          "swarm manager")
    assert overlay.who(worker, "10.0.1.7", "10.0.1.9").holder.id == LOCAL_ID
    assert "run the proxy on a swarm manager" in overlay.who(worker, "10.0.1.5", "10.0.1.9").why


def test_addresses_are_read_in_every_form_a_socket_or_the_engine_gives() -> None:
    assert overlay.address("::ffff:10.0.1.5") == ipaddress.ip_address("10.0.1.5")
    assert overlay.address("10.0.1.5/24") == ipaddress.ip_address("10.0.1.5")
    assert overlay.address("fd00::5") == ipaddress.ip_address("fd00::5")
    assert overlay.address("") is None
    assert overlay.address("not-an-address") is None
    found = overlay.who(book(REMOTE_ON_A), "::ffff:10.0.1.5", "::ffff:10.0.1.9")
    assert found.holder.task["ID"] == "taskA"


# -- properties -------------------------------------------------------------------------------

octets = st.integers(min_value=2, max_value=250)


@st.composite
def swarms(draw: Any) -> tuple[overlay.AddressBook, list[dict], str]:
    """Up to three networks sharing one /24 (overlapping), the proxy on one of them, and tasks
    with addresses drawn from that /24 on any of the networks (each address unique per
    network, as swarm's IPAM makes it)."""
    networks = [NET_A, NET_B, "netc00000000000000000000c"][:draw(st.integers(1, 3))]
    mine = draw(st.sampled_from(networks))
    own_ip = f"10.0.1.{draw(octets)}"
    held: dict[tuple[str, str], dict] = {}
    for index in range(draw(st.integers(0, 12))):
        network_id = draw(st.sampled_from(networks))
        ip = f"10.0.1.{draw(octets)}"
        if ip != own_ip and (network_id, ip) not in held:
            held[(network_id, ip)] = task(f"t{index}", f"{index:064x}",
                                          attachment(network_id, f"{ip}/24"))
    tasks = list(held.values())
    own = proxy_document({"mine": (mine, own_ip, 24)})
    return overlay.build(own, draw(st.permutations(tasks)), ()), tasks, own_ip


@given(swarms(), st.data())
def test_a_caller_is_exactly_the_task_at_its_address_on_the_proxys_network(
        drawn: tuple[overlay.AddressBook, list[dict], str], data: Any) -> None:
    """Never a task on another network with the same address, never a guess; order does not
    matter (the tasks are drawn in any order). The peer is any task's address, or any."""
    the_book, tasks, own_ip = drawn
    held = [t["NetworksAttachments"][0]["Addresses"][0].split("/")[0] for t in tasks]
    if held and data.draw(st.booleans()):
        peer = data.draw(st.sampled_from(held))
    else:
        peer = f"10.0.1.{data.draw(octets)}"
    mine = the_book.own[0].network
    expected = [t for t in tasks
                if (t["NetworksAttachments"][0]["Network"]["ID"], t["NetworksAttachments"][0]
                    ["Addresses"][0]) == (mine, f"{peer}/24")]
    found = overlay.who(the_book, peer, own_ip)
    if expected:
        assert found.holder is not None and found.holder.task["ID"] == expected[0]["ID"]
    else:
        assert found.holder is None and found.why


@given(st.ip_addresses(v=4), st.ip_addresses(v=4))
def test_any_pair_of_addresses_gets_an_answer_not_an_error(peer: Any, local: Any) -> None:
    found = overlay.who(book(REMOTE_ON_A, REMOTE_ON_B), str(peer), str(local))
    assert (found.holder is None) == bool(found.why)


# -- the book kept fresh ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeManager:
    """The manager's answers to what ``Addresses`` asks, counted."""

    def __init__(self, tasks: list[dict]) -> None:
        self.tasks = tasks
        self.asked: list[str] = []

    async def get(self, path: str, params: Optional[dict] = None) -> tuple[int, Any]:
        self.asked.append(path)
        if path == "/tasks":
            assert json.loads((params or {})["filters"]) == {"desired-state": ["running"]}
            return 200, self.tasks
        if path == f"/containers/{PROXY_ID}/json" or path == "/containers/me/json":
            return 200, PROXY_ON_A
        if path == f"/networks/{NET_A}":
            return 200, NETWORK_A
        if path == "/services/svcweb":
            return 200, {"ID": "svcweb", "Spec": {"Name": "web"}}
        return 404, {"message": "not found"}


def addresses(tasks: list[dict]) -> tuple[overlay.Addresses, FakeManager, Clock]:
    manager, clock = FakeManager(tasks), Clock()
    found = overlay.Addresses(manager.get, {"LINKINIT_CONTAINER": "me"}, clock)
    return found, manager, clock


def test_the_book_is_rebuilt_on_a_miss_at_most_every_half_second() -> None:
    book_keeper, manager, clock = addresses([REMOTE_ON_A])

    async def run() -> None:
        assert (await book_keeper.who("10.0.1.5", "10.0.1.9")).holder is not None
        built = manager.asked.count("/tasks")
        for _ in range(20):  # an unknown caller, again and again
            assert (await book_keeper.who("10.0.1.99", "10.0.1.9")).holder is None
        assert manager.asked.count("/tasks") == built
        clock.now += overlay.REFRESH + 0.01
        manager.tasks = [REMOTE_ON_A, task("taskN", "5" * 64,
                                           attachment(NET_A, "10.0.1.99/24", "a"))]
        assert (await book_keeper.who("10.0.1.99", "10.0.1.9")).holder.task["ID"] == "taskN"

    asyncio.run(run())


def test_a_known_caller_is_served_from_the_book_until_it_is_old_or_forgotten() -> None:
    book_keeper, manager, clock = addresses([REMOTE_ON_A])

    async def run() -> None:
        await book_keeper.who("10.0.1.5", "10.0.1.9")
        clock.now += overlay.MAX_AGE - 0.1
        await book_keeper.who("10.0.1.5", "10.0.1.9")
        assert manager.asked.count("/tasks") == 1
        book_keeper.forget()  # a service event
        manager.tasks = []  # the task is gone: its address names nobody now
        assert (await book_keeper.who("10.0.1.5", "10.0.1.9")).holder is None
        assert manager.asked.count("/tasks") == 2

    asyncio.run(run())


def test_without_events_the_book_is_trusted_for_half_a_second_only() -> None:
    book_keeper, manager, clock = addresses([REMOTE_ON_A])

    async def run() -> None:
        await book_keeper.who("10.0.1.5", "10.0.1.9", caching=False)
        clock.now += overlay.REFRESH + 0.01
        await book_keeper.who("10.0.1.5", "10.0.1.9", caching=False)
        assert manager.asked.count("/tasks") == 2

    asyncio.run(run())


def test_callers_arriving_together_share_one_rebuild() -> None:
    book_keeper, manager, _ = addresses([REMOTE_ON_A])

    async def run() -> None:
        found = await asyncio.gather(*(book_keeper.who("10.0.1.5", "10.0.1.9")
                                       for _ in range(10)))
        assert all(f.holder is not None for f in found)
        assert manager.asked.count("/tasks") == 1

    asyncio.run(run())


def test_a_tasks_document_reads_as_its_container_with_its_service_name() -> None:
    book_keeper, _, _ = addresses([REMOTE_ON_A])

    async def run() -> Optional[dict]:
        found = await book_keeper.who("10.0.1.5", "10.0.1.9")
        return await book_keeper.document(found.holder)

    document = asyncio.run(run())
    assert document is not None
    assert document["Id"] == "a" * 64
    assert document["Name"] == "/web.1.taskA"
    assert document["Config"]["Labels"]["link.redis"] == "db"
    assert document["Config"]["Hostname"] == "a" * 12  # Docker's default: the short ID
