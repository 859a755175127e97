"""Swarm services as children and tasks as parents: what a manager's documents mean.

Pure: every function takes the Engine's documents (plain dicts) and touches no socket. A
service is not a container, but in a link it plays one: ``service_document`` shapes a
service and its tasks like a container's inspect document (an address on each network,
exposed ports, environment, a state), so readiness, the variables and ``/etc/hosts`` read
it as they read a container, and ``task_document`` does the same for a task seen from a
manager (a parent on another node, as the proxy sees it).

Facts, as Docker 20.10 to 29 show them:

- Only managers answer ``/services`` and ``/tasks``. A worker's Engine says 503 "This node is
  not a swarm manager. Worker nodes can't be used to view or modify cluster state..."; an
  Engine outside any swarm says 503 "This node is not a swarm manager. Use "docker swarm
  init" or "docker swarm join"...".
- A service's address is its virtual IP on each of its networks (``Endpoint.VirtualIPs``,
  ``10.0.1.2/24``), as its name resolves in DNS. With ``--endpoint-mode dnsrr`` it has none:
  the name resolves to every running task in turn. linkinit then exports the address of one
  running task, the lowest slot's, so that the variables name a container that answers now;
  follow mode moves them when that task goes.
- Swarm reports a task ``running`` only once its healthcheck (if any) has passed: moby's
  executor waits for ``health_status: healthy`` before it binds the task to the service's
  address. So "a task running" already means "a task healthy" where there is a check.
- The Engine emits service events (create, update, remove) but no task events (moby#37403):
  a task that starts, fails or is replaced is seen only by asking ``/tasks`` again.
- A task's container carries the labels of ``--container-label`` (``labels:`` in a stack
  file), not the service's own (``--label``, ``deploy.labels``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Mapping, Optional, Sequence

SERVICE_KEY = "LinkinitService"  # marks a service shaped as a container (no Engine uses it)
SERVICE_NAME_LABEL = "com.docker.swarm.service.name"
TASK_ID_LABEL = "com.docker.swarm.task.id"
STACK_LABEL = "com.docker.stack.namespace"  # on a stack's services and their containers
INGRESS = "ingress"  # the routing mesh's network: published ports, not service to service

# How a 503 says why this Engine cannot answer for services.
WORKER = "worker"  # a swarm worker: a manager could answer
NOT_IN_SWARM = "inactive"  # no swarm at all: there are no services to find


def manager_refusal(status: int, message: str) -> Optional[str]:
    """WORKER or NOT_IN_SWARM for the Engine's "not a swarm manager" answer, else None."""
    if status != 503 or "not a swarm manager" not in message:
        return None
    return WORKER if "Worker nodes" in message else NOT_IN_SWARM


def is_service(document: Mapping[str, Any]) -> bool:
    """A service shaped by ``service_document`` (not a container)."""
    return SERVICE_KEY in document


def is_task(container: Mapping[str, Any]) -> bool:
    """A container that runs a swarm task. Its network aliases are its service's names: a
    link reaches the service as a service (its address, all its tasks), never one task
    through an alias."""
    return bool(((container.get("Config") or {}).get("Labels") or {}).get(TASK_ID_LABEL))


def service_references(reference: str, parent: Mapping[str, Any]) -> list[str]:
    """The service names a reference may mean for this parent: as written, then inside the
    parent's stack (``docker stack deploy`` names a stack's services ``<stack>_<name>`` and
    its tasks call each other by ``<name>``)."""
    labels = (parent.get("Config") or {}).get("Labels") or {}
    stack = labels.get(STACK_LABEL)
    if stack and not reference.startswith(f"{stack}_"):
        return [reference, f"{stack}_{reference}"]
    return [reference]


# -- tasks ----------------------------------------------------------------------------------


def _status(task: Mapping[str, Any]) -> Mapping[str, Any]:
    return task.get("Status") or {}


