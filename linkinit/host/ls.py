"""``linkinit ls``: the host's link graph, one row per container name, alias and link.

Runs on the host with linkinit's own Engine client (~0.1 s less than the docker SDK per run,
bench/README.md). The work is split as everywhere in linkinit: ``fetch`` is the only part
that talks to the Engine (list, then inspect each container); ``rows`` is a
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
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from linkinit.engine.client import Engine
from linkinit.errors import EX_UNAVAILABLE, EX_USAGE, DeclarationError, EngineError, UsageError
from linkinit.model import childenv
from linkinit.model import container as model
from linkinit.model.container import AMBIGUOUS, MISSING
from linkinit.model.declare import LinkSpec
from linkinit.usage import UsageParser

# Link states besides the child's own Engine state (running, exited, created, paused...):
# MISSING (no container answers to the reference: a dangling link), AMBIGUOUS (more than
# one does), and:
INVALID = "invalid"  # the parent's labels for this alias cannot be parsed
__all__ = ["AMBIGUOUS", "INVALID", "MISSING", "Row", "main", "rows"]

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
    "env",
    "secrets",
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
    env: Union[str, Tuple[str, ...], None] = None
    secrets: Optional[str] = None


# -- pure: inspect documents -> rows ----------------------------------------------------------


def _describe(row_name: str, kind: str, container: Mapping[str, Any], **extra: Any) -> Row:
    cid = str(container.get("Id", ""))
    return Row(row_name, kind, cid[:12], cid, model.image_of(container),
               model.state_of(container), model.health_of(container), **extra)


def _link_row(row_name: str, spec: LinkSpec, parent: Mapping[str, Any],
              containers: Sequence[Mapping[str, Any]]) -> Row:
    parent_name = model.name_of(parent)
    extra: Dict[str, Any] = {"parent": parent_name, "alias": spec.alias, "child": spec.child,
                             "wait": spec.wait, "optional": spec.optional,
                             "secrets": spec.secrets or None}
    found = model.find_in(spec.child, parent, containers)
    child = found.container
    if child is None:
        return Row(row_name, "link", "", "", "", found.state, note=found.why,
                   env=received_env(spec, None)[0], **extra)
    env, lacking = received_env(spec, child)
    notes = []
    if model.shared_address(parent, child) is None:
        notes.append(f"{model.name_of(child)} shares no network with {parent_name}")
    elif not model.is_running(child):
        notes.append(f"{model.name_of(child)} is not running")
    if lacking:
        notes.append(f"{model.name_of(child)}'s environment has no {', '.join(lacking)}")
    return _describe(row_name, "link", child, note="; ".join(notes) or None, env=env,
                     networks=tuple(sorted(model.networks_of(child))), **extra)


def received_env(spec: LinkSpec, child: Optional[Mapping[str, Any]]
                 ) -> Tuple[Union[str, Tuple[str, ...]], List[str]]:
    """Which of the child's keys the parent receives: ``all``, ``none`` or the keys named
    that the child has (all named ones while the child is not found); and those it lacks."""
    if spec.env is childenv.ALL or not spec.env:
        return childenv.describe(spec.env), []
    if child is None:
        return tuple(spec.env), []
    lacking = childenv.missing(model.environment_of(child), spec.env)
    return tuple(key for key in spec.env if key not in lacking), lacking


def link_rows(
    parent: Mapping[str, Any], containers: Sequence[Mapping[str, Any]]
) -> List[Row]:
    """The ``parent/alias`` rows of one parent, from its labels."""
    parent_name = model.name_of(parent)
    rows = []
    for alias, spec in model.declared_links(parent):
        row_name = f"{parent_name}/{alias}"
        if isinstance(spec, DeclarationError):
            rows.append(Row(row_name, "link", "", "", "", INVALID, parent=parent_name,
                            alias=alias, note=str(spec)))
        else:
            rows.append(_link_row(row_name, spec, parent, containers))
    return rows


def rows(containers: Sequence[Mapping[str, Any]], show_all: bool = False) -> List[Row]:
    """Every row for these inspect documents, sorted so links follow their parent.

    Without ``show_all`` only running containers (and the links of running parents) are
    listed, as ``docker ps`` does; children are looked up among all containers either way,
    so a link to a stopped child says "exited" rather than "missing".
    """
    result: List[Row] = []
    for container in containers:
        if not show_all and not model.is_running(container):
            continue
        name = model.name_of(container)
        result.append(_describe(name, "container", container,
                                networks=tuple(sorted(model.networks_of(container)))))
        for alias, networks in sorted(model.aliases_of(container).items()):
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


def _table_env(row: Row) -> str:
    """``all``, ``none`` or ``KEY,KEY``, with `` (files)`` for secrets=files; empty for a
    row that is no link."""
    if row.env is None:
        return ""
    text = row.env if isinstance(row.env, str) else ",".join(row.env) or "none"
    return text + (" (files)" if row.secrets else "")


def _add_column(header: List[str], lines: List[List[str]], table_rows: Sequence[Row],
                title: str, cell: Any, shown: bool) -> None:
    if shown:
        header.append(title)
        for line, row in zip(lines, table_rows, strict=True):
            line.append(cell(row))


def render_table(table_rows: Sequence[Row]) -> str:
    """Columns NAME, CONTAINER, IMAGE, STATE; ENV when some link receives less than all of
    its child's environment or receives it as files; NOTE when some row has something
    wrong."""
    header = ["NAME", "CONTAINER", "IMAGE", "STATE"]
    lines = [[r.name, r.container or "-", r.image or "-", _table_state(r)] for r in table_rows]
    _add_column(header, lines, table_rows, "ENV", _table_env,
                any(r.env not in (None, "all") or r.secrets for r in table_rows))
    _add_column(header, lines, table_rows, "NOTE", lambda row: row.note or "",
                any(r.note for r in table_rows))
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    out = []
    for line in [header, *lines]:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        out.append("   ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def render_json(table_rows: Sequence[Row]) -> str:
    """A JSON list of objects with the keys of ``JSON_KEYS``, every key in every object."""
    objects = []
    for row in table_rows:
        data = asdict(row)
        data["networks"] = list(row.networks)
        if isinstance(row.env, tuple):
            data["env"] = list(row.env)
        objects.append({key: data[key] for key in JSON_KEYS})
    return json.dumps(objects, indent=2) + "\n"


# -- the Engine side --------------------------------------------------------------------------


def fetch(environ: Mapping[str, str]) -> List[Dict[str, Any]]:
    """Inspect documents of every container, stopped ones included."""
    return Engine.from_environ(environ).inspect_all()


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
        documents = fetch(environ)
    except EngineError as error:
        print(f"linkinit: {error}", file=stderr)
        print("linkinit: is dockerd running, and is DOCKER_HOST right?", file=stderr)
        return EX_UNAVAILABLE
    found = rows(documents, show_all=options.all)
    render = render_json if options.format == "json" else render_table
    stdout.write(render(found))
    stdout.flush()
    return 0


