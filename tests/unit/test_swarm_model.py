"""Swarm services as children and tasks as parents (linkinit/model/swarm.py), from the shapes a
Docker 20.10 manager answers with; and how ``find``, readiness and the waiter treat them."""

from __future__ import annotations

from typing import Any, List, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.engine.kinds import DOCKER
from linkinit.errors import EngineRefused, NotSwarmManager
from linkinit.init import resolve
from linkinit.init.readiness import DOWN, READY, observe
from linkinit.init.waiter import SERVICE_POLL_DELAYS
from linkinit.model import container as model
from linkinit.model import swarm
from linkinit.model.declare import LinkSpec
from tests.support.paths import ROOT

OVERLAY_ID = "k3overlay000000000000000"
INGRESS_ID = "ingress00000000000000000"
PARENT = {"Id": "p" * 64, "Name": "/web.1.abc",
          "NetworkSettings": {"Networks": {"appnet": {"NetworkID": OVERLAY_ID,
                                                      "IPAddress": "10.0.1.9"}}}}


def attachment(address: str, network_id: str = OVERLAY_ID, name: str = "appnet",
               ingress: bool = False) -> dict:
    return {"Network": {"ID": network_id, "Spec": {"Name": name, "Ingress": ingress}},
            "Addresses": [f"{address}/24"]}


def task(slot: int, state: str, address: str = "", desired: str = "running",
         created: str = "2026-11-28T10:00:00Z", err: str = "") -> dict:
    attachments = [attachment(address)] if address else []
    return {"ID": f"task{slot}{state}", "Slot": slot, "NodeID": "node1", "DesiredState": desired,
            "CreatedAt": created, "UpdatedAt": created,
            "Status": {"State": state, "Err": err,
                       "ContainerStatus": {"ContainerID": "c" * 64}},
            "Spec": {"ContainerSpec": {"Labels": {"link.redis": "db"}, "Env": ["A=1"]}},
            "NetworksAttachments": attachments}


def service(mode: str = "vip", ports: Optional[List[dict]] = None) -> dict:
    document: dict = {
        "ID": "svc0123456789",
        "Spec": {"Name": "db",
                 "TaskTemplate": {"ContainerSpec": {
                     "Image": "redis:7@sha256:abc", "Env": ["REDIS_PASSWORD=x", "EMPTY="],
                     "Hostname": "{{.Service.Name}}-{{.Task.Slot}}"}},
                 "EndpointSpec": {"Mode": mode, "Ports": ports or []}},
        "Endpoint": {},
    }
    if mode == "vip":
        document["Endpoint"]["VirtualIPs"] = [{"NetworkID": INGRESS_ID, "Addr": "10.0.0.5/24"},
                                              {"NetworkID": OVERLAY_ID, "Addr": "10.0.1.2/24"}]
    return document


IMAGE = {"Config": {"ExposedPorts": {"6379/tcp": {}}}}


def test_the_managers_refusals_are_told_apart() -> None:
    worker = ("This node is not a swarm manager. Worker nodes can't be used to view or "
              "modify cluster state. Please run this command on a manager node or promote "
              "the current node to a manager.")
    alone = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm '
             'join" to connect this node to swarm and try again.')
    assert swarm.manager_refusal(503, worker) == swarm.WORKER
    assert swarm.manager_refusal(503, alone) == swarm.NOT_IN_SWARM
    assert swarm.manager_refusal(503, "the daemon is shutting down") is None
    assert swarm.manager_refusal(500, alone) is None


def test_a_vip_service_is_its_virtual_ip_on_the_shared_network_not_the_ingress() -> None:
    published = task(1, "running", "10.0.1.7")
    published["NetworksAttachments"].append(attachment("10.0.0.8", INGRESS_ID, "ingress", True))
    document = swarm.service_document(service(), [published], IMAGE)
    assert model.networks_of(document) == {
        "appnet": {"NetworkID": OVERLAY_ID, "IPAddress": "10.0.1.2", "Aliases": ["db"]}}
    assert model.shared_address(PARENT, document) == "10.0.1.2"
    assert model.name_of(document) == "db" and model.state_of(document) == "running"
    assert model.environment_of(document) == ("REDIS_PASSWORD=x", "EMPTY=")
    assert model.exposed_ports(document) == [model.Port(6379, "tcp")]
    assert model.hostname_of(document) == ""  # a template names no one host


