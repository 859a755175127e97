"""A real Docker swarm for end-to-end tests: this host's Engine as the manager, and one worker,
a node container running its own dockerd (the image of scripts/build-swarm-node).

What this machine allows (Docker 20.10, Debian 12, found by trial; the code relies on it):

- ``--privileged`` fails where CAP_SYS_RESOURCE is withheld: the node gets every capability
  but that one, no seccomp or AppArmor profile, unmasked ``/proc`` and ``/sys``, every device
  and the host's cgroup tree (``NODE_RUN_OPTIONS``); its dockerd answers within a second.
- The manager advertises (and listens on) its address on the default bridge (that network's
  gateway, read from the bridge interface when the Engine's inspect leaves it out): with the
  machine's own address, overlay (VXLAN) traffic is dropped without a word.
- The kernel has no IPVS: a service's virtual IP carries no traffic. Tests reach a task at
  its own address (``task_address``) or make ``--endpoint-mode dnsrr`` services.
- A worker's Engine answers 503 to ``/services`` and ``/tasks``: only the manager knows them.
  Inside the node its own dockerd is at ``/run/docker.sock``.
- Leaving a swarm leaves the ``docker_gwbridge`` network behind on the host.
- The node can pull nothing: images reach it by ``docker save | docker exec -i NODE docker load``.

A swarm the tests did not make is never touched: ``open`` refuses (``ForeignSwarm``) when
this host's Engine is already in one. The swarm the tests make carries the label
``linkinit.test`` in its spec, so a session that crashed is cleaned up by the next. Two
sessions must not share a machine's swarm: hold ``SWARM_LOCK`` (``machine_lock``) around it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any, Callable, Optional

import docker

from tests.support.processes import wait_for

NODE_IMAGE = os.environ.get("LINKINIT_SWARM_NODE_IMAGE", "linkinit-swarm-node:bookworm")
TEST_LABEL = "linkinit.test"
ROLE_LABEL = "linkinit.test.swarm"  # what a swarm test's object is: the swarm, the node
SWARM_LOCK = "/run/lock/linkinit-swarm-test.lock"
GATEWAY_BRIDGE = "docker_gwbridge"
SWARM_PORT = 2377
NODE_API = "http://node/v1.41"
# The node container: everything --privileged gives but CAP_SYS_RESOURCE, which is withheld
# here; /run is its own (dockerd's and containerd's sockets and pid files).
NODE_RUN_OPTIONS = (
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule", "a *:* rwm",
    "--tmpfs", "/run",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
)
COMMAND_TIMEOUT = 60  # seconds for one docker command
LOAD_TIMEOUT = 300  # seconds for one image's save | load into the node
# Task states from which a task never runs (moby's api/types/swarm/task.go).
ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}


BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def bridge_gateway(network: dict, interface_addresses: list[str]) -> str:
    """The host's address on a bridge network, from what is really there.

    ``IPAM.Config[].Gateway`` when the Engine fills it in; Docker 20.10 leaves it out when
    dockerd created the bridge itself (a fresh machine) and fills it in after a restart. Then
    the bridge interface's own IPv4 address inside the subnet, and, if the interface shows
    none, the subnet's first host (where dockerd puts its gateway).
    """
    configs = network.get("IPAM", {}).get("Config") or []
    for entry in configs:
        if entry.get("Gateway"):
            return str(entry["Gateway"]).split("/")[0]
    subnets = [ipaddress.ip_network(e["Subnet"], strict=False) for e in configs
               if e.get("Subnet") and ":" not in e["Subnet"]]
    for address in interface_addresses:
        if any(ipaddress.ip_address(address) in subnet for subnet in subnets):
            return address
    if subnets:
        return str(next(subnets[0].hosts()))
    raise AssertionError(f"the bridge network {network.get('Name', '?')} has no IPv4 subnet, "
                         "so no address of the host on it")


class ForeignSwarm(Exception):
    """This host's Engine is in a swarm the tests did not make; nothing was changed."""


