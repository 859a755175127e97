"""The proxy's cache of who may see what: kept while events flow, forgotten where an event
says something changed, never kept without an event stream."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, Optional

from linkinit.host.proxy.directory import Directory
from linkinit.host.proxy.upstream import api_version

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
        self.paths: list[str] = []

    async def fetch(self, method: str, path: str) -> tuple[int, dict, bytes]:
        status, body = await self.get_json(path.split("?")[0])
        return status, {"Api-Version": "1.47"}, json.dumps(body).encode()

    async def get_json(self, path: str, params: Optional[dict] = None) -> tuple[int, Any]:
        self.calls += 1
        self.paths.append(path)
        await asyncio.sleep(0)  # an answer takes a turn of the loop, as a socket's does
        path = re.sub(r"^/v[0-9.]+/", "/", path)
        if path == "/containers/json":
            return 200, [{"Id": c["Id"]} for c in self.containers]
        if path.startswith("/services/"):
            return 503, {"message": "This node is not a swarm manager."}
        ref = path.split("/")[2]
        for container in self.containers:
            if ref in (container["Id"], container["Name"].lstrip("/")):
                return 200, container
        return 404, {"message": f"No such container: {ref}"}


def scope_ids(directory: Directory, parent: dict) -> set[str]:
    caller = asyncio.run(directory.scopes.scoped(parent, 1))
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


def test_a_missing_child_is_asked_once_until_a_container_is_created() -> None:
    """A parent waiting for a child that does not exist yet asks again and again; the Engine
    hears the question once, and again only after a create (or rename, or connect)."""
    directory, upstream, parent = setup()
    upstream.containers = [c for c in upstream.containers if c["Id"] != CHILD_ID]
    assert scope_ids(directory, parent) == {PARENT_ID}
    asked = upstream.calls
    assert scope_ids(directory, parent) == {PARENT_ID}
    assert upstream.calls == asked
    upstream.containers.append(document(OTHER_ID[:-1] + "d", "db1"))
    directory.saw(event("create", OTHER_ID[:-1] + "d", "db1"))
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
    """Nothing about containers; an image's config (asked by ID, it never changes) is."""
    directory, upstream, parent = setup(caching=False)
    scope_ids(directory, parent)
    asked = [path for path in upstream.paths if not path.startswith("/images/")]
    scope_ids(directory, parent)
    again = [path for path in upstream.paths if not path.startswith("/images/")]
    assert len(again) == 2 * len(asked)
    assert len(upstream.paths) - len(again) == 1


def test_fake_engine_answers_like_the_engine() -> None:
    """The control: the fake says 404 for what it does not hold."""
    status, body = asyncio.run(FakeUpstream([]).get_json("/containers/x/json"))
    assert (status, json.dumps(body)) == (404, '{"message": "No such container: x"}')


def inspect_all(directory: Directory, refs: list[str], version: str = "",
                running: bool = False) -> list[Any]:
    async def ask() -> list[Any]:
        api_version.set(version)
        return await asyncio.gather(*(directory.kept.inspected(ref, running) for ref in refs))
    return asyncio.run(ask())


def test_callers_asking_at_once_share_one_inspect() -> None:
    """A hundred parents inspecting their child after its create event: one request."""
    directory, upstream, _ = setup()
    found = inspect_all(directory, [CHILD_ID] * 100, "/v1.47")
    assert {answer.document["Id"] for answer in found} == {CHILD_ID}
    assert upstream.paths == [f"/v1.47/containers/{CHILD_ID}/json"]
    assert json.loads(found[0].body)["Id"] == CHILD_ID
    assert found[0].headers == {"Api-Version": "1.47"}


def test_an_inspect_answer_is_kept_until_an_event_names_the_container() -> None:
    directory, upstream, _ = setup()
    inspect_all(directory, [CHILD_ID])
    inspect_all(directory, [CHILD_ID])
    assert upstream.calls == 1
    directory.saw(event("restart", CHILD_ID, "db1"))
    inspect_all(directory, [CHILD_ID])
    assert upstream.calls == 2


