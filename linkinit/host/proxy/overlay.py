"""Who a TCP caller of the proxy is: the swarm task or container that holds its address on
an overlay network the proxy is attached to.

The caller says nothing that is believed. The kernel gives the connection's two ends: the
peer's address (``getpeername``) and the proxy's own address it arrived on
(``getsockname``). The Engine gives who holds which address:

- the proxy's own container (``GET /containers/<itself>/json``): its address on each
  network, so the arrival address names the network the connection came in on;
- every running task of the swarm, on every node (``GET /tasks`` with
  ``desired-state=running``, a manager only): ``NetworksAttachments[].Addresses``
  (``10.0.1.5/24``), with the network's ID;
- this node's containers on each of the proxy's networks (``GET /networks/<id>``:
  ``Containers[].IPv4Address``), attachable-overlay containers that are no task included.

Overlay subnets of different networks may overlap (subnets the operator gave), so an address
names a holder only together with its network: the one on which the proxy itself holds the
arrival address, and whose subnet holds the peer's. Swarm's IPAM gives an address on a
network to one endpoint at a time; the ingress network (the routing mesh, whose peers are
its load balancer) identifies nobody.

``who`` is pure (an ``AddressBook`` in, a ``Found`` out); ``Addresses`` keeps the book fresh
through the proxy's Engine client: rebuilt when a caller is not in it (at most every
``REFRESH`` seconds, so unknown callers cannot make the proxy hammer the Engine), when it is
older than ``MAX_AGE`` (swarm sends no task events), and forgotten on the service and network
events the proxy follows.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import time
from collections import namedtuple
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, Union

from linkinit.engine.transport import quote
from linkinit.model import container as model
from linkinit.model import swarm

TASK = "task"  # a swarm task, maybe on another node: its document is swarm.task_document
CONTAINER = "container"  # a container on this node: the Engine inspects it
REFRESH = 0.5  # seconds between two rebuilds a miss may cause
MAX_AGE = 5.0  # seconds a book answers for while the Engine's event stream runs
SERVES = "this proxy serves tasks and containers on the overlay networks it is attached to"
_HEX = frozenset("0123456789abcdef")

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Interface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
Get = Callable[..., Awaitable[tuple[int, Any]]]


class Own(namedtuple("Own", "network name interface")):
    """The proxy on one network: the network's ID and name, and its own address with the
    subnet (one per IP version)."""

    __slots__ = ()


class Holder(namedtuple("Holder", "kind id task")):
    """Who holds an address: kind (TASK or CONTAINER), the container ID (a task's, "" before
    it has one), and the task (TASK only)."""

    __slots__ = ()


class Found(namedtuple("Found", "holder why", defaults=("",))):
    """The caller's holder, or None and why, in words that follow "the caller at ADDRESS"."""

    __slots__ = ()


class AddressBook(namedtuple("AddressBook", "own tasks containers problem", defaults=("",))):
    """own: tuple of Own; tasks: {(network ID, address): [task, ...]}; containers:
    {(network ID, address): [container ID, ...]}; problem: what the book misses (the proxy's
    own container, or the tasks where the Engine is no manager), else ""."""

    __slots__ = ()


EMPTY = AddressBook((), {}, {})
ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}  # never to run


# -- reading the Engine's documents -----------------------------------------------------------


def address(text: Any) -> Optional[Address]:
    """An IP address from ``10.0.1.5``, ``10.0.1.5/24`` or ``::ffff:10.0.1.5`` (IPv4 mapped
    into IPv6, as a dual-stack socket reports it); None for anything else."""
    try:
        found = ipaddress.ip_interface(str(text)).ip
    except ValueError:
        return None
    mapped = getattr(found, "ipv4_mapped", None)
    return mapped or found


def _interface(ip: Any, prefix: Any) -> Optional[Interface]:
    try:
        return ipaddress.ip_interface(f"{ip}/{int(prefix)}") if ip and prefix else None
    except ValueError:
        return None


