"""The proxy's rule book: each row is a named case of who asks what, and what the proxy says.

A caller sees itself and the children it declares at create time; everything else is a 404
worded as for a missing container (a refused container) or a 403 (a refused operation).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest

from linkinit.host.proxy.policy import (
    ALL,
    LINKS,
    NOBODY,
    Caller,
    Request,
    Visible,
    decide,
    declared_references,
    event_visible,
    filter_containers,
    link_flags,
    needs_scope,
)

WEB = Visible("a" * 64, "webapp")
DB = Visible("b" * 63 + "1", "db1")
STRANGER = Visible("c" * 64, "vault")
PARENT = Caller(WEB.id, WEB.name, LINKS, (WEB, DB), pid=4242)
LONER = Caller(WEB.id, WEB.name, LINKS, (WEB,), pid=4242)
HOST = Caller("", "", ALL, (), pid=1)
UNMAPPED = Caller("", "", NOBODY, (), pid=1)
CONTAINER_EVENTS = json.dumps({"type": ["container"], "event": ["start", "health_status"]})


class Case(NamedTuple):
    name: str
    caller: Caller
    method: str
    path: str
    query: tuple = ()
    status: int = 0  # 0: allowed
    says: str = ""  # a piece of the refusal's message
    route: str = ""


CASES = [
    Case("ping", PARENT, "GET", "/_ping", route="ping"),
    Case("ping by HEAD", PARENT, "HEAD", "/_ping", route="ping"),
    Case("versioned ping", PARENT, "GET", "/v1.41/_ping", route="ping"),
    Case("version", LONER, "GET", "/v1.41/version", route="version"),
    Case("inspect itself by ID", PARENT, "GET", f"/containers/{WEB.id}/json", route="inspect"),
    Case("inspect itself by name", PARENT, "GET", "/containers/webapp/json", route="inspect"),
    Case("inspect child by name", PARENT, "GET", "/v1.41/containers/db1/json", route="inspect"),
    Case("inspect child by /name", PARENT, "GET", "/containers/%2Fdb1/json", route="inspect"),
    Case("inspect child by ID prefix", PARENT, "GET", f"/containers/{DB.id[:12]}/json",
         route="inspect"),
    Case("inspect a stranger", PARENT, "GET", "/containers/vault/json", status=404,
         says="No such container: vault (this container sees only itself"),
    Case("inspect a stranger by ID", PARENT, "GET", f"/containers/{STRANGER.id}/json",
         status=404, says="--label link.<alias>="),
    Case("inspect a name that does not exist", PARENT, "GET", "/containers/nothere/json",
         status=404, says="No such container: nothere"),
    Case("a refusal mentions that files are no proof", PARENT, "GET", "/containers/x/json",
         status=404, says="--trust-files"),
    Case("no links: sees only itself", LONER, "GET", "/containers/db1/json", status=404),
    Case("list", PARENT, "GET", "/containers/json", (("all", "1"),), route="list"),
    Case("events with linkinit's filters", PARENT, "GET", "/v1.41/events",
         (("filters", CONTAINER_EVENTS), ("since", "1700000000.5")), route="events"),
    Case("events with until", PARENT, "GET", "/events", (("until", "1"),), status=403,
         says="until= is refused"),
    Case("events filtered by label", PARENT, "GET", "/events",
         (("filters", json.dumps({"label": ["x"]})),), status=403, says="'label' is refused"),
    Case("events with bad filters", PARENT, "GET", "/events", (("filters", "[1"),),
         status=400, says="not a JSON object"),
    Case("events with bad since", PARENT, "GET", "/events", (("since", "10m"),), status=400),
    Case("create", PARENT, "POST", "/v1.41/containers/create", status=403, says="read-only"),
    Case("start a child", PARENT, "POST", "/containers/db1/start", status=403),
    Case("exec in a child", PARENT, "POST", "/containers/db1/exec", status=403),
    Case("delete a child", PARENT, "DELETE", "/containers/db1", status=403),
    Case("logs of a child", PARENT, "GET", "/containers/db1/logs", status=403,
         says="allows only"),
    Case("archive of a child", PARENT, "GET", "/containers/db1/archive", status=403),
    Case("export of a child", PARENT, "GET", "/containers/db1/export", status=403),
    Case("logs of a stranger look missing", PARENT, "GET", "/containers/vault/logs",
         status=404),
    Case("images", PARENT, "GET", "/images/json", status=403),
    Case("networks", PARENT, "GET", "/networks", status=403),
    Case("volumes", PARENT, "GET", "/volumes", status=403),
    Case("swarm", PARENT, "GET", "/swarm", status=403),
    Case("info", PARENT, "GET", "/info", status=403),
    Case("unmapped caller", UNMAPPED, "GET", "/_ping", status=403, says="--allow-host"),
    Case("host caller, allowed in", HOST, "GET", "/containers/vault/json", route="inspect"),
    Case("host caller is still read-only", HOST, "POST", "/containers/create", status=403),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_rule_book(case: Case) -> None:
    decision = decide(case.caller, Request(case.method, case.path, case.query))
    if case.status == 0:
        assert decision.allowed, decision.message
        assert decision.route == case.route
    else:
        assert not decision.allowed
        assert decision.status == case.status
        assert decision.message.startswith("linkinit proxy: ")
        assert case.says in decision.message


@pytest.mark.parametrize(
    ("path", "needed"),
    [("/_ping", False), ("/v1.41/version", False), ("/containers/db1/json", True),
     ("/containers/json", True), ("/events", True), ("/images/json", True)],
)
def test_only_requests_naming_no_container_skip_the_scope(path: str, needed: bool) -> None:
    """/_ping and /version are answered without looking up the caller's children."""
    assert needs_scope(Request("GET", path)) is needed


