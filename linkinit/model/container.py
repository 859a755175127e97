"""What an inspected container says: names, networks, state, ports, the links it declares.

Pure: every function takes the Engine's inspect document (a plain dict) and touches no
socket, so the start path, ``ls``, ``guard`` and the proxy read containers one way. The
order in which a reference names a container (full ID, exact name, unique ID prefix, then a
network alias on a network the parent shares) is written once, in ``find``; the Engine's
own lookup implements the first three, and ``DocumentLookup`` restates them for a list of
documents fetched in one go.
"""

from __future__ import annotations

from collections import namedtuple

from linkinit.errors import DeclarationError
from linkinit.model import swarm
from linkinit.model.declare import LinkSpec, link_label_groups, parse_labels
from linkinit.model.docker_links import read_engine_links

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Iterable, Mapping, Optional, Sequence, TypeVar, Union

    Document = TypeVar("Document", bound=Mapping[str, Any])  # an inspect document

# Networks that carry no aliases: the default bridge, and the host's and none's stacks;
# Podman's default network too (it records an alias but has no DNS to answer to it):
# looking for an alias there would inspect every container on the host at every look.
_NO_ALIAS_NETWORKS = ("host", "none", "bridge", "podman")
_HEX = frozenset("0123456789abcdef")

# What ``find`` says when no single container answers to a reference.
MISSING = "missing"
AMBIGUOUS = "ambiguous"
NO_MANAGER = "no-manager"  # not a container here, and this swarm worker cannot see services


class Port(namedtuple("Port", "number proto", defaults=("tcp",))):
    """One exposed port: number (int) and proto ("tcp", "udp", "sctp")."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> list[Port]:
        """``6379/tcp``, ``53/udp``, ``8080`` (tcp) or a range ``7000-7002/tcp``."""
        numbers, _, proto = str(text).partition("/")
        first, _, last = numbers.partition("-")
        if not first.isdigit() or not (last.isdigit() or not last):
            return []
        start = int(first)
        end = int(last) if last else start
        return [cls(number, (proto or "tcp").lower()) for number in range(start, end + 1)]

    def sort_key(self) -> tuple[bool, str, int]:
        """Docker's order (moby's withTCPPriority): TCP first, then by protocol, by number."""
        return (self.proto != "tcp", self.proto, self.number)


class Lookup(namedtuple("Lookup", "container state why", defaults=("", ""))):
    """What a reference names: ``container`` (None when no single one), else ``state``
    (MISSING or AMBIGUOUS) and ``why`` in words."""

    __slots__ = ()


# -- one document -------------------------------------------------------------------------


def name_of(container: Mapping[str, Any]) -> str:
    """The container's name without Docker's leading slash."""
    return str(container.get("Name") or "").lstrip("/")


def networks_of(container: Mapping[str, Any]) -> dict[str, dict]:
    """Network name -> its endpoint settings; Podman and host/none containers may give null."""
    networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
    return {name: settings or {} for name, settings in networks.items()}


def alias_networks(container: Mapping[str, Any]) -> list[str]:
    """The container's networks that can carry aliases (not the default bridge, host, none)."""
    return [n for n in networks_of(container) if carries_aliases(n)]


def carries_aliases(network: str) -> bool:
    """Whether containers on this network may hold aliases (a user-defined network); an
    unnamed network is assumed to."""
    return network not in _NO_ALIAS_NETWORKS


def aliases_of(container: Mapping[str, Any]) -> dict[str, list[str]]:
    """The container's network aliases and the networks that carry each.

    Its own name, and the short ID the Engine adds as an alias on user-defined networks,
    are not other names: they are left out.
    """
    cid, name = str(container.get("Id", "")), name_of(container)
    found: dict[str, list[str]] = {}
    for network, settings in sorted(networks_of(container).items()):
        for alias in settings.get("Aliases") or []:
            if alias == name or (len(alias) >= 12 and cid.startswith(alias)):
                continue
            found.setdefault(alias, []).append(network)
    return found


def state_of(container: Mapping[str, Any]) -> str:
    """The Engine's state word: running, exited, created, paused, restarting, dead."""
    return str((container.get("State") or {}).get("Status") or "unknown")


def health_of(container: Mapping[str, Any]) -> Optional[str]:
    """The healthcheck's status, or None where there is no healthcheck.

    Podman reports ``Health`` with an empty status for a container without one: that is no
    healthcheck, not "not healthy yet".
    """
    return ((container.get("State") or {}).get("Health") or {}).get("Status") or None


def last_health_output(container: Mapping[str, Any]) -> str:
    """The last line the last healthcheck printed, for a message about an unhealthy child."""
    log = ((container.get("State") or {}).get("Health") or {}).get("Log") or [{}]
    lines = str((log[-1] or {}).get("Output", "")).strip().splitlines()
    return lines[-1] if lines else ""


