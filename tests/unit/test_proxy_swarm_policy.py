"""The proxy's rules for swarm services (host/proxy/policy.py): a caller that links a service
may inspect it, list its tasks by a ``service`` filter, inspect its image and receive its
events; a task on another node inspects itself through the proxy. Everything else stays
refused, and a refused service reads exactly like a missing one."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.host.proxy.policy import (
    ALL,
    LINKS,
    Caller,
    Request,
    Visible,
    answers_for_itself,
    decide,
    declared_references,
    event_visible,
    filter_tasks,
)
from linkinit.model import swarm

WEB = Visible("a" * 64, "web.1.t0k3n")
DB = Visible("svcdb0123456789abcdefghi", "db")  # a service: 25-character swarm ID
CACHE = Visible("svccache89abcdefghijklmn", "cache")
IMAGE = "redis:7"
TASK_DOCUMENT = swarm.task_document(
    {"ID": "t0k3n", "Slot": 1, "Status": {"State": "running",
                                          "ContainerStatus": {"ContainerID": WEB.id}},
     "Spec": {"ContainerSpec": {"Labels": {"link.redis": "db"}}}}, "web")
PARENT = Caller(WEB.id, WEB.name, LINKS, (WEB,), 0, (DB,), (IMAGE, IMAGE + "@sha256:1"),
                "10.0.1.5:40000", TASK_DOCUMENT)
LOCAL = Caller(WEB.id, WEB.name, LINKS, (WEB,), 4242, (DB,), (IMAGE,))  # on the Unix socket
LONER = Caller(WEB.id, WEB.name, LINKS, (WEB,), 4242)
HOST = Caller("", "", ALL, (), 1)


def tasks_query(filters: Any) -> tuple:
    return (("filters", json.dumps(filters)),)


class Case(NamedTuple):
    name: str
    caller: Caller
    path: str
    query: tuple = ()
    status: int = 0  # 0: allowed
    says: str = ""
    route: str = ""


CASES = [
    Case("linked service by name", PARENT, "/v1.41/services/db", route="service"),
    Case("linked service by ID", LOCAL, f"/services/{DB.id}", route="service"),
    Case("linked service by ID prefix", PARENT, f"/services/{DB.id[:6]}", route="service"),
    Case("another service", PARENT, "/services/cache", status=404,
         says="service cache not found (this container sees only the swarm services it links"),
    Case("a service a container with no links asks for", LONER, "/services/db", status=404,
         says="--container-label link.<alias>=db"),
    Case("the service list", PARENT, "/services", status=403, says="allows only"),
    Case("tasks of a linked service", PARENT, "/tasks", tasks_query({"service": [DB.id]}),
         route="tasks"),
    Case("tasks of a linked service by name", LOCAL, "/tasks", tasks_query({"service": ["db"]}),
         route="tasks"),
    Case("tasks in the Engine's old filter form", PARENT, "/tasks",
         tasks_query({"service": {"db": True}}), route="tasks"),
    Case("every task", PARENT, "/tasks", status=403,
         says="without a service filter is refused"),
    Case("tasks by node", PARENT, "/tasks", tasks_query({"node": ["n1"]}), status=403,
         says="filter 'node' is refused"),
    Case("tasks of a linked and another service", PARENT, "/tasks",
         tasks_query({"service": ["db", "cache"]}), status=403,
         says="/tasks of service 'cache' is refused"),
    Case("tasks with a linked service and more filters", PARENT, "/tasks",
         tasks_query({"service": ["db"], "desired-state": ["running"]}), status=403,
         says="filter 'desired-state' is refused"),
    Case("tasks with bad filters", PARENT, "/tasks", (("filters", "[1"),), status=400),
    Case("tasks with another parameter", PARENT, "/tasks", (("limit", "1"),), status=403),
    Case("one task by ID", PARENT, "/tasks/t0k3n", status=403),
    Case("the linked service's image", PARENT, f"/images/{IMAGE}/json", route="image"),
    Case("the image by its pinned reference", PARENT, f"/images/{IMAGE}@sha256:1/json",
         route="image"),
    Case("an image with a registry path", PARENT, "/images/localhost/other:1/json",
         status=403, says="only the image of a swarm service it links"),
    Case("another image", PARENT, "/images/vault:1/json", status=403),
    Case("the image list", PARENT, "/images/json", status=403),
    Case("nodes", PARENT, "/nodes", status=403),
    Case("secrets", PARENT, "/secrets", status=403),
    Case("a service's logs", PARENT, "/services/db/logs", status=403),
    Case("itself by its full ID", PARENT, f"/containers/{WEB.id}/json", route="inspect"),
    Case("itself by its hostname (the short ID)", PARENT, f"/containers/{WEB.id[:12]}/json",
         route="inspect"),
    Case("itself by its task name", PARENT, "/containers/web.1.t0k3n/json", route="inspect"),
    Case("host sees any service", HOST, "/services/cache", route="service"),
    Case("host lists tasks as it likes", HOST, "/tasks", tasks_query({"node": ["n1"]}),
         route="tasks"),
    Case("host inspects any image", HOST, "/images/vault:1/json", route="image"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_rule_book_for_services(case: Case) -> None:
    decision = decide(case.caller, Request("GET", case.path, case.query))
    if case.status == 0:
        assert decision.allowed, decision.message
        assert decision.route == case.route
    else:
        assert not decision.allowed
        assert (decision.status, decision.message[:16]) == (case.status, "linkinit proxy: ")
        assert case.says in decision.message


def test_writes_to_services_stay_refused() -> None:
    for method, path in (("POST", "/services/db/update"), ("DELETE", "/services/db"),
                         ("POST", "/services/create")):
        decision = decide(PARENT, Request(method, path))
        assert (decision.allowed, decision.status) == (False, 403)


def test_a_refused_service_reads_the_same_whether_it_exists_or_not() -> None:
    exists = decide(PARENT, Request("GET", "/services/cache"))
    missing = decide(PARENT, Request("GET", "/services/nothere"))
    assert exists.status == missing.status == 404
    assert exists.message.replace("cache", "X") == missing.message.replace("nothere", "X")


@pytest.mark.parametrize(
    ("ref", "itself"),
    [(WEB.id, True), (WEB.id[:12], True), (WEB.id[:20], True), ("web.1.t0k3n", True),
     ("/web.1.t0k3n", True), (WEB.id[:11], False), ("web.1", False), ("db", False), ("", False)],
)
def test_a_remote_task_is_answered_for_itself_by_what_find_parent_sends(ref: str,
                                                                        itself: bool) -> None:
    """Its ID from mountinfo or the cgroup, its hostname (12 characters), its name."""
    assert answers_for_itself(PARENT, ref) is itself
    assert answers_for_itself(LOCAL, ref) is False  # on this node the Engine answers


def test_a_spec_hostname_answers_but_a_template_does_not() -> None:
    def document(hostname: str) -> dict:
        return swarm.task_document(
            {"ID": "t", "Status": {"ContainerStatus": {"ContainerID": WEB.id}},
             "Spec": {"ContainerSpec": {"Hostname": hostname}}}, "web")

    assert answers_for_itself(PARENT._replace(document=document("webhost")), "webhost")
    templated = document("{{.Node.Hostname}}")
    assert templated["Config"]["Hostname"] == ""
    assert not answers_for_itself(PARENT._replace(document=templated), "{{.Node.Hostname}}")


def test_the_task_list_keeps_only_the_linked_services_tasks() -> None:
    tasks = [{"ID": "1", "ServiceID": DB.id}, {"ID": "2", "ServiceID": CACHE.id},
             {"ID": "3"}]
    assert filter_tasks(PARENT, tasks) == tasks[:1]
    assert filter_tasks(LONER, tasks) == []
    assert filter_tasks(HOST, tasks) == tasks


def service_event(service: Visible, action: str = "update") -> dict:
    return {"Type": "service", "Action": action,
            "Actor": {"ID": service.id, "Attributes": {"name": service.name}}}


@pytest.mark.parametrize(
    ("name", "caller", "sent", "filters", "passes"),
    [
        ("linked service's update", PARENT, service_event(DB), {}, True),
        ("other service's update", PARENT, service_event(CACHE), {}, False),
        ("no links, no service events", LONER, service_event(DB), {}, False),
        ("type filter asks for containers only", PARENT, service_event(DB),
         {"type": ["container"]}, False),
        ("linkinit's own filters", PARENT, service_event(DB, "remove"),
         {"type": ["container", "service"], "event": ["create", "update", "remove"]}, True),
        ("container filter matches the service's name", PARENT, service_event(DB),
         {"container": ["db"]}, True),
        ("container filter naming another", PARENT, service_event(DB),
         {"container": ["cache"]}, False),
        ("node events are for no one", PARENT,
         {"Type": "node", "Action": "update", "Actor": {"ID": DB.id}}, {}, False),
        ("host sees every service", HOST, service_event(CACHE), {}, True),
    ],
)
def test_service_events_go_only_to_callers_that_link_the_service(
        name: str, caller: Caller, sent: dict, filters: dict, passes: bool) -> None:
    assert event_visible(caller, sent, filters) is passes


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=30)


@given(names)
def test_no_service_name_but_the_linked_ones_is_allowed(name: str) -> None:
    """Any name is allowed exactly when it is a linked service's name, ID or ID prefix."""
    decision = decide(PARENT, Request("GET", f"/services/{name}"))
    linked = name in (DB.name, DB.id) or DB.id.startswith(name)
    assert decision.allowed is linked
    if not linked:
        assert decision.status == 404


@given(st.dictionaries(st.sampled_from(["service", "node", "name", "desired-state", "label"]),
                       st.lists(st.sampled_from(["db", DB.id, "cache", "x"]), max_size=3),
                       max_size=3))
def test_tasks_are_listed_only_by_linked_services(filters: dict) -> None:
    decision = decide(PARENT, Request("GET", "/tasks", tasks_query(filters)))
    only_linked = (set(filters) == {"service"} and filters["service"]
                   and all(v in ("db", DB.id) for v in filters["service"]))
    assert decision.allowed is bool(only_linked)


def test_a_tasks_links_come_from_its_container_labels_command_and_environment() -> None:
    """What the service fixed at create time: --container-label, the command it gives
    (ContainerSpec.Command and Args, as Entrypoint and Cmd) and its environment."""
    document = swarm.task_document(
        {"ID": "t", "Status": {"ContainerStatus": {"ContainerID": WEB.id}},
         "Spec": {"ContainerSpec": {"Labels": {"link.redis": "db"},
                                    "Command": ["linkinit"], "Args": ["--link", "cache", "--"],
                                    "Env": ["LINKINIT_LINKS=queue:q"]}}}, "web")
    assert declared_references(document) == ["db", "cache", "queue"]
