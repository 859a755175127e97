"""The proxy's cache of who may see what: kept while events flow, forgotten where an event
says something changed, never kept without an event stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

from linkinit.proxy import Directory

PARENT_ID = "a" * 64
CHILD_ID = "b" * 64
OTHER_ID = "c" * 64


def document(cid: str, name: str, labels: Optional[dict] = None, aliases: Any = None) -> dict:
    networks = {"appnet": {"Aliases": aliases or [], "IPAddress": "10.0.0.2"}}
    return {"Id": cid, "Name": "/" + name, "Config": {"Labels": labels or {}},
            "NetworkSettings": {"Networks": networks}}


class FakeUpstream:
    """The Engine's inspect and list, counted."""

    def __init__(self, containers: list[dict]) -> None:
        self.containers = containers
        self.calls = 0

    async def inspect(self, ref: str) -> Optional[dict]:
        return (await self.get_json(f"/containers/{ref}/json"))[1]

    async def get_json(self, path: str, params: Optional[dict] = None) -> tuple[int, Any]:
        self.calls += 1
        if path == "/containers/json":
            return 200, [{"Id": c["Id"]} for c in self.containers]
        ref = path.split("/")[2]
        for container in self.containers:
            if ref in (container["Id"], container["Name"].lstrip("/")):
                return 200, container
        return 404, {"message": f"No such container: {ref}"}


def scope_ids(directory: Directory, parent: dict) -> set[str]:
    caller = asyncio.run(directory.scoped(parent, 1))
    return {seen.id for seen in caller.scope}


def event(action: str, cid: str, name: str) -> dict:
    return {"Type": "container", "Action": action,
            "Actor": {"ID": cid, "Attributes": {"name": name}}}


def setup(by_alias: bool = False, caching: bool = True) -> tuple[Directory, FakeUpstream, dict]:
    parent = document(PARENT_ID, "web", {"link.db": "db" if by_alias else "db1"})
    child = document(CHILD_ID, "proj-db-1" if by_alias else "db1", aliases=["db"])
    upstream = FakeUpstream([parent, child, document(OTHER_ID, "other")])
    directory = Directory(upstream, allow_host=False, trust_files=False)  # type: ignore[arg-type]
    directory.reset(caching=caching)
    return directory, upstream, parent


def test_a_resolved_child_is_asked_once_while_events_flow() -> None:
    directory, upstream, parent = setup()
    assert scope_ids(directory, parent) == {PARENT_ID, CHILD_ID}
    asked = upstream.calls
    assert scope_ids(directory, parent) == {PARENT_ID, CHILD_ID}
    assert upstream.calls == asked


def test_an_unrelated_create_keeps_a_child_found_by_name() -> None:
    """A busy host creates containers all the time: they do not make every start pay."""
    directory, upstream, parent = setup()
    scope_ids(directory, parent)
    asked = upstream.calls
    directory.saw(event("create", OTHER_ID, "other"))
    scope_ids(directory, parent)
    assert upstream.calls == asked


def test_the_childs_destroy_forgets_it() -> None:
    directory, upstream, parent = setup()
    scope_ids(directory, parent)
    upstream.containers = [c for c in upstream.containers if c["Id"] != CHILD_ID]
    directory.saw(event("destroy", CHILD_ID, "db1"))
    assert scope_ids(directory, parent) == {PARENT_ID}


def test_a_new_container_taking_the_name_is_seen() -> None:
    """Nothing negative is cached: a child created later is found at the next request."""
    directory, upstream, parent = setup()
    upstream.containers = [c for c in upstream.containers if c["Id"] != CHILD_ID]
    assert scope_ids(directory, parent) == {PARENT_ID}
    upstream.containers.append(document(OTHER_ID[:-1] + "d", "db1"))
    assert scope_ids(directory, parent) == {PARENT_ID, OTHER_ID[:-1] + "d"}


def test_any_topology_change_forgets_children_found_by_alias() -> None:
    directory, upstream, parent = setup(by_alias=True)
    assert scope_ids(directory, parent) == {PARENT_ID, CHILD_ID}
    asked = upstream.calls
    directory.saw({"Type": "network", "Action": "connect",
                   "Actor": {"ID": "n" * 64, "Attributes": {"container": OTHER_ID}}})
    scope_ids(directory, parent)
    assert upstream.calls > asked


def test_without_an_event_stream_nothing_is_cached() -> None:
    directory, upstream, parent = setup(caching=False)
    scope_ids(directory, parent)
    asked = upstream.calls
    scope_ids(directory, parent)
    assert upstream.calls == 2 * asked


def test_fake_engine_answers_like_the_engine() -> None:
    """The control: the fake says 404 for what it does not hold."""
    status, body = asyncio.run(FakeUpstream([]).get_json("/containers/x/json"))
    assert (status, json.dumps(body)) == (404, '{"message": "No such container: x"}')