def test_network_names_come_from_the_parent_when_no_task_names_them() -> None:
    names = {OVERLAY_ID: "appnet"}
    document = swarm.service_document(service(), [], IMAGE, names)
    assert model.shared_address(PARENT, document) == ""  # known network, no task running
    assert model.state_of(document) == "no task running"


def test_published_target_ports_win_over_the_image() -> None:
    ports = [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080},
             {"Protocol": "udp", "TargetPort": 53}]
    document = swarm.service_document(service(ports=ports), [], IMAGE)
    assert model.exposed_ports(document) == [model.Port(80, "tcp"), model.Port(53, "udp")]


def test_a_dnsrr_service_is_its_lowest_running_slot() -> None:
    tasks = [task(2, "running", "10.0.1.12"), task(1, "starting", "10.0.1.11"),
             task(3, "running", "10.0.1.13")]
    document = swarm.service_document(service("dnsrr"), tasks, IMAGE)
    assert model.shared_address(PARENT, document) == "10.0.1.12"
    assert document[swarm.SERVICE_KEY]["Running"] == 2


def test_a_slot_replaced_counts_its_newest_task_and_names_the_last_failure() -> None:
    tasks = [task(1, "failed", "10.0.1.11", desired="shutdown", err="task: non-zero exit (1)",
                  created="2026-11-28T10:00:00Z"),
             task(1, "preparing", created="2026-11-28T10:00:05Z")]
    document = swarm.service_document(service("dnsrr"), tasks, IMAGE)
    state, detail = swarm.service_state(document)
    assert state == "no task running (db.1 preparing, last failure: db.1 failed " \
                    "(task: non-zero exit (1)))"
    assert detail.startswith("service db: no task running; tasks: db.1 preparing")