def own_networks(document: Mapping[str, Any]) -> tuple[Own, ...]:
    """The proxy's own addresses (IPv4, IPv6) on its networks, from its inspect document;
    the ingress network and networks without an address left out."""
    own: list[Own] = []
    for name, settings in sorted(model.networks_of(document).items()):
        network_id = str(settings.get("NetworkID") or "")
        if name == swarm.INGRESS or not network_id:
            continue
        for ip, prefix in ((settings.get("IPAddress"), settings.get("IPPrefixLen")),
                           (settings.get("GlobalIPv6Address"),
                            settings.get("GlobalIPv6PrefixLen"))):
            interface = _interface(ip, prefix)
            if interface is not None:
                own.append(Own(network_id, name, interface))
    return tuple(own)


def task_holders(tasks: Iterable[Mapping[str, Any]]) -> dict[tuple[str, Address], list[dict]]:
    """(network ID, address) -> the tasks swarm wants running that hold it (one, unless an
    address moves between two tasks while the list was made); ingress left out."""
    found: dict[tuple[str, Address], list[dict]] = {}
    for task in tasks:
        if task.get("DesiredState") == "running" and swarm.task_state(task) not in ENDED:
            for key in _task_addresses(task):
                found.setdefault(key, []).append(dict(task))
    return found


def _task_addresses(task: Mapping[str, Any]) -> Iterable[tuple[str, Address]]:
    """(network ID, address) of each of the task's addresses, the ingress network's left
    out."""
    for network_id, text in swarm.task_addresses(task):
        ip = address(text)
        if ip is not None:
            yield network_id, ip


def container_holders(network: Mapping[str, Any]) -> dict[tuple[str, Address], list[str]]:
    """(network ID, address) -> this node's containers holding it, from ``GET
    /networks/<id>``; the network's load-balancer endpoint (``lb-<network>``) is no container."""
    network_id = str(network.get("Id") or "")
    found: dict[tuple[str, Address], list[str]] = {}
    for container_id, endpoint in (network.get("Containers") or {}).items():
        if len(container_id) != 64 or not set(container_id) <= _HEX:
            continue
        for key in ("IPv4Address", "IPv6Address"):
            ip = address((endpoint or {}).get(key))
            if ip is not None:
                found.setdefault((network_id, ip), []).append(container_id)
    return found


def build(own_document: Optional[Mapping[str, Any]], tasks: Iterable[Mapping[str, Any]],
          networks: Iterable[Mapping[str, Any]], problem: str = "") -> AddressBook:
    """The book from the proxy's own document, the running tasks and its networks'
    documents."""
    if own_document is None:
        return AddressBook((), {}, {}, "cannot be told: the proxy does not find its own "
                                       "container (set LINKINIT_CONTAINER to its name)")
    containers: dict[tuple[str, Address], list[str]] = {}
    for network in networks:
        for key, holders in container_holders(network).items():
            containers.setdefault(key, []).extend(holders)
    return AddressBook(own_networks(own_document), task_holders(tasks), containers, problem)


# -- matching ---------------------------------------------------------------------------------