def is_running(container: Mapping[str, Any]) -> bool:
    return bool((container.get("State") or {}).get("Running"))


def image_of(container: Mapping[str, Any]) -> str:
    return str((container.get("Config") or {}).get("Image") or container.get("Image") or "")


def exposed_ports(container: Mapping[str, Any]) -> list[Port]:
    """Every port the container exposes, ranges expanded, in Docker's order."""
    exposed = (container.get("Config") or {}).get("ExposedPorts") or {}
    ports = {port for text in exposed for port in Port.parse(text)}
    return sorted(ports, key=Port.sort_key)


def first_tcp_port(container: Mapping[str, Any]) -> Optional[int]:
    """The port ``<ALIAS>_PORT`` names when it is TCP: the one ``wait=listening`` probes."""
    ports = exposed_ports(container)
    return ports[0].number if ports and ports[0].proto == "tcp" else None


def environment_of(container: Mapping[str, Any]) -> tuple[str, ...]:
    """The child's ``KEY=value`` entries as its image and run set them."""
    return tuple((container.get("Config") or {}).get("Env") or ())


def hostname_of(container: Mapping[str, Any]) -> str:
    return str((container.get("Config") or {}).get("Hostname") or "")


def labels_of(container: Mapping[str, Any]) -> dict[str, str]:
    return dict((container.get("Config") or {}).get("Labels") or {})


# -- two documents ------------------------------------------------------------------------


def shared_networks(parent: Mapping[str, Any], child: Mapping[str, Any]) -> list[str]:
    """The networks on which the parent can reach the child, by name.

    A parent on the host's network reaches every bridge network the child is on.
    """
    parent_networks, child_networks = networks_of(parent), networks_of(child)
    if set(parent_networks) == {"host"}:
        return sorted(child_networks)
    return sorted(set(parent_networks) & set(child_networks))


def shared_address(parent: Mapping[str, Any], child: Mapping[str, Any]) -> Optional[str]:
    """The child's IP on the first shared network (by name) that gives one.

    None when they share no network; "" when they do but the child has no address yet (it
    is not running).
    """
    shared = shared_networks(parent, child)
    if not shared:
        return None
    child_networks = networks_of(child)
    for network in shared:
        address = child_networks[network].get("IPAddress")
        if address:
            return str(address)
    return ""


def dns_names(parent: Mapping[str, Any], child: Mapping[str, Any]) -> set[str]:
    """The names the Engine's DNS answers with this child for the parent: its name and its
    network aliases, on the user-defined networks they share (the default bridge has no DNS)."""
    names: set[str] = set()
    for network in shared_networks(parent, child):
        if carries_aliases(network):
            settings = networks_of(child).get(network) or {}
            names.update([name_of(child), *(settings.get("Aliases") or [])])
    return names


def no_shared_network_message(alias: str, parent: Mapping[str, Any],
                              child: Mapping[str, Any]) -> str:
    """Why a child cannot be linked: both network lists, and the command that fixes it."""
    child_name, parent_name = name_of(child), name_of(parent)
    child_on = ", ".join(sorted(networks_of(child))) or "none"
    parent_on = ", ".join(sorted(networks_of(parent))) or "none"
    return (
        f"link {alias}: child {child_name} shares no network with {parent_name} "
        f"({child_name} is on: {child_on}; {parent_name} is on: {parent_on}); "
        f"connect them, e.g. docker network connect <network> {child_name}"
    )


def address_on(container: Mapping[str, Any], network: Mapping[str, Any]) -> Optional[str]:
    """The container's IPv4 address on a network (its inspect document), if it runs there.

    Matched by network ID, or by name where the container's settings carry no ID.
    """
    if not is_running(container):
        return None
    for key, settings in networks_of(container).items():
        if settings.get("NetworkID") == network.get("Id") or (
            not settings.get("NetworkID") and key == network.get("Name")
        ):
            return str(settings.get("IPAddress") or "") or None
    return None


def holders_of_alias(
    reference: str, parent: Mapping[str, Any], containers: Iterable[Document]
) -> list[Document]:
    """The containers, other than the parent, holding ``reference`` as a network alias on a
    network the parent is on (a compose service name); swarm tasks are not holders (their
    aliases name their service, which is linked as one, by its address)."""
    shared = alias_networks(parent)
    return [
        container for container in containers
        if container.get("Id") != parent.get("Id") and not swarm.is_task(container)
        and any(
            reference in (networks_of(container).get(n, {}).get("Aliases") or [])
            for n in shared
        )
    ]