def test_an_image_digest_is_left_out_when_a_tag_names_the_image() -> None:
    assert swarm.service_image(service()) == "redis:7"
    pinned = service()
    pinned["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = "redis@sha256:abc"
    assert swarm.service_image(pinned) == "redis@sha256:abc"
    registry = service()
    registry["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = "host:5000/redis"
    assert swarm.service_image(registry) == "host:5000/redis"


def test_a_task_seen_from_a_manager_reads_as_its_container() -> None:
    seen = task(1, "running", "10.0.1.9")
    seen["NetworksAttachments"].append(attachment("10.0.0.8", INGRESS_ID, "ingress", True))
    document = swarm.task_document(seen, "web")
    assert document["Id"] == "c" * 64
    assert model.name_of(document) == "web.1.task1running"
    assert model.labels_of(document)["link.redis"] == "db"
    assert model.labels_of(document)[swarm.SERVICE_NAME_LABEL] == "web"
    assert model.networks_of(document)["appnet"]["IPAddress"] == "10.0.1.9"
    assert "ingress" not in model.networks_of(document)
    assert [text for _, text in swarm.task_addresses(seen)] == ["10.0.1.9/24"]
    assert model.declared_links(document)[0][0] == "redis"


# -- find: containers, then services, then aliases -------------------------------------------


class Lookup:
    def __init__(self, container: Any = None, found_service: Any = None,
                 holders: Any = (), role: str = "") -> None:
        self.container, self.found_service, self.holders, self.role = (
            container, found_service, list(holders), role)

    def by_reference(self, reference: str) -> model.Lookup:
        return model.Lookup(self.container) if self.container else model.Lookup(None)

    def service(self, reference: str) -> model.Lookup:
        if self.role == swarm.WORKER:
            return model.Lookup(None, model.NO_MANAGER, "deploy the proxy")
        return model.Lookup(self.found_service) if self.found_service else model.Lookup(None)

    def on_networks(self, networks: Any) -> list:
        return self.holders


def own_task(name: str = "db") -> dict:
    return {"Id": "t" * 64, "Name": f"/{name}.1.xyz",
            "Config": {"Labels": {swarm.SERVICE_NAME_LABEL: name, swarm.TASK_ID_LABEL: "xyz"}},
            "NetworkSettings": {"Networks": {"appnet": {"Aliases": [name]}}}}


def test_a_service_comes_before_the_alias_its_own_tasks_hold() -> None:
    document = swarm.service_document(service(), [task(1, "running", "10.0.1.7")])
    found = model.find("db", PARENT, Lookup(found_service=document, holders=[own_task()]))
    assert found.container is document


def test_a_swarm_task_is_not_an_alias_holder() -> None:
    """A stack's task holds its short service name as an alias (``db`` for ``demo_db``)."""
    assert model.find("db", PARENT, Lookup(holders=[own_task("demo_db")])).state == model.MISSING


def test_a_parent_in_a_stack_finds_its_stack_mates_by_their_short_names() -> None:
    in_stack = dict(PARENT, Config={"Labels": {swarm.STACK_LABEL: "demo"}})
    assert swarm.service_references("db", in_stack) == ["db", "demo_db"]
    assert swarm.service_references("demo_db", in_stack) == ["demo_db"]
    assert swarm.service_references("db", PARENT) == ["db"]


def test_on_a_worker_an_alias_still_links_and_only_then_the_manager_is_missing() -> None:
    compose = {"Id": "d" * 64, "Name": "/proj-db-1",
               "NetworkSettings": {"Networks": {"appnet": {"Aliases": ["db"]}}}}
    assert model.find("db", PARENT, Lookup(holders=[compose], role=swarm.WORKER)).container \
        is compose
    missing = model.find("db", PARENT, Lookup(role=swarm.WORKER))
    assert missing.state == model.NO_MANAGER and missing.why == "deploy the proxy"


# -- readiness and the waiter ------------------------------------------------------------


def spec(wait: str) -> LinkSpec:
    return LinkSpec("redis", "db", wait, False, "label link.redis")


@pytest.mark.parametrize("wait", ["started", "healthy"])
def test_a_running_task_makes_the_service_ready(wait: str) -> None:
    document = swarm.service_document(service(), [task(1, "running", "10.0.1.7")], IMAGE)
    seen = observe(spec(wait), PARENT, document)
    assert seen.phase == READY and seen.address == "10.0.1.2"


def test_listening_probes_the_exported_address() -> None:
    document = swarm.service_document(service("dnsrr"), [task(1, "running", "10.0.1.7")], IMAGE)
    probed: List[tuple] = []
    seen = observe(spec("listening"), PARENT, document,
                   lambda address, port: probed.append((address, port)) or True)
    assert seen.phase == READY and probed == [("10.0.1.7", 6379)]


def test_a_service_without_a_running_task_is_down_and_says_which_tasks() -> None:
    document = swarm.service_document(service(), [task(1, "starting")], IMAGE)
    seen = observe(spec("healthy"), PARENT, document)
    assert seen.phase == DOWN
    assert seen.state == "no task running (db.1 starting)"
    assert "service db" in seen.detail


def test_the_waiter_asks_for_a_services_tasks_again_since_no_event_says_they_changed() -> None:
    from tests.unit.test_waiter import make

    starting = swarm.service_document(service(), [task(1, "starting")], IMAGE)
    running = swarm.service_document(service(), [task(1, "running", "10.0.1.7")], IMAGE)
    looks = iter([starting, starting, starting, running])
    waiter, timeline, lines = make([spec("started")], {})
    waiter.find = lambda _: next(looks)
    waiter.parent = PARENT
    ready = waiter.run()
    assert ready[0][1].address == "10.0.1.2"
    assert timeline.pauses == list(SERVICE_POLL_DELAYS[:3])
    assert lines[-1] == "waiting for redis (db): no task running (db.1 starting) -> running"


@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(
    ["new", "pending", "preparing", "starting", "running", "failed", "shutdown"]),
    st.sampled_from(["running", "shutdown"]), st.integers(1, 250)), max_size=8))