def _holders_at(book: AddressBook, network_id: str, ip: Address) -> list[Holder]:
    """Everyone holding ``ip`` on the network: this node's containers, and the tasks whose
    container is none of them (a task on this node is its container)."""
    found = {cid: Holder(CONTAINER, cid, None) for cid in book.containers.get((network_id, ip), [])}
    for task in book.tasks.get((network_id, ip), []):
        cid = str(((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
                  or "")
        found.setdefault(cid or "task " + str(task.get("ID")), Holder(TASK, cid, task))
    return list(found.values())


def who(book: AddressBook, peer: Any, local: Any) -> Found:
    """The task or container at ``peer`` on the network the connection arrived on (the one
    where the proxy holds ``local`` and whose subnet holds ``peer``); else why not."""
    peer_ip, local_ip = address(peer), address(local)
    if peer_ip is None or local_ip is None:
        return Found(None, f"has no IP address the proxy can read; {SERVES}")
    if not book.own:
        return Found(None, f"{book.problem or 'cannot be told: the proxy is on no network'}; "
                           f"{SERVES}")
    arrived = [own for own in book.own
               if own.interface.ip == local_ip and peer_ip in own.interface.network]
    if not arrived:
        return Found(None, f"reached the proxy at {local_ip}, which is on none of the proxy's "
                           f"overlay networks; {SERVES}")
    holders = [holder for own in arrived for holder in _holders_at(book, own.network, peer_ip)]
    return _verdict(holders, ", ".join(sorted({own.name for own in arrived})), book.problem)


def _verdict(holders: list[Holder], names: str, problem: str) -> Found:
    """One holder is the caller; none or several is nobody."""
    if len(holders) == 1:
        return Found(holders[0])
    if not holders:
        missing = f" ({problem})" if problem else ""
        return Found(None, f"is no running task or container on {names}{missing}; {SERVES}")
    return Found(None, f"is held by {len(holders)} tasks or containers on {names} (one "
                       f"leaving, one coming?): try again; {SERVES}")


# -- the book, kept fresh from the Engine -------------------------------------------------------


def self_references(environ: Mapping[str, str]) -> list[str]:
    """Where the proxy looks for its own container, as linkinit looks for a parent:
    ``LINKINIT_CONTAINER``, else ``/proc/self/mountinfo``, the cgroup, the hostname."""
    named = environ.get("LINKINIT_CONTAINER")
    if named:
        return [named]
    from linkinit.engine.whoami import self_references as found  # the init's own reading

    return [reference for reference, _ in found()]


class Addresses:
    """``who`` on a book rebuilt from the Engine when needed (see the module's docstring).

    ``get(path, params)`` is the proxy's ``Upstream.get_json``: (status, parsed body).
    """

    def __init__(self, get: Get, environ: Optional[Mapping[str, str]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._get = get
        self._environ = dict(os.environ if environ is None else environ)
        self._clock = clock
        self._lock = asyncio.Lock()
        self.book = EMPTY
        self.built = float("-inf")  # when the book was made (clock seconds)
        self.own_id = ""  # the proxy's own container, once found
        self.service_names: dict[str, str] = {}  # service ID -> name (names never change)

    def forget(self) -> None:
        """An event may have moved an address: the next caller rebuilds the book."""
        self.built = float("-inf")

    async def who(self, peer: Any, local: Any, caching: bool = True) -> Found:
        """The holder of ``peer``; the book is rebuilt when stale, or once on a miss."""
        asked = self._clock()
        if asked - self.built > (MAX_AGE if caching else REFRESH):
            await self.rebuild(asked)
        found = who(self.book, peer, local)
        if found.holder is None and self._clock() - self.built > REFRESH:
            await self.rebuild(self._clock())
            found = who(self.book, peer, local)
        return found

    async def rebuild(self, asked: float) -> None:
        """One rebuild at a time; a caller that waited for another's is served by it."""
        async with self._lock:
            if self.built >= asked:
                return
            started = self._clock()
            own = await self._own_document()
            tasks = await self._list("/tasks", {"filters": json.dumps(
                {"desired-state": ["running"]})})
            networks = []
            for network_id in sorted({own.network for own in own_networks(own or {})}):
                status, network = await self._get(f"/networks/{quote(network_id)}")
                if status == 200 and isinstance(network, dict):
                    networks.append(network)
            problem = "" if tasks is not None else (
                "the proxy's Engine lists no swarm tasks: run the proxy on a swarm manager")
            self.book = build(own, tasks or [], networks, problem)
            self.built = started

    async def _list(self, path: str, params: dict) -> Optional[list]:
        status, body = await self._get(path, params)
        return body if status == 200 and isinstance(body, list) else None

    async def _own_document(self) -> Optional[dict]:
        """The proxy's own container: found once by the references linkinit uses, then
        looked at again by ID (its networks change with connect and disconnect)."""
        references = [self.own_id] if self.own_id else self_references(self._environ)
        for reference in references:
            status, document = await self._get(f"/containers/{quote(reference)}/json")
            if status == 200 and isinstance(document, dict):
                self.own_id = str(document.get("Id") or "")
                return document
        self.own_id = ""
        return None

    async def service_name(self, service_id: str) -> str:
        """A task's service name (tasks carry the service's ID only)."""
        if service_id not in self.service_names:
            status, service = await self._get(f"/services/{quote(service_id)}")
            if status != 200 or not isinstance(service, dict):
                return ""
            self.service_names[service_id] = str((service.get("Spec") or {}).get("Name") or "")
        return self.service_names[service_id]

    async def document(self, holder: Holder) -> Optional[dict]:
        """A task's document as its container's would read on its node (TASK holders)."""
        name = await self.service_name(str((holder.task or {}).get("ServiceID") or ""))
        return swarm.task_document(holder.task or {}, name) if name else None

