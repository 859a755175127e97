"""``linkinit ls``: the host's link graph, one row per container name, alias and link.

Runs on the host with the docker SDK. The work is split as everywhere in linkinit: ``fetch``
is the only part that talks to the Engine (list, then inspect each container); ``rows`` is a
pure function from inspect documents to rows, so the graph logic is unit-tested with canned
JSON; ``render_table`` / ``render_json`` print the one result two ways.

Links are read from the parents' labels (``link.<alias>=<child>``), and a child reference is
resolved as linkinit resolves it in the parent: exact full ID, exact name, unique ID prefix,
then a network alias on a network the parent shares. A link whose child is gone, ambiguous,
stopped or on no shared network is shown with that state, never dropped: a dangling link is
what ``ls`` is for.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .declare import link_label_groups, parse_labels
from .errors import EX_UNAVAILABLE, EX_USAGE, DeclarationError, UsageError
from .resolve import holders_of_alias
from .usage import UsageParser

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Networks on which the Engine keeps no aliases (and "host" shares everything).

# Link states besides the child's own Engine state (running, exited, created, paused...).
MISSING = "missing"  # no container answers to the reference: a dangling link
AMBIGUOUS = "ambiguous"  # more than one container answers to it
INVALID = "invalid"  # the parent's labels for this alias cannot be parsed

JSON_KEYS = (
    "name",
    "kind",
    "container",
    "id",
    "image",
    "state",
    "health",
    "parent",
    "alias",
    "child",
    "networks",
    "wait",
    "optional",
    "note",
)


@dataclass(frozen=True)
class Row:
    """One line of ``ls``; ``asdict`` of it is the JSON object (keys in ``JSON_KEYS``).

    ``kind`` is ``container`` (a container's name), ``alias`` (one of its network aliases)
    or ``link`` (``parent/alias``). ``container``/``id``/``image`` describe the container the
    row resolves to (for a link, the child), empty when there is none. ``note`` says what
    is wrong, in words, when something is.
    """

    name: str
    kind: str
    container: str
    id: str
    image: str
    state: str
    health: Optional[str] = None
    parent: Optional[str] = None
    alias: Optional[str] = None
    child: Optional[str] = None
    networks: Tuple[str, ...] = ()
    wait: Optional[str] = None
    optional: Optional[bool] = None
    note: Optional[str] = None


# -- pure: inspect documents -> rows ----------------------------------------------------------


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("Name") or "").lstrip("/")


def _networks(container: Mapping[str, Any]) -> Dict[str, Mapping[str, Any]]:
    return dict((container.get("NetworkSettings") or {}).get("Networks") or {})


def _state(container: Mapping[str, Any]) -> Tuple[str, Optional[str]]:
    state = container.get("State") or {}
    health = (state.get("Health") or {}).get("Status") or None
    return str(state.get("Status") or "unknown"), health


def _running(container: Mapping[str, Any]) -> bool:
    return bool((container.get("State") or {}).get("Running"))


def _image(container: Mapping[str, Any]) -> str:
    return str((container.get("Config") or {}).get("Image") or container.get("Image") or "")


def _aliases(container: Mapping[str, Any]) -> Dict[str, List[str]]:
    """The container's network aliases and the networks that carry each.

    The container's own name, and the short ID the Engine adds as an alias on user-defined
    networks, are not other names: they are left out.
    """
    cid, name = str(container.get("Id", "")), _name(container)
    found: Dict[str, List[str]] = {}
    for network, settings in sorted(_networks(container).items()):
        for alias in (settings or {}).get("Aliases") or []:
            if alias == name or (len(alias) >= 12 and cid.startswith(alias)):
                continue
            found.setdefault(alias, []).append(network)
    return found


def _describe(row_name: str, kind: str, container: Mapping[str, Any], **extra: Any) -> Row:
    state, health = _state(container)
    cid = str(container.get("Id", ""))
    return Row(row_name, kind, cid[:12], cid, _image(container), state, health, **extra)


def resolve_child(
    reference: str, parent: Mapping[str, Any], containers: Sequence[Mapping[str, Any]]
) -> Tuple[Optional[Mapping[str, Any]], str, Optional[str]]:
    """``(container, "", None)`` for the container a reference names, else ``(None, state, why)``.

    Same order as the Engine's own lookup and linkinit's resolver: full ID, name, unique ID
    prefix; then a network alias on a network the parent shares (a compose service name).
    """
    for container in containers:
        if container.get("Id") == reference:
            return container, "", None
    for container in containers:
        if _name(container) == reference.lstrip("/"):
            return container, "", None
    if reference and all(c in "0123456789abcdef" for c in reference):
        matches = [c for c in containers if str(c.get("Id", "")).startswith(reference)]
        if len(matches) == 1:
            return matches[0], "", None
        if len(matches) > 1:
            names = ", ".join(sorted(_name(c) for c in matches))
            return None, AMBIGUOUS, f"{reference!r} is a prefix of several IDs ({names})"
    matches = holders_of_alias(reference, parent, containers)
    if len(matches) == 1:
        return matches[0], "", None
    if len(matches) > 1:
        names = ", ".join(sorted(_name(c) for c in matches))
        return None, AMBIGUOUS, f"the network alias {reference!r} is held by {names}"
    return None, MISSING, f"no container answers to {reference!r}"


def _shares_network(parent: Mapping[str, Any], child: Mapping[str, Any]) -> bool:
    parent_networks = set(_networks(parent))
    return "host" in parent_networks or bool(parent_networks & set(_networks(child)))


def link_rows(
    parent: Mapping[str, Any], containers: Sequence[Mapping[str, Any]]
) -> List[Row]:
    """The ``parent/alias`` rows of one parent, from its labels."""
    parent_name = _name(parent)
    labels = (parent.get("Config") or {}).get("Labels") or {}
    rows = []
    for alias, group in sorted(link_label_groups(labels).items()):
        row_name = f"{parent_name}/{alias}"
        try:
            specs = parse_labels(group).links
        except DeclarationError as error:
            rows.append(
                Row(row_name, "link", "", "", "", INVALID, parent=parent_name, alias=alias,
                    note=str(error))
            )
            continue
        for spec in specs:
            extra: Dict[str, Any] = {
                "parent": parent_name,
                "alias": spec.alias,
                "child": spec.child,
                "wait": spec.wait,
                "optional": spec.optional,
            }
            child, state, why = resolve_child(spec.child, parent, containers)
            if child is None:
                rows.append(Row(row_name, "link", "", "", "", state, note=why, **extra))
                continue
            note = None
            if not _shares_network(parent, child):
                note = f"{_name(child)} shares no network with {parent_name}"
            elif not _running(child):
                note = f"{_name(child)} is not running"
            rows.append(_describe(row_name, "link", child, note=note,
                                  networks=tuple(sorted(_networks(child))), **extra))
    return rows


def rows(containers: Sequence[Mapping[str, Any]], show_all: bool = False) -> List[Row]:
    """Every row for these inspect documents, sorted so links follow their parent.

    Without ``show_all`` only running containers (and the links of running parents) are
    listed, as ``docker ps`` does; children are looked up among all containers either way,
    so a link to a stopped child says "exited" rather than "missing".
    """
    result: List[Row] = []
    for container in containers:
        if not show_all and not _running(container):
            continue
        name = _name(container)
        result.append(_describe(name, "container", container,
                                networks=tuple(sorted(_networks(container)))))
        for alias, networks in sorted(_aliases(container).items()):
            result.append(_describe(alias, "alias", container, networks=tuple(networks)))
        result.extend(link_rows(container, containers))
    return sorted(result, key=lambda row: (row.name.split("/"), row.kind, row.id))


# -- rendering --------------------------------------------------------------------------------


def _table_state(row: Row) -> str:
    state = row.state
    if row.health:
        state += f" ({row.health})"
    if row.optional and row.state == MISSING:
        state += " (optional)"
    return state


def render_table(table_rows: Sequence[Row]) -> str:
    """Columns NAME, CONTAINER, IMAGE, STATE, and NOTE when some row has something wrong."""
    header = ["NAME", "CONTAINER", "IMAGE", "STATE"]
    lines = [[r.name, r.container or "-", r.image or "-", _table_state(r)] for r in table_rows]
    if any(r.note for r in table_rows):
        header.append("NOTE")
        for line, row in zip(lines, table_rows):
            line.append(row.note or "")
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    out = []
    for line in [header, *lines]:
        cells = [cell.ljust(width) for cell, width in zip(line, widths)]
        out.append("   ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def render_json(table_rows: Sequence[Row]) -> str:
    """A JSON list of objects with the keys of ``JSON_KEYS``, every key in every object."""
    objects = []
    for row in table_rows:
        data = asdict(row)
        data["networks"] = list(row.networks)
        objects.append({key: data[key] for key in JSON_KEYS})
    return json.dumps(objects, indent=2) + "\n"


# -- the Engine side --------------------------------------------------------------------------


class Unreachable(Exception):
    """The Engine could not be asked."""


def fetch(client: Any) -> List[Dict[str, Any]]:
    """Inspect documents of every container, stopped ones included.

    A container removed between the list and its inspect is skipped, not an error.
    """
    import docker.errors

    documents = []
    for summary in client.api.containers(all=True):
        try:
            documents.append(client.api.inspect_container(summary["Id"]))
        except docker.errors.NotFound:
            continue
    return documents


def _connect_and_fetch(environ: Mapping[str, str]) -> List[Dict[str, Any]]:
    import docker
    import requests

    host = environ.get("DOCKER_HOST") or DEFAULT_HOST
    try:
        client = docker.from_env(environment=dict(environ))
        try:
            return fetch(client)
        finally:
            client.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        if isinstance(error, docker.errors.APIError) and error.response is not None:
            raise Unreachable(f"the Docker Engine at {host} refused: {error}") from None
        raise Unreachable(f"cannot reach the Docker Engine at {host}: {error}") from None


# -- the command ------------------------------------------------------------------------------



def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="linkinit ls",
        description="List containers, their network aliases and the links their labels "
        "declare (parent/alias), with the state of each link's child.",
    )
    parser.add_argument("-a", "--all", action="store_true",
                        help="include stopped containers and their links")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table (default) or json: a list of objects with stable keys")
    return parser


def main(
    argv: Sequence[str],
    stdout: IO[str],
    stderr: IO[str],
    environ: Optional[Mapping[str, str]] = None,
) -> int:
    """``linkinit ls [--all] [--format table|json]``: print the rows, return the status."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    if "-h" in argv or "--help" in argv:  # to the stdout we were given, not sys.stdout
        stdout.write(parser.format_help())
        return 0
    try:
        options = parser.parse_args(list(argv))
    except UsageError as error:
        print(f"linkinit: {error}", file=stderr)
        return EX_USAGE
    try:
        documents = _connect_and_fetch(environ)
    except Unreachable as error:
        print(f"linkinit: {error}", file=stderr)
        print("linkinit: is dockerd running, and is DOCKER_HOST right?", file=stderr)
        return EX_UNAVAILABLE
    found = rows(documents, show_all=options.all)
    render = render_json if options.format == "json" else render_table
    stdout.write(render(found))
    stdout.flush()
    return 0


run_ls = main