def test_any_task_list_gives_a_running_tasks_address_or_none(tasks: list) -> None:
    documents = [task(slot, state, f"10.0.1.{n}", desired)
                 for slot, state, desired, n in tasks]
    shaped = swarm.service_document(service("dnsrr"), documents, IMAGE)
    running = {f"10.0.1.{n}" for _, state, desired, n in tasks
               if state == "running" and desired == "running"}
    address = model.shared_address(PARENT, shaped)
    assert (address in running) if running else address is None
    assert model.is_running(shaped) == bool(running)


# -- the README's swarm section ------------------------------------------------------------

def test_the_readme_shows_the_stack_file_the_tests_deploy() -> None:
    readme = (ROOT / "README.md").read_text()
    stack = (ROOT / "examples" / "swarm-demo.yml").read_text()
    assert f"```yaml\n{stack}```" in readme


def test_the_readme_shows_the_workers_message_as_linkinit_words_it() -> None:
    message = (f"linkinit: link redis: 'db' is not a container on this node; "
               f"{resolve.WORKER_HINT}")
    assert f"```\n{message}\n```" in (ROOT / "README.md").read_text()


# -- the Engine's answers about services (resolve.EngineLookup) ------------------------------


class ServiceEngine:
    """Answers /services with one scripted error (or a service), counting the questions."""

    kind = DOCKER

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.swarm_role: Optional[str] = None
        self.asked = 0

    def inspect_service(self, reference: str) -> Optional[dict]:
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def list_tasks(self, filters: dict) -> list:
        return [task(1, "running", "10.0.1.7")]

    def inspect_image(self, reference: str) -> Optional[dict]:
        return IMAGE


@pytest.mark.parametrize(("answer", "state"), [
    pytest.param(NotSwarmManager("not a swarm manager", 503, swarm.NOT_IN_SWARM),
                 model.MISSING, id="no swarm"),
    pytest.param(EngineRefused("linkinit proxy: GET /services/db is refused", 403),
                 model.MISSING, id="a proxy that serves no services"),
    pytest.param(NotSwarmManager("Worker nodes can't", 503, swarm.WORKER),
                 model.NO_MANAGER, id="a worker"),
])
def test_an_engine_that_shows_no_services_is_asked_once(answer: Exception, state: str) -> None:
    engine = ServiceEngine(answer)
    lookup = resolve.EngineLookup(engine, PARENT)  # type: ignore[arg-type]
    assert lookup.service("db").state == state
    assert lookup.service("db").state == state
    assert engine.asked == 1


def test_a_manager_shapes_the_service_with_its_tasks_and_image() -> None:
    lookup = resolve.EngineLookup(ServiceEngine(service()), PARENT)  # type: ignore[arg-type]
    found = lookup.service("db").container
    assert model.shared_address(PARENT, found) == "10.0.1.2"
    assert model.exposed_ports(found) == [model.Port(6379, "tcp")]


def test_a_service_comes_before_a_container_whose_id_merely_starts_with_its_name() -> None:
    """``db`` is a hex prefix: an unrelated container whose ID starts with it must not take
    the place of the stack's ``db`` (found in a fresh-clone run); its exact name still wins."""
    prefixed = {"Id": "db" + "0" * 62, "Name": "/lt-db-fe7484b4"}
    document = swarm.service_document(service(), [task(1, "running", "10.0.1.7")])
    assert model.find("db", PARENT, Lookup(prefixed, document)).container is document
    assert model.find("db", PARENT, Lookup(prefixed)).container is prefixed
    named = {"Id": "e" * 64, "Name": "/db"}
    assert model.find("db", PARENT, Lookup(named, document)).container is named