def test_answers_are_kept_per_api_version() -> None:
    """An inspect document's shape differs by API version: each is asked for in its own."""
    directory, upstream, _ = setup()
    inspect_all(directory, [CHILD_ID], "/v1.41")
    inspect_all(directory, [CHILD_ID], "/v1.47")
    inspect_all(directory, [CHILD_ID], "/v1.47")
    assert upstream.paths == [f"/v1.41/containers/{CHILD_ID}/json",
                              f"/v1.47/containers/{CHILD_ID}/json"]


def test_an_answer_fetched_across_an_event_about_it_is_not_kept() -> None:
    directory, upstream, _ = setup()

    async def racing() -> None:
        asking = asyncio.ensure_future(directory.kept.inspected(CHILD_ID))
        for _ in range(10):  # until the request is out (a few turns of the loop)
            if upstream.calls:
                break
            await asyncio.sleep(0)
        assert upstream.calls == 1
        directory.saw(event("die", CHILD_ID, "db1"))
        await asking
        await directory.kept.inspected(CHILD_ID)

    asyncio.run(racing())
    assert upstream.calls == 2


def test_a_caller_asking_about_itself_never_gets_a_kept_answer_from_before_its_start() -> None:
    """Kept at create (not running); the caller asks while its start event is still on its
    way: it runs, so the answer is asked for again."""
    directory, upstream, parent = setup()
    inspect_all(directory, [PARENT_ID])
    upstream.containers[0] = dict(parent, State={"Running": True})
    assert inspect_all(directory, [PARENT_ID], running=True)[0].document["State"]["Running"]
    assert upstream.calls == 2
    inspect_all(directory, [PARENT_ID], running=True)
    assert upstream.calls == 2


def test_nothing_is_served_while_the_event_stream_trails_the_engine() -> None:
    directory, _, _ = setup()
    assert directory.timeline.serving
    directory.timeline.behind_until = time.monotonic() + 60
    assert not directory.timeline.serving
    directory.reset(caching=False)
    directory.timeline.behind_until = 0
    assert not directory.timeline.serving


def connect(network: str, cid: str) -> dict:
    return {"Type": "network", "Action": "connect",
            "Actor": {"ID": "n" * 64, "Attributes": {"container": cid, "name": network}}}


def test_a_start_on_the_default_bridge_keeps_what_a_reference_names() -> None:
    """Every start connects its container to ``bridge``, where no alias lives: a hundred
    parents starting do not make each waiting parent's missing child be asked again."""
    directory, upstream, parent = setup(by_alias=True)
    upstream.containers = [c for c in upstream.containers if c["Id"] != CHILD_ID]
    scope_ids(directory, parent)
    asked = upstream.calls
    directory.saw(connect("bridge", OTHER_ID))
    scope_ids(directory, parent)
    assert upstream.calls == asked
    directory.saw(connect("appnet", OTHER_ID))
    scope_ids(directory, parent)
    assert upstream.calls > asked


def test_parents_resolving_one_reference_at_once_ask_the_engine_once() -> None:
    directory, upstream, parent = setup()
    parents = [dict(parent, Id=str(n) * 64) for n in range(1, 10)]

    async def all_at_once() -> None:
        await asyncio.gather(*(directory.scopes.scoped(p, 1) for p in parents))

    asyncio.run(all_at_once())
    assert upstream.paths.count("/containers/db1/json") == 1


def test_a_lookup_after_a_create_is_not_answered_by_one_asked_before_it() -> None:
    directory, upstream, parent = setup()
    upstream.containers = [c for c in upstream.containers if c["Id"] != CHILD_ID]
    second = dict(parent, Id="9" * 64)

    async def racing() -> set[str]:
        first = asyncio.ensure_future(directory.scopes.scoped(parent, 1))
        for _ in range(10):
            if upstream.calls:
                break
            await asyncio.sleep(0)
        upstream.containers.append(document(CHILD_ID, "db1"))
        directory.saw(event("create", CHILD_ID, "db1"))
        later = await directory.scopes.scoped(second, 2)
        await first
        return {seen.id for seen in later.scope}

    assert asyncio.run(racing()) == {"9" * 64, CHILD_ID}