# -- which container a reference names -----------------------------------------------------


def settles(found: Lookup, reference: str) -> bool:
    """Whether the Engine's answer ends the search at once: the container's full ID or
    exact name. An ID prefix does not: ``db`` is the prefix of one container ID in 256, and
    a swarm service named so (a stack's ``db``) is what the user meant."""
    container = found.container
    return container is not None and (
        container.get("Id") == reference or name_of(container) == reference.lstrip("/"))


def find(reference: str, parent: Mapping[str, Any], lookup: Any) -> Lookup:
    """The child ``reference`` names: a container by full ID or exact name, then a swarm
    service, then a network alias on a network the parent is on, then a container by unique
    ID prefix.

    ``lookup`` answers three questions: ``by_reference(ref)`` (the Engine's own lookup: full
    ID, exact name or unique ID prefix: a ``Lookup``), ``service(ref)`` (a swarm service by
    name, ID or prefix, shaped as a container by ``swarm.service_document``: a ``Lookup``,
    NO_MANAGER where only a manager could tell) and ``on_networks(names)`` (the inspect
    documents of the containers on those networks). A name is unique on a host, so it wins;
    a service comes before the aliases, which its own tasks hold; an alias on the parent's
    own network comes before an ID prefix, which a short reference matches by chance (``db1``
    starts one container ID in 4096, and compose's ``db1`` is the alias). An alias held by
    two containers is an ambiguity the user must settle.
    """
    found = lookup.by_reference(reference)
    if settles(found, reference):
        return found
    service = lookup.service(reference)
    if service.container is not None or service.state == AMBIGUOUS:
        return service
    holders = holders_of_alias(reference, parent, lookup.on_networks(alias_networks(parent)))
    if len(holders) == 1:
        return Lookup(holders[0])
    if holders:
        names = ", ".join(sorted(name_of(c) for c in holders))
        return Lookup(None, AMBIGUOUS, f"the network alias {reference!r} is held by {names}")
    if found.container is not None or found.state == AMBIGUOUS:
        return found
    if service.state == NO_MANAGER:
        return service
    return Lookup(None, MISSING, f"no container answers to {reference!r}")


class DocumentLookup:
    """``find``'s questions answered from inspect documents fetched in one go (``ls``,
    ``guard``): the Engine's own lookup order restated."""

    def __init__(self, containers: Sequence[Mapping[str, Any]]) -> None:
        self.containers = containers

    def by_reference(self, reference: str) -> Lookup:
        for container in self.containers:
            if container.get("Id") == reference:
                return Lookup(container)
        for container in self.containers:
            if name_of(container) == reference.lstrip("/"):
                return Lookup(container)
        if not reference or not set(reference) <= _HEX:
            return Lookup(None, MISSING)
        matches = [c for c in self.containers if str(c.get("Id", "")).startswith(reference)]
        if len(matches) > 1:
            names = ", ".join(sorted(name_of(c) for c in matches))
            return Lookup(None, AMBIGUOUS, f"{reference!r} is a prefix of several IDs ({names})")
        return Lookup(matches[0]) if matches else Lookup(None, MISSING)

    def service(self, reference: str) -> Lookup:
        return Lookup(None, MISSING)  # documents of containers only

    def on_networks(self, networks: Sequence[str]) -> Sequence[Mapping[str, Any]]:
        return self.containers  # holders_of_alias keeps those on the networks


def find_in(reference: str, parent: Mapping[str, Any],
            containers: Sequence[Mapping[str, Any]]) -> Lookup:
    """``find`` among documents already fetched."""
    return find(reference, parent, DocumentLookup(containers))


# -- the links a container declares --------------------------------------------------------


def declared_links(
    container: Mapping[str, Any],
) -> list[tuple[str, Union[LinkSpec, DeclarationError]]]:
    """``(alias, spec)`` for each link the container's ``link.*`` labels declare, and each
    link the Engine knows for it that no label replaces (``docker_links``), read one alias at
    a time so that a tool reading other containers (``ls``, ``guard``, the proxy) lets a bad
    label spoil only its own link: the spec is then the error it made."""
    engine = dict(read_engine_links(container))
    groups = link_label_groups(labels_of(container))
    found: list[tuple[str, Union[LinkSpec, DeclarationError]]] = []
    for alias, group in sorted(groups.items()):
        known = engine.get(alias)
        try:
            adopted = [known] if isinstance(known, LinkSpec) else []
            found.extend((alias, spec) for spec in parse_labels(group, adopted).links)
        except DeclarationError as error:
            found.append((alias, error))
    found += [(alias, spec) for alias, spec in engine.items() if alias not in groups]
    return sorted(found, key=lambda pair: pair[0])
