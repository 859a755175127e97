"""The links the Engine itself knows for a container, read from its inspect as declarations.

Pure: takes one inspect document, touches no socket. These are the weakest source (flags >
environment > file > labels > the Engine's links): a container started with ``docker run
--link db1:redis``, ``docker network connect --link`` or compose's ``links:`` needs no label
for linkinit to export the variables Docker 29 stopped injecting.

Where the Engine keeps them:

- ``HostConfig.Links``: ``/db1:/webapp/redis`` for each ``--link`` on the default bridge (the
  child's name, then the parent's name and the alias as a path).
- ``NetworkSettings.Networks.<net>.Links``: ``db1:redis`` for each ``--link`` on a user network
  (``docker run --network n --link``, ``docker network connect --link``, compose ``links:``
  and ``external_links:``). The child is as the user wrote it: a name, an ID or a prefix.

Compose v2 writes three entries per ``links:`` entry, all for one child: the alias the user
wrote, ``<service>-<n>`` and ``<project>-<service>-<n>`` (``n`` the parent's own container
number, from its ``com.docker.compose.container-number`` label). Only the user's alias is
kept: one set of variables per link, as Docker exported for it.
"""

from __future__ import annotations

from linkinit.errors import DeclarationError
from linkinit.model.declare import LinkSpec, check_alias

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Mapping, Union

    Found = tuple[str, Union[LinkSpec, DeclarationError]]

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_NUMBER = "com.docker.compose.container-number"


def engine_links(container: Mapping[str, Any]) -> tuple[LinkSpec, ...]:
    """The Engine's links of ``container`` as link specs, one per alias; the first entry
    that is not a valid declaration raises its DeclarationError (exit 64)."""
    specs = []
    for _, spec in read_engine_links(container):
        if isinstance(spec, DeclarationError):
            raise spec
        specs.append(spec)
    return tuple(specs)


def read_engine_links(container: Mapping[str, Any]) -> list[Found]:
    """``(alias, spec)`` per alias, or ``(alias, error)`` for one that cannot be used, so that
    a tool reading other containers (``ls``, ``guard``, the proxy) lets it spoil only itself.

    ``HostConfig.Links`` first, then each network's by network name; an alias the Engine
    knows twice for the same child is one link, for two children an error.
    """
    by_alias: dict[str, Union[LinkSpec, DeclarationError]] = {}
    for alias, child, origin in _entries(container):
        try:
            spec = LinkSpec(check_alias(alias, origin), child, origin=origin)
        except DeclarationError as error:
            by_alias.setdefault(alias, error)
            continue
        known = by_alias.setdefault(alias, spec)
        if isinstance(known, LinkSpec) and known.child != child:
            by_alias[alias] = DeclarationError(
                f"{known.origin} and {origin}: the Engine links alias {alias!r} to two "
                f"containers; declare the one meant with a label, e.g. link.{alias}={child}"
            )
    return list(by_alias.items())


def _entries(container: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(alias, child, origin)`` for every link entry, compose's extra names left out."""
    found = []
    for entry in (container.get("HostConfig") or {}).get("Links") or []:
        child, _, path = str(entry).partition(":")
        found.append((path.rpartition("/")[2], child.lstrip("/"),
                      f"Engine link {entry} (HostConfig.Links, docker run --link)"))
    networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
    extra = _compose_extra(container)
    for name in sorted(networks):
        for child, alias in _without_compose_extras(_pairs(networks[name]), extra):
            found.append((alias, child, f"Engine link {child}:{alias} on network {name}"))
    return found


def _pairs(endpoint: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """A network endpoint's ``child:alias`` entries as {child: [aliases]}, in order."""
    aliases: dict[str, list[str]] = {}
    for entry in (endpoint or {}).get("Links") or []:
        child, _, alias = str(entry).partition(":")
        names = aliases.setdefault(child, [])
        if (alias or child) not in names:
            names.append(alias or child)
    return aliases


def _compose_extra(container: Mapping[str, Any]) -> tuple[str, str]:
    """The parent's compose project and container number ("" when compose did not make it)."""
    labels = (container.get("Config") or {}).get("Labels") or {}
    return str(labels.get(COMPOSE_PROJECT, "")), str(labels.get(COMPOSE_NUMBER, ""))


def _without_compose_extras(aliases: Mapping[str, list[str]],
                            extra: tuple[str, str]) -> list[tuple[str, str]]:
    """(child, alias) pairs, compose's extra aliases of each child dropped."""
    return [(child, name) for child, names in aliases.items()
            for name in users_aliases(names, *extra)]


def users_aliases(names: list[str], project: str, number: str) -> list[str]:
    """The aliases of one child the user wrote: compose's ``<service>-<n>`` and
    ``<project>-<service>-<n>`` dropped where both are there (``project`` and ``number`` the
    parent's compose labels, "" for a container compose did not make); if the user's alias
    was one of them, the short one stays."""
    if not project or not number:
        return names
    short = {name[len(project) + 1:] for name in names
             if name.startswith(f"{project}-") and name.endswith(f"-{number}")} & set(names)
    drop = short | {f"{project}-{name}" for name in short}
    return [name for name in names if name not in drop] or sorted(short)[:1]
