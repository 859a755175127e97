"""The proxy's server for swarm callers, in process: requests as aiohttp hands them over (the
kernel's peer and arrival addresses on the transport), a fake manager upstream. A task on a
worker inspects itself and the service it links, lists that service's tasks and inspects its
image; strangers on TCP are refused with a message that names them; a declared reference
resolves as ``container.find`` would: container, then service, then alias."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
from typing import Any, Optional

from aiohttp.test_utils import make_mocked_request

from linkinit.host.proxy.directory import Directory
from linkinit.host.proxy.events import EventHub
from linkinit.host.proxy.server import Proxy
from linkinit.model import swarm

NET = "netapp0000000000000000000"
PROXY_ID = "f" * 64
WORKER_TASK_CONTAINER = "a" * 64
DB_SERVICE = "svcdb0123456789abcdefghi"
CACHE_SERVICE = "svccache89abcdefghijklmn"
LOCAL_ID = "1" * 64


WORKER_503 = ("This node is not a swarm manager. Worker nodes can't be used to view or modify "
              "cluster state. Please run this command on a manager node or promote the "
              "current node to a manager.")


def attachment(address: str) -> dict:
    return {"Network": {"ID": NET, "Spec": {"Name": "appnet"}}, "Addresses": [f"{address}/24"]}


def task(task_id: str, service_id: str, container_id: str, address: str,
         labels: Optional[dict] = None) -> dict:
    return {"ID": task_id, "ServiceID": service_id, "Slot": 1, "NodeID": "worker1",
            "DesiredState": "running",
            "Status": {"State": "running", "ContainerStatus": {"ContainerID": container_id}},
            "Spec": {"ContainerSpec": {"Labels": labels or {}, "Env": ["MODE=web"],
                                       "Image": "web:1"}},
            "NetworksAttachments": [attachment(address)]}


def service(service_id: str, name: str, image: str = "redis:7@sha256:abc") -> dict:
    return {"ID": service_id,
            "Spec": {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": image}},
                     "EndpointSpec": {"Mode": "dnsrr"}}}


def container(cid: str, name: str, address: str, labels: Optional[dict] = None) -> dict:
    return {"Id": cid, "Name": "/" + name, "State": {"Running": True},
            "Config": {"Labels": labels or {}},
            "NetworkSettings": {"Networks": {"appnet": {
                "NetworkID": NET, "IPAddress": address, "IPPrefixLen": 24,
                "Aliases": []}}}}


class FakeManager:
    """A manager's Engine: this node's containers, the swarm's services and tasks."""

    def __init__(self) -> None:
        self.host = "unix:///fake"
        self.containers = [container(PROXY_ID, "linkinit-proxy", "10.0.1.9"),
                           container(LOCAL_ID, "local-app", "10.0.1.7",
                                     {"link.cache": "cache"})]
        self.services = [service(DB_SERVICE, "db"), service(CACHE_SERVICE, "cache")]
        self.tasks = [
            task("webtask", "svcweb", WORKER_TASK_CONTAINER, "10.0.1.5", {"link.redis": "db"}),
            task("dbtask", DB_SERVICE, "d" * 64, "10.0.1.11"),
            task("cachetask", CACHE_SERVICE, "c" * 64, "10.0.1.12"),
        ]
        self.service_names = {"svcweb": "web"}
        self.asked: list[str] = []
        self.worker = False  # a worker's Engine: 503 to /services and /tasks

    def _answer(self, path: str, query: dict) -> tuple[int, Any]:
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[0].startswith("v1."):
            parts = parts[1:]  # the API version: the Engine answers the same
        if parts == ["_ping"]:
            return 200, "OK"
        if self.worker and parts[0] in ("services", "tasks"):
            return 503, {"message": WORKER_503}
        if parts == ["tasks"]:
            return 200, self._tasks(json.loads(query.get("filters", "{}")))
        if parts[0] == "containers" and len(parts) == 3:
            found = self._container(parts[1])
            return (200, found) if found else (404, {"message": f"No such container: {parts[1]}"})
        if parts[0] == "services" and len(parts) == 2:
            found = self._service(parts[1])
            return (200, found) if found else (404, {"message": f"service {parts[1]} not found"})
        if parts == ["networks", NET]:
            return 200, {"Id": NET, "Containers": {
                c["Id"]: {"IPv4Address": c["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
                          + "/24"} for c in self.containers}}
        if parts[0] == "images":
            return 200, {"Id": "sha256:img", "Config": {"ExposedPorts": {"6379/tcp": {}}}}
        return 404, {"message": "page not found"}

    def _container(self, ref: str) -> Optional[dict]:
        for found in self.containers:
            if ref in (found["Id"], found["Name"][1:]) or found["Id"].startswith(ref):
                return found
        return None

    def _service(self, ref: str) -> Optional[dict]:
        for found in self.services:
            if ref in (found["ID"], found["Spec"]["Name"]) or found["ID"].startswith(ref):
                return found
        if ref in self.service_names:
            return service(ref, self.service_names[ref])
        return None

    def _tasks(self, filters: dict) -> list[dict]:
        wanted = [str((self._service(ref) or {}).get("ID")) for ref in filters.get("service", [])]
        return [t for t in self.tasks if not wanted or t["ServiceID"] in wanted]

    async def fetch(self, method: str, raw_path_qs: str) -> tuple[int, dict, bytes]:
        self.asked.append(raw_path_qs)
        split = urllib.parse.urlsplit(raw_path_qs)
        status, body = self._answer(split.path, dict(urllib.parse.parse_qsl(split.query)))
        return status, {"Content-Type": "application/json"}, json.dumps(body).encode()

    async def get_json(self, path: str, params: Optional[dict] = None) -> tuple[int, Any]:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        status, _, body = await self.fetch("GET", urllib.parse.quote(path) + query)
        return status, json.loads(body)

    async def inspect(self, ref: str) -> Optional[dict]:
        status, body = await self.get_json(f"/containers/{ref}/json")
        return body if status == 200 else None


class Transport:
    """What aiohttp's transport tells about a TCP connection."""

    def __init__(self, peer: str, local: str = "10.0.1.9") -> None:
        self.info = {"peername": (peer, 40000), "sockname": (local, 2375),
                     "socket": socket.socket(socket.AF_INET, socket.SOCK_STREAM)}

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return self.info.get(key, default)

    def is_closing(self) -> bool:
        return False


def proxy(manager: FakeManager, allow_host: bool = False) -> Proxy:
    directory = Directory(manager, allow_host, trust_files=False)  # type: ignore[arg-type]
    directory.callers.addresses = type(directory.callers.addresses)(
        manager.get_json, {"LINKINIT_CONTAINER": PROXY_ID})
    directory.reset(caching=True)
    hub = EventHub(manager, directory)  # type: ignore[arg-type]
    return Proxy(manager, directory, hub)  # type: ignore[arg-type]


def ask(server: Proxy, path: str, peer: str = "10.0.1.5", local: str = "10.0.1.9",
        method: str = "GET") -> tuple[int, Any]:
    transport = Transport(peer, local)

    async def run() -> tuple[int, Any]:
        request = make_mocked_request(method, path, transport=transport)
        response = await server.handle(request)
        return response.status, json.loads(response.body) if response.body else None

    try:
        return asyncio.run(run())
    finally:
        transport.info["socket"].close()


def filters(value: dict) -> str:
    return urllib.parse.quote(json.dumps(value))


def test_a_task_on_a_worker_inspects_itself_through_the_proxy() -> None:
    """The manager's Engine cannot inspect a container on another node: the proxy answers
    with the task as its container reads on its node."""
    server = proxy(FakeManager())
    for ref in (WORKER_TASK_CONTAINER, WORKER_TASK_CONTAINER[:12], "web.1.webtask"):
        status, document = ask(server, f"/v1.41/containers/{ref}/json")
        assert status == 200, document
        assert document["Id"] == WORKER_TASK_CONTAINER
        assert document["Config"]["Labels"]["link.redis"] == "db"
        assert document["Config"]["Labels"][swarm.SERVICE_NAME_LABEL] == "web"
        assert document["NetworkSettings"]["Networks"]["appnet"]["IPAddress"] == "10.0.1.5"


def test_the_task_reads_the_service_it_links_its_tasks_and_its_image() -> None:
    server = proxy(FakeManager())
    status, found = ask(server, "/v1.41/services/db")
    assert (status, found["ID"]) == (200, DB_SERVICE)
    status, tasks = ask(server, "/v1.41/tasks?filters=" + filters({"service": [DB_SERVICE]}))
    assert (status, [t["ID"] for t in tasks]) == (200, ["dbtask"])
    assert ask(server, "/v1.41/images/redis:7/json")[0] == 200


def test_what_the_task_does_not_link_stays_hidden() -> None:
    server = proxy(FakeManager())
    status, answer = ask(server, "/v1.41/services/cache")
    assert status == 404 and "service cache not found" in answer["message"]
    status, answer = ask(server, "/v1.41/tasks")
    assert status == 403 and "without a service filter" in answer["message"]
    status, answer = ask(server, "/v1.41/tasks?filters=" + filters({"service": ["cache"]}))
    assert status == 403
    assert ask(server, "/v1.41/images/vault:1/json")[0] == 403
    assert ask(server, f"/v1.41/containers/{LOCAL_ID}/json")[0] == 404
    assert ask(server, "/v1.41/services/db/update", method="POST")[0] == 403


def test_a_prefix_the_engine_resolves_to_another_service_reads_as_missing() -> None:
    """``svc`` is a prefix of the linked service's ID, but the Engine may pick another."""
    manager = FakeManager()
    manager.services.reverse()  # the fake answers a prefix with the first it holds: cache
    status, answer = ask(proxy(manager), "/v1.41/services/svc")
    assert status == 404 and "service svc not found" in answer["message"]


def test_an_unknown_peer_is_refused_with_its_address_and_what_to_do() -> None:
    status, answer = ask(proxy(FakeManager()), "/_ping", peer="10.0.1.99")
    assert status == 403
    assert "the caller at 10.0.1.99:40000 is no running task or container on appnet" in \
        answer["message"]
    assert "this proxy serves tasks and containers on the overlay networks it is attached to" \
        in answer["message"]


def test_a_connection_from_off_the_overlay_is_refused() -> None:
    status, answer = ask(proxy(FakeManager()), "/_ping", peer="172.18.0.1", local="172.18.0.3")
    assert status == 403 and "on none of the proxy's overlay networks" in answer["message"]


def test_loopback_is_the_host_refused_unless_allowed() -> None:
    status, answer = ask(proxy(FakeManager()), "/_ping", peer="127.0.0.1", local="127.0.0.1")
    assert status == 403 and "--allow-host" in answer["message"]
    status, _ = ask(proxy(FakeManager(), allow_host=True), "/services/cache",
                    peer="127.0.0.1", local="127.0.0.1")
    assert status == 200


def test_a_local_container_on_the_overlay_is_its_full_document() -> None:
    """Not a task: the Engine inspects it; it links the service cache by label."""
    server = proxy(FakeManager())
    status, document = ask(server, f"/v1.41/containers/{LOCAL_ID}/json", peer="10.0.1.7")
    assert (status, document["Name"]) == (200, "/local-app")
    assert ask(server, "/v1.41/services/cache", peer="10.0.1.7")[0] == 200
    assert ask(server, "/v1.41/services/db", peer="10.0.1.7")[0] == 404


def test_a_container_named_like_the_service_comes_first() -> None:
    """``container.find``'s order: a container named db is the child, not the service."""
    manager = FakeManager()
    manager.containers.append(container("e" * 64, "db", "10.0.1.20"))
    server = proxy(manager)
    assert ask(server, "/v1.41/services/db")[0] == 404
    assert ask(server, "/v1.41/containers/db/json")[0] == 200


def test_a_service_comes_before_an_alias() -> None:
    manager = FakeManager()
    holder = container("e" * 64, "proj-db-1", "10.0.1.20")
    holder["NetworkSettings"]["Networks"]["appnet"]["Aliases"] = ["db"]
    manager.containers.append(holder)
    server = proxy(manager)
    assert ask(server, "/v1.41/services/db")[0] == 200
    assert ask(server, "/v1.41/containers/proj-db-1/json")[0] == 404


def linked_services(server: Proxy) -> list[str]:
    parent = container(LOCAL_ID, "local-app", "10.0.1.7", {"link.db": "db"})
    caller = asyncio.run(server.directory.scopes.scoped(parent, 1))
    return [seen.name for seen in caller.services]


def test_a_resolved_service_is_kept_while_events_flow_and_dropped_by_its_own() -> None:
    manager = FakeManager()
    server = proxy(manager)
    assert linked_services(server) == ["db"]
    asked = len(manager.asked)
    assert linked_services(server) == ["db"]
    assert len(manager.asked) == asked  # cached
    manager.services = [s for s in manager.services if s["Spec"]["Name"] != "db"]
    server.hub.publish(b"{}", {"Type": "service", "Action": "remove",
                               "Actor": {"ID": DB_SERVICE, "Attributes": {"name": "db"}}})
    assert linked_services(server) == []


def test_a_container_taking_the_services_name_takes_its_place() -> None:
    manager = FakeManager()
    server = proxy(manager)
    assert linked_services(server) == ["db"]
    manager.containers.append(container("e" * 64, "db", "10.0.1.20"))
    server.hub.publish(b"{}", {"Type": "container", "Action": "create",
                               "Actor": {"ID": "e" * 64, "Attributes": {"name": "db"}}})
    assert linked_services(server) == []


def test_a_proxy_on_a_worker_passes_on_the_workers_answer_for_services() -> None:
    """A parent on the Unix socket of a proxy on a worker links a service: it gets the
    Engine's 503, so linkinit says what to deploy, not "no container answers"."""
    manager = FakeManager()
    manager.worker = True
    server = proxy(manager)
    parent = container(LOCAL_ID, "local-app", "10.0.1.7", {"link.db": "db"})
    asyncio.run(server.directory.scopes.scoped(parent, 1))
    status, answer = ask(server, "/v1.41/services/db", peer="10.0.1.7")
    assert (status, answer["message"]) == (503, WORKER_503)


def test_inside_a_stack_a_short_name_links_the_stacks_service() -> None:
    """A stack's task links ``db``; the service is ``demo_db``: linkinit asks for ``db``
    (404, so it goes on) then ``demo_db``, which the proxy shows it."""
    manager = FakeManager()
    manager.services = [service(DB_SERVICE, "demo_db"), service(CACHE_SERVICE, "other_db")]
    manager.tasks[0] = task("webtask", "svcweb", WORKER_TASK_CONTAINER, "10.0.1.5",
                            {"link.redis": "db", swarm.STACK_LABEL: "demo"})
    server = proxy(manager)
    assert ask(server, "/v1.41/services/db")[0] == 404
    status, found = ask(server, "/v1.41/services/demo_db")
    assert (status, found["ID"]) == (200, DB_SERVICE)
    assert ask(server, "/v1.41/services/other_db")[0] == 404