def task_state(task: Mapping[str, Any]) -> str:
    """The task's reported state: new, pending, assigned, preparing, starting, running,
    complete, failed, shutdown, rejected, orphaned, remove."""
    return str(_status(task).get("State") or "unknown")


def task_name(service_name: str, task: Mapping[str, Any]) -> str:
    """As ``docker service ps`` names it: ``db.1``, or ``db.<node>`` for a global service."""
    slot = task.get("Slot") or str(task.get("NodeID", ""))[:12]
    return f"{service_name}.{slot}"


def current_tasks(tasks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The tasks swarm wants running (older ones of a slot are history), lowest slot first,
    then the newest."""
    wanted = [t for t in tasks if t.get("DesiredState") in ("running", "ready")]
    newest_first = sorted(wanted, key=lambda t: str(t.get("CreatedAt", "")), reverse=True)
    return sorted(newest_first, key=lambda t: int(t.get("Slot") or 0))


def running_tasks(tasks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [t for t in current_tasks(tasks) if task_state(t) == "running"]


def _task_line(service_name: str, task: Mapping[str, Any]) -> str:
    status = _status(task)
    why = status.get("Err") or ""
    return f"{task_name(service_name, task)} {task_state(task)}" + (f" ({why})" if why else "")


def tasks_summary(service_name: str, tasks: Sequence[Mapping[str, Any]]) -> str:
    """The service's tasks in words, for progress and timeout messages: the ones wanted
    running, then the newest that failed and why."""
    current = current_tasks(tasks)
    lines = [_task_line(service_name, t) for t in current]
    failed = [t for t in tasks if task_state(t) in ("failed", "rejected")]
    if failed:
        last = max(failed, key=lambda t: str(t.get("UpdatedAt", "")))
        lines.append("last failure: " + _task_line(service_name, last))
    return ", ".join(lines) if lines else "no task"


def _networks(task: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(network ID, network name or INGRESS, addresses as given, with prefix length) of each
    of the task's network attachments: the one walk over them."""
    found = []
    for attachment in task.get("NetworksAttachments") or []:
        network = attachment.get("Network") or {}
        spec = network.get("Spec") or {}
        ingress = bool(spec.get("Ingress")) or spec.get("Name") == INGRESS
        found.append((str(network.get("ID", "")), INGRESS if ingress else str(spec.get("Name", "")),
                      [str(text) for text in attachment.get("Addresses") or []]))
    return found


def _attachments(task: Mapping[str, Any], ingress: bool = False) -> list[tuple[str, str, str]]:
    """(network ID, network name, IPv4 address without its prefix length) of each of the
    task's networks, the ingress network left out unless asked for (then named INGRESS)."""
    return [(network_id, name, "" if name == INGRESS else (addresses or [""])[0].split("/")[0])
            for network_id, name, addresses in _networks(task)
            if ingress or name != INGRESS]


def task_addresses(task: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(network ID, address as given) of every address of the task's networks, ingress left
    out: how a manager tells which task a connection from an overlay network comes from."""
    return [(network_id, text) for network_id, name, addresses in _networks(task)
            if name != INGRESS for text in addresses]


# -- a service shaped as a container ------------------------------------------------------


def container_spec(service: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}


def endpoint_mode(service: Mapping[str, Any]) -> str:
    return str(((service.get("Spec") or {}).get("EndpointSpec") or {}).get("Mode") or "vip")


def service_image(service: Mapping[str, Any]) -> str:
    """The service's image as the local Engine may know it: without the digest swarm pins
    when it can reach a registry, if a tag says which image it is."""
    return local_image(str(container_spec(service).get("Image") or ""))


def local_image(image: str) -> str:
    """``redis:7@sha256:...`` -> ``redis:7``; an image named by its digest alone is kept."""
    name, _, _ = image.partition("@")
    return name if ":" in name.rsplit("/", 1)[-1] else image


def target_ports(service: Mapping[str, Any]) -> dict[str, dict]:
    """``{"6379/tcp": {}}`` for each target port the service publishes (the ports its tasks
    listen on), in the shape of a container's ``Config.ExposedPorts``."""
    spec_ports = ((service.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports") or []
    ports = spec_ports or (service.get("Endpoint") or {}).get("Ports") or []
    return {f"{p['TargetPort']}/{p.get('Protocol') or 'tcp'}": {}
            for p in ports if p.get("TargetPort")}


def _network_names(tasks: Sequence[Mapping[str, Any]],
                   known: Mapping[str, str]) -> dict[str, str]:
    """Network ID -> name, from the tasks' attachments and the IDs the caller knows."""
    names = dict(known)
    for task in tasks:
        for network_id, name, _ in _attachments(task, ingress=True):
            names.setdefault(network_id, name)
    return names


def _endpoint(network_id: str, address: str, service_name: str) -> dict:
    """One network's entry of ``NetworkSettings.Networks``."""
    return {"NetworkID": network_id, "IPAddress": address, "Aliases": [service_name]}


def _task_endpoints(task: Mapping[str, Any], service_name: str) -> dict[str, dict]:
    """A task's addresses as ``NetworkSettings.Networks`` (ingress left out)."""
    return {name or network_id: _endpoint(network_id, address, service_name)
            for network_id, name, address in _attachments(task)}


def _virtual_ips(service: Mapping[str, Any], names: Mapping[str, str],
                 running: bool) -> dict[str, dict]:
    """A vip service's endpoint on each network but the ingress ("" while no task runs)."""
    service_name = str((service.get("Spec") or {}).get("Name") or "")
    networks: dict[str, dict] = {}
    for vip in (service.get("Endpoint") or {}).get("VirtualIPs") or []:
        network_id = str(vip.get("NetworkID") or "")
        name = names.get(network_id, network_id)
        if name != INGRESS:
            address = str(vip.get("Addr") or "").split("/")[0]
            networks[name] = _endpoint(network_id, address if running else "", service_name)
    return networks


def _addresses(service: Mapping[str, Any], running: Sequence[Mapping[str, Any]],
               names: Mapping[str, str]) -> dict[str, dict]:
    """The service's endpoint on each network, as ``NetworkSettings.Networks``: its virtual
    IP, or (dnsrr) the first running task's address."""
    if endpoint_mode(service) != "dnsrr":
        return _virtual_ips(service, names, bool(running))
    service_name = str((service.get("Spec") or {}).get("Name") or "")
    return _task_endpoints(running[0], service_name) if running else {}


def _config(service: Mapping[str, Any], image: Optional[Mapping[str, Any]]) -> dict:
    """``Config`` of the service shaped as a container: its container spec's environment,
    labels and image; its target ports, else those its image exposes; a hostname unless a
    template (``{{.Task.Slot}}``) makes it one per task."""
    spec = container_spec(service)
    image_ports = ((image or {}).get("Config") or {}).get("ExposedPorts") or {}
    hostname = str(spec.get("Hostname") or "")
    return {
        "Env": list(spec.get("Env") or []),
        "ExposedPorts": target_ports(service) or dict(image_ports),
        "Hostname": "" if "{{" in hostname else hostname,
        "Image": str(spec.get("Image") or ""),
        "Labels": dict(spec.get("Labels") or {}),
    }


def service_document(
    service: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
    image: Optional[Mapping[str, Any]] = None,
    network_names: Optional[Mapping[str, str]] = None,
) -> dict:
    """The service as a container's inspect document, for a link to it.

    ``tasks``: the service's tasks (``/tasks?filters={"service":[id]}``); ``image``: its
    image's inspect document where the Engine has it (the exposed ports when the service
    publishes none); ``network_names``: network ID -> name, e.g. from the parent's networks
    (a task's attachments name its networks too). The address on each network is empty
    while no task runs, as a stopped container's is.
    """
    name = str((service.get("Spec") or {}).get("Name") or "")
    running = running_tasks(tasks)
    names = _network_names(tasks, network_names or {})
    return {
        "Id": str(service.get("ID") or ""),
        "Name": "/" + name,
        "Config": _config(service, image),
        "State": {"Status": "running" if running else "no task running",
                  "Running": bool(running)},
        "NetworkSettings": {"Networks": _addresses(service, running, names)},
        SERVICE_KEY: {"Mode": endpoint_mode(service), "Tasks": tasks_summary(name, tasks),
                      "Running": len(running), "Wanted": len(current_tasks(tasks))},
    }


def service_state(document: Mapping[str, Any]) -> tuple[str, str]:
    """(state word, detail) of a service shaped by ``service_document`` that has no task
    running: what progress lines and the timeout message say."""
    facts = document.get(SERVICE_KEY) or {}
    name = str(document.get("Name") or "").lstrip("/")
    tasks = facts.get("Tasks") or "no task"
    return (f"no task running ({tasks})",
            f"service {name}: no task running; tasks: {tasks}")


# -- a task shaped as a container (a parent on another node, seen from a manager) -----------


def _task_hostname(spec: Mapping[str, Any], container_id: str) -> str:
    """The spec's hostname, else Docker's default (the short ID); "" for a template
    (``{{.Node.Hostname}}``), which only the task's node fills in."""
    hostname = str(spec.get("Hostname") or "") or container_id[:12]
    return "" if "{{" in hostname else hostname


def _task_config(task: Mapping[str, Any], service_name: str, container_id: str) -> dict:
    """``Config`` of a task's container: what its service gives (``--entrypoint`` is
    ContainerSpec.Command, the arguments are Args), and swarm's two labels."""
    spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
    labels = dict(spec.get("Labels") or {})
    labels.update({SERVICE_NAME_LABEL: service_name, TASK_ID_LABEL: str(task.get("ID", ""))})
    return {"Env": list(spec.get("Env") or []), "Labels": labels,
            "Hostname": _task_hostname(spec, container_id),
            "Image": str(spec.get("Image") or ""),
            "Entrypoint": list(spec.get("Command") or []) or None,
            "Cmd": list(spec.get("Args") or []) or None}


def task_document(task: Mapping[str, Any], service_name: str) -> dict:
    """A task as its container's inspect document would show it on its own node: the ID,
    name, labels, environment, command and addresses a parent's links are read from. Only
    what the service gives is known here, not what its image adds (environment, entrypoint,
    command)."""
    container_id = str((_status(task).get("ContainerStatus") or {}).get("ContainerID") or "")
    running = task_state(task) == "running"
    slot = task.get("Slot") or task.get("NodeID", "")
    return {
        "Id": container_id,
        "Name": f"/{service_name}.{slot}.{task.get('ID', '')}",
        "Config": _task_config(task, service_name, container_id),
        "State": {"Status": "running" if running else task_state(task), "Running": running},
        "NetworkSettings": {"Networks": _task_endpoints(task, service_name)},
    }


SELF_PREFIX = 12  # the shortest ID prefix a task's own container answers to (its hostname's)


def task_answers_to(document: Mapping[str, Any], reference: str) -> bool:
    """Whether ``reference`` names the task's container (``task_document``) the ways its
    own linkinit looks for itself: the full ID (mountinfo, cgroup), an ID prefix of 12 or
    more (the default hostname), its name, or the hostname its spec gives."""
    container_id = str(document.get("Id") or "")
    name = str(document.get("Name") or "").lstrip("/")
    hostname = str((document.get("Config") or {}).get("Hostname") or "")
    return bool(container_id) and bool(reference) and (
        reference in (container_id, hostname)
        or (len(reference) >= SELF_PREFIX and container_id.startswith(reference))
        or reference.lstrip("/") == name
    )