def test_a_refused_container_reads_the_same_whether_it_exists_or_not() -> None:
    """No probing: the message depends on the reference only."""
    exists = decide(PARENT, Request("GET", "/containers/vault/json"))
    missing = decide(LONER, Request("GET", "/containers/vault/json"))
    assert (exists.status, exists.message) == (missing.status, missing.message)


def test_the_list_keeps_only_the_caller_and_its_children() -> None:
    summaries = [{"Id": WEB.id}, {"Id": DB.id}, {"Id": STRANGER.id}]
    assert filter_containers(PARENT, summaries) == summaries[:2]
    assert filter_containers(LONER, summaries) == summaries[:1]
    assert filter_containers(HOST, summaries) == summaries


def event(container: Visible, action: str = "start", kind: str = "container") -> dict:
    return {"Type": kind, "Action": action,
            "Actor": {"ID": container.id, "Attributes": {"name": container.name}}}


@pytest.mark.parametrize(
    ("name", "caller", "sent", "filters", "passes"),
    [
        ("child's start", PARENT, event(DB), {}, True),
        ("own start", PARENT, event(WEB), {}, True),
        ("stranger's start", PARENT, event(STRANGER), {}, False),
        ("network event", PARENT, event(DB, "connect", "network"), {}, False),
        ("health by prefix", PARENT, event(DB, "health_status: healthy"),
         {"event": ["health_status"]}, True),
        ("exact event names", PARENT, event(DB, "die"), {"event": ["start"]}, False),
        ("type filter", PARENT, event(DB), {"type": ["image"]}, False),
        ("container filter by name", PARENT, event(DB), {"container": ["db1"]}, True),
        ("container filter by other", PARENT, event(DB), {"container": ["webapp"]}, False),
        ("host sees strangers", HOST, event(STRANGER), {}, True),
    ],
)
def test_events_go_to_a_caller_only_about_what_it_sees(
    name: str, caller: Caller, sent: dict, filters: dict, passes: bool
) -> None:
    assert event_visible(caller, sent, filters) is passes


def inspect_document(labels: dict[str, str], entrypoint: Any = None, cmd: Any = None,
                     env: Any = None) -> dict:
    return {"Config": {"Labels": labels, "Entrypoint": entrypoint, "Cmd": cmd, "Env": env}}


def test_declared_references_come_from_labels_and_linkinit_flags() -> None:
    container = inspect_document(
        {"link.redis": "db1", "link.redis.wait": "healthy", "link.cache": " mc ",
         "linkinit.timeout": "5", "other": "x"},
        ["linkinit", "--link", "db2:two", "--link=db3"],
        ["--link", "db1", "--", "app", "--link", "not-a-link"],
        ["PATH=/bin", "LINKINIT_LINKS=db4:four, db1 ,,:x", "OTHER_LINKS=nope"],
    )
    assert declared_references(container) == ["mc", "db1", "db2", "db3", "db4"]


@pytest.mark.parametrize(
    ("argv", "children"),
    [
        (["/usr/local/bin/linkinit", "--link", "db1:redis", "--", "run"], ["db1"]),
        (["linkinit", "--", "app", "--link", "x"], []),
        (["app", "--link", "x"], []),  # not linkinit's option
        (["linkinit", "--link"], []),  # a dangling flag names nothing
        (["linkinit", "--link", ":alias"], []),
    ],
)
def test_link_flags_are_linkinit_options_only(argv: list, children: list) -> None:
    assert link_flags(argv) == children


def test_declared_references_include_the_links_the_engine_keeps() -> None:
    """`--link` on the default bridge or a user network, compose `links:` (one child for its
    three entries): fixed at create like labels, so they scope the caller too."""
    container = inspect_document({"link.cache": "mc"})
    container["HostConfig"] = {"Links": ["/db1:/web/redis"]}
    container["NetworkSettings"] = {"Networks": {"n": {"Links": [
        "p-db-1:db", "p-db-1:db-1", "p-db-1:p-db-1"]}}}
    assert declared_references(container) == ["mc", "p-db-1", "db1"]


def test_a_container_without_config_declares_nothing() -> None:
    assert declared_references({}) == []


def test_every_route_of_the_rule_book_has_its_handler_and_no_handler_is_unlisted() -> None:
    """The deny-by-default table and the server's handlers name the same routes: a row
    without a handler would 500, a handler without a row is dead code."""
    from linkinit.host.proxy.policy import ROUTES
    from linkinit.host.proxy.server import Proxy

    proxy = Proxy(None, None, None)  # type: ignore[arg-type]  # only its table is read
    assert set(proxy.routes) == {route for _, _, route, _ in ROUTES}