class Swarm:
    """Setup (``open``, or ``with Swarm(client) as swarm``) and teardown (``close``) of a
    two-node swarm; helpers to load images, run docker on the node, make services and find
    their tasks. ``timings`` holds the seconds setup, each image load and teardown took."""

    def __init__(self, client: Any, token: Optional[str] = None,
                 node_image: str = NODE_IMAGE) -> None:
        self.client = client  # the host's docker SDK client
        self.api = client.api
        token = token or uuid.uuid4().hex[:12]
        self.node_image = node_image
        self.node_name = f"lt-swarm-node-{token}"  # the container, its hostname, its volume
        self.volume = self.node_name
        self.network = f"lt-swarm-net-{token}"  # attachable overlay every service joins
        self.network_id = ""
        self.manager_address = ""  # the host on the default bridge, where the node joins
        self.manager_id = ""
        self.node_id = ""  # the worker's swarm node ID
        self.timings: dict[str, float] = {}
        self._made_swarm = False

    # --- setup -----------------------------------------------------------------------

    def __enter__(self) -> Swarm:
        try:
            self.open()
        except BaseException:
            for problem in self.close():  # secondary to the error that stopped setup
                print(f"swarm teardown after a failed setup: {problem}", file=sys.stderr)
            raise
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        problems = self.close()
        if problems and kind is None:
            raise AssertionError("swarm teardown: " + "; ".join(problems))

    def open(self) -> None:
        """Manager, node container, worker joined and Ready, overlay network."""
        started = time.monotonic()
        self._clear_leftovers()
        self.manager_address = self._bridge_gateway()
        self._made_swarm = True  # inactive before (checked): from here on it is ours to undo
        spec = self.api.create_swarm_spec(labels={TEST_LABEL: "1"})
        self.api.init_swarm(advertise_addr=self.manager_address, swarm_spec=spec,
                            listen_addr=f"{self.manager_address}:{SWARM_PORT}")
        self.manager_id = self.api.info()["Swarm"]["NodeID"]
        self._start_node()
        token = self.api.inspect_swarm()["JoinTokens"]["Worker"]
        self.node("swarm", "join", "--token", token, f"{self.manager_address}:{SWARM_PORT}")
        self.node_id = poll(self._worker_ready, 60, "the worker Ready on the manager")
        self.network_id = self.api.create_network(
            self.network, driver="overlay", attachable=True, labels={TEST_LABEL: "1"})["Id"]
        self.timings["setup"] = time.monotonic() - started

    def _clear_leftovers(self) -> None:
        """Refuse a foreign swarm; undo what a crashed session of ours left (under the lock)."""
        for container in self.client.containers.list(
                all=True, filters={"label": f"{ROLE_LABEL}=node"}):
            container.remove(force=True)
        for volume in self.client.volumes.list(filters={"label": f"{ROLE_LABEL}=node"}):
            volume.remove(force=True)
        state = self.api.info()["Swarm"]
        if state.get("LocalNodeState", "inactive") == "inactive":
            return
        ours = state.get("ControlAvailable") and TEST_LABEL in (
            self.api.inspect_swarm()["Spec"].get("Labels") or {})
        if not ours:
            raise ForeignSwarm(
                f"this host's Docker Engine is already in a swarm the tests did not make "
                f"(node {state.get('NodeID') or '?'}, state {state.get('LocalNodeState')}): "
                "the swarm tests make their own swarm and leave it at the end, so they do "
                "not run here; run them on a machine outside any swarm, or leave this one "
                "yourself (docker swarm leave --force)")
        self.api.leave_swarm(force=True)
        self._remove_gateway_bridge()

    def _bridge_gateway(self) -> str:
        """The host's address on the default bridge (172.17.0.1 usually)."""
        import psutil

        network = self.api.inspect_network("bridge")
        interface = (network.get("Options") or {}).get(BRIDGE_NAME_OPTION, "docker0")
        addresses = [a.address for a in psutil.net_if_addrs().get(interface, [])
                     if a.family == socket.AF_INET]
        return bridge_gateway(network, addresses)

    def _start_node(self) -> None:
        labels = {TEST_LABEL: "1", ROLE_LABEL: "node"}
        self.client.volumes.create(self.volume, labels=labels)
        label_options = [option for key, value in labels.items()
                         for option in ("--label", f"{key}={value}")]
        host_docker("run", "-d", "--name", self.node_name, "--hostname", self.node_name,
               *label_options, *NODE_RUN_OPTIONS, "-v", f"{self.volume}:/var/lib/docker",
               self.node_image)
        poll(self._node_engine_answers, 30, "the node's dockerd answering")

    def _node_engine_answers(self) -> bool:
        answer = self.node("version", "--format", "{{.Server.Version}}", check=False,
                           timeout=10)
        if answer.returncode == 0:
            return True
        state = self.api.inspect_container(self.node_name)["State"]
        if not state["Running"]:
            logs = self.api.logs(self.node_name, tail=20).decode(errors="replace")
            raise AssertionError(f"the node container exited ({state['ExitCode']}): {logs}")
        return False

    def _worker_ready(self) -> str:
        for node in self.api.nodes(filters={"role": "worker"}):
            if (node["Description"].get("Hostname") == self.node_name
                    and node["Status"]["State"] == "ready"):
                return str(node["ID"])
        return ""

    # --- using it --------------------------------------------------------------------

    def node(self, *args: str, check: bool = True,
             timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """``docker ARGS`` on the worker's own Engine; stdout and stderr as text."""
        return host_docker("exec", self.node_name, "docker", *args, check=check, timeout=timeout)

    def node_get(self, path: str) -> tuple[int, str]:
        """GET ``path`` (``/services``, ``/info``...) on the worker's Engine: status, body."""
        answer = host_docker("exec", self.node_name, "curl", "-sS", "--max-time", "10",
                        "--unix-socket", "/run/docker.sock", "-w", "\n%{http_code}",
                        NODE_API + path)
        body, _, status = answer.stdout.rpartition("\n")
        return int(status), body

    def load(self, image: str) -> None:
        """The host's ``image`` into the node, unless it has that very image already."""
        wanted = self.api.inspect_image(image)["Id"]
        have = self.node("image", "inspect", "-f", "{{.Id}}", image, check=False)
        if have.returncode == 0 and have.stdout.strip() == wanted:
            return
        started = time.monotonic()
        saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        try:
            loaded = subprocess.run(
                ["docker", "exec", "-i", self.node_name, "docker", "load", "-q"],
                stdin=saved.stdout, capture_output=True, text=True, timeout=LOAD_TIMEOUT)
        finally:
            if saved.stdout is not None:
                saved.stdout.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                saved.wait(timeout=10)
            if saved.poll() is None:
                saved.kill()
                saved.wait(timeout=10)
        assert loaded.returncode == 0 and saved.returncode == 0, (
            f"loading {image} into the node: {loaded.stderr.strip()}")
        self.timings[f"load {image}"] = time.monotonic() - started

    def create_service(self, name: str, *args: str) -> str:
        """``docker service create`` on the manager, detached, labelled, on the overlay
        network, with the image as the node has it (no registry to resolve it against).
        ``args`` are more options, then the image and its command. Returns the ID."""
        made = host_docker("service", "create", "--detach", "--quiet", "--no-resolve-image",
                      "--name", name, "--label", f"{TEST_LABEL}=1",
                      "--network", self.network, *args)
        return made.stdout.strip()

    def remove_service(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_service(name)

    def service(self, name: str) -> dict:
        """The manager's ``GET /services/<name>``."""
        return dict(self.api.inspect_service(name))

    def tasks(self, service: str) -> list[dict]:
        """The manager's ``GET /tasks?filters={"service": [service]}``."""
        return list(self.api.tasks(filters={"service": service}))

    def running_task(self, service: str, timeout: float = 60) -> dict:
        """The service's running task, once there is one; fails at once on a task error."""

        def running() -> Optional[dict]:
            for task in self.tasks(service):
                status = task["Status"]
                if status.get("Err") and task["DesiredState"] == "running":
                    raise AssertionError(f"task of {service}: {status['Err']}")
                if status["State"] == "running" and task["DesiredState"] == "running":
                    return task
            return None

        return poll(running, timeout, f"a running task of {service}")

    def task_address(self, task: dict, network: Optional[str] = None) -> str:
        """The task's own IP on ``network`` (the overlay network unless told)."""
        wanted = network or self.network
        for attachment in task.get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == wanted and attachment["Addresses"]:
                return str(attachment["Addresses"][0]).split("/")[0]
        raise AssertionError(f"task {task['ID']} has no address on {wanted}")

    def task_container(self, task: dict) -> dict:
        """The inspect document of the task's container, from the Engine of the node."""
        container = task["Status"]["ContainerStatus"]["ContainerID"]
        return dict(json.loads(self.node("inspect", "--type", "container",
                                         container).stdout)[0])

    # --- teardown --------------------------------------------------------------------

    def close(self) -> list[str]:
        """Undo everything, each step even when an earlier one failed; what failed is
        returned. The swarm is left only if this object made it."""
        started = time.monotonic()
        problems: list[str] = []

        def step(what: str, action: Callable[[], Any]) -> None:
            try:
                action()
            except Exception as error:
                problems.append(f"{what}: {error}")

        if self._made_swarm:
            step("removing the services", self._remove_services)
            step("removing containers on the overlay network", self._remove_attached)
            step("removing the overlay network", self._remove_network)
        step("the node leaving the swarm", self._node_leaves)
        step("removing the node container", self._remove_node)
        step("removing the node's volume", self._remove_volume)
        if self._made_swarm:
            step("the host leaving the swarm", self._host_leaves)
            step(f"removing {GATEWAY_BRIDGE}", self._remove_gateway_bridge)
            self._made_swarm = False
        self.timings["teardown"] = time.monotonic() - started
        return problems

    def _remove_services(self) -> None:
        for service in self.api.services():
            self.api.remove_service(service["ID"])

    def _remove_attached(self) -> None:
        """The tests' containers on the host still on the overlay network."""
        if not self.client.networks.list(names=[self.network]):
            return
        for container in self.client.containers.list(
                all=True, filters={"network": self.network, "label": TEST_LABEL}):
            container.remove(force=True)

    def _remove_network(self) -> None:
        """Refused while the removed services' tasks still hold it: asked again."""
        self._remove_network_named(self.network, 30)

    def _node_leaves(self) -> None:
        """The node's containers first (tasks of removed services, which a leave would
        otherwise wait for through their stop grace period), then the swarm."""
        if not self._node_exists(running=True):
            return
        leftover = self.node("ps", "-aq", check=False).stdout.split()
        if leftover:
            self.node("rm", "-f", *leftover, check=False)
        left = self.node("swarm", "leave", "--force", check=False, timeout=30)
        if left.returncode != 0 and "not part of a swarm" not in left.stderr:
            raise AssertionError(left.stderr.strip() or f"exit status {left.returncode}")

    def _node_exists(self, running: bool = False) -> bool:
        try:
            state = self.api.inspect_container(self.node_name)["State"]
        except docker.errors.NotFound:
            return False
        return bool(state["Running"]) or not running

    def _remove_node(self) -> None:
        if self._node_exists():
            self.api.remove_container(self.node_name, force=True)

    def _remove_volume(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_volume(self.volume, force=True)

    def _host_leaves(self) -> None:
        if self.api.info()["Swarm"].get("LocalNodeState", "inactive") != "inactive":
            self.api.leave_swarm(force=True)

    def _remove_gateway_bridge(self) -> None:
        """Left behind by a leave; refused until the ingress sandbox is gone: asked again."""
        self._remove_network_named(GATEWAY_BRIDGE, 20)

    def _disconnect_all(self, network_id: str) -> None:
        """Force every endpoint the host still lists off the network (a container whose start
        failed while joining it can leave one behind)."""
        with contextlib.suppress(Exception):
            for holder in (self.api.inspect_network(network_id).get("Containers") or {}):
                with contextlib.suppress(Exception):
                    self.api.disconnect_container_from_network(holder, network_id, force=True)

    def _remove_network_named(self, name: str, timeout: float) -> None:
        """Remove the network of that exact name, asking again (the Engine refuses while
        something still holds it) until it is gone, at most ``timeout`` seconds."""

        def removed() -> bool:
            found = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
            if not found:
                return True
            with contextlib.suppress(Exception):
                self.api.remove_network(found[0]["Id"])
                return False
            self._disconnect_all(found[0]["Id"])  # an attachment a failed start left
            return False

        poll(removed, timeout, f"{name} removed")

def host_docker(*args: str, check: bool = True,
           timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """``docker ARGS`` on the host; fails with its stderr unless ``check`` is false."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done


def poll(check: Callable[[], Any], timeout: float, what: str, pause: float = 0.25) -> Any:
    """``wait_for`` for checks that cost a request: a pause after each miss, so the
    attempts are bounded (``timeout / pause``) as well as the time."""

    def attempt() -> Any:
        value = check()
        if not value:
            time.sleep(pause)
        return value

    return wait_for(attempt, timeout, what)


@contextlib.contextmanager
def machine_lock(path: str = SWARM_LOCK, timeout: float = 600) -> Any:
    """One swarm test session at a time on a machine (its Engine has one swarm state)."""
    import fcntl

    with open(path, "w") as lock:

        def taken() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        poll(taken, timeout, f"the lock {path}", pause=1)
        yield
