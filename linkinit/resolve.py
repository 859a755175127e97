"""Link specs + the Engine -> endpoints, once every child is ready.

Finds the parent (this container), finds each child by name, ID, ID prefix or network
alias, and waits until each is ready in the sense its ``wait`` mode names. Waiting follows
the Engine's event stream, so readiness is noticed when it happens; TCP probes back off;
an Engine that is not up yet is retried (tenacity) until the deadline.
"""

from __future__ import annotations

import re
import socket
import time
from collections import namedtuple

from .declare import LinkSpec
from .engine import MOUNT_HINT, Engine, EngineError
from .envvars import Endpoint, exposed_ports
from .errors import EngineUnreachable, NotReady, ResolveError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar

    Report = Callable[[str], None]
    Document = TypeVar("Document", bound=Mapping[str, Any])  # an inspect document

_CONTAINER_ID = r"([0-9a-f]{64})"
_MOUNTINFO_ID = re.compile(r"/containers/" + _CONTAINER_ID + r"/")
_CGROUP_ID = re.compile(r"(?:docker[-/]|/)" + _CONTAINER_ID + r"(?:\.scope)?\s*$", re.M)
_WAKING_EVENTS = [
    "create", "start", "restart", "die", "stop", "kill", "destroy", "rename",
    "pause", "unpause", "health_status", "connect", "disconnect",
]
_PROBE_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)  # while the Engine does not answer
# While a running child's port is closed: a refused connect costs next to nothing and no
# Engine request (the child's document is reused until an event says it changed), so stay
# close enough to notice the port within a few tens of milliseconds of its opening.
_PORT_PROBE_DELAYS = (0.01, 0.02, 0.05)


# -- finding containers -----------------------------------------------------------------


def container_id_from_mountinfo(text: str) -> Optional[str]:
    """Docker bind-mounts .../containers/<id>/hostname: it names us even under cgroup v2."""
    match = _MOUNTINFO_ID.search(text)
    return match.group(1) if match else None


def container_id_from_cgroup(text: str) -> Optional[str]:
    """Under cgroup v1 (or a host cgroup namespace) the path ends in the container ID."""
    match = _CGROUP_ID.search(text)
    return match.group(1) if match else None


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return ""


def self_references() -> list[tuple[str, str]]:
    """Where to look for this container, in DESIGN order, as (reference, how we got it)."""
    references: list[tuple[str, str]] = []
    for found, how in (
        (container_id_from_mountinfo(_read("/proc/self/mountinfo")), "/proc/self/mountinfo"),
        (container_id_from_cgroup(_read("/proc/self/cgroup")), "/proc/self/cgroup"),
        (socket.gethostname(), "the hostname"),
    ):
        if found and found not in (ref for ref, _ in references):
            references.append((found, how))
    return references


def find_parent(engine: Engine, environ: Mapping[str, str]) -> dict:
    """This container's inspect document: the labels, name and networks links start from."""
    named = environ.get("LINKINIT_CONTAINER")
    if named:
        container = engine.inspect_container(named)
        if container is None:
            raise ResolveError(f"LINKINIT_CONTAINER={named} names no container")
        return container
    tried = self_references()
    for reference, _ in tried:
        container = engine.inspect_container(reference)
        if container is not None:
            return container
    places = ", ".join(f"{ref} from {how}" for ref, how in tried) or "nothing"
    raise ResolveError(
        f"cannot find this container in the Docker Engine (tried {places}); "
        "set LINKINIT_CONTAINER to its name or ID"
    )


def networks_of(container: Mapping[str, Any]) -> dict[str, dict]:
    return (container.get("NetworkSettings") or {}).get("Networks") or {}


def name_of(container: dict) -> str:
    return str(container.get("Name", "")).lstrip("/")


def find_child(engine: Engine, spec: LinkSpec, parent: dict) -> Optional[dict]:
    """The child a reference names: exact name, ID or unique prefix first, then a network alias.

    A name is unique on a host, so it wins; an alias on the parent's networks (a compose
    service name) is looked up only when no container has that name or ID. Two containers
    with one alias is an ambiguity the user must settle.
    """
    try:
        container = engine.inspect_container(spec.child)
    except EngineError as error:
        raise ResolveError(
            f"{spec.origin}: child {spec.child!r} is ambiguous: {error}; "
            "use the full name or ID"
        ) from None
    if container is not None:
        return container
    return find_by_alias(engine, spec, parent)


def alias_networks(container: Mapping[str, Any]) -> list[str]:
    """The container's networks that can carry aliases (not the default bridge, host, none)."""
    return [n for n in networks_of(container) if n not in ("host", "none", "bridge")]


def holders_of_alias(
    reference: str, parent: Mapping[str, Any], containers: Iterable[Document]
) -> list[Document]:
    """The containers, other than the parent, holding ``reference`` as a network alias on a
    network the parent is on (a compose service name). Pure: ``ls`` uses it too."""
    shared = alias_networks(parent)
    return [
        container for container in containers
        if container.get("Id") != parent.get("Id") and any(
            reference in ((networks_of(container).get(n) or {}).get("Aliases") or [])
            for n in shared
        )
    ]


def find_by_alias(engine: Engine, spec: LinkSpec, parent: dict) -> Optional[dict]:
    """Inspect the containers on the parent's alias-carrying networks (the list API does not
    show aliases) and keep the one holding the alias."""
    candidates: dict[str, dict] = {}
    for network in alias_networks(parent):
        for summary in engine.list_containers({"network": [network]}):
            if summary["Id"] in candidates or summary["Id"] == parent.get("Id"):
                continue
            container = engine.inspect_container(summary["Id"])
            if container is not None:
                candidates[summary["Id"]] = container
    matches = holders_of_alias(spec.child, parent, candidates.values())
    if len(matches) > 1:
        names = ", ".join(sorted(name_of(c) for c in matches))
        raise ResolveError(
            f"{spec.origin}: child {spec.child!r} is ambiguous: the network alias "
            f"is held by {names}; link one of them by name"
        )
    return matches[0] if matches else None


def shared_address(spec: LinkSpec, parent: dict, child: dict) -> str:
    """The child's IP on a network both share (the first by name that has an address)."""
    parent_networks, child_networks = networks_of(parent), networks_of(child)
    if set(parent_networks) == {"host"}:
        candidates = sorted(child_networks)  # the host reaches every bridge network
    else:
        candidates = sorted(set(parent_networks) & set(child_networks))
    for network in candidates:
        address = (child_networks[network] or {}).get("IPAddress")
        if address:
            return address
    if candidates:
        return ""  # shared, but no address yet: the child is not running
    child_name, parent_name = name_of(child), name_of(parent)
    raise ResolveError(
        f"link {spec.alias}: child {child_name} shares no network with {parent_name} "
        f"({child_name} is on: {', '.join(sorted(child_networks)) or 'none'}; "
        f"{parent_name} is on: {', '.join(sorted(parent_networks)) or 'none'}); "
        f"connect them, e.g. docker network connect <network> {child_name}"
    )


# -- readiness --------------------------------------------------------------------------


class Observation(
    namedtuple("Observation", "state ready detail container address", defaults=("", None, ""))
):
    """What one look at a child showed: a short state, whether it is ready, and detail.

    state: str; ready: bool; detail: str; container: the inspect document or None; address:
    the child's IP on a shared network ("" until it has one).
    """

    __slots__ = ()


def first_tcp_port(container: dict) -> Optional[int]:
    ports = exposed_ports((container.get("Config") or {}).get("ExposedPorts") or {})
    return ports[0].number if ports and ports[0].proto == "tcp" else None


def port_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def observe(
    spec: LinkSpec,
    parent: dict,
    container: Optional[dict],
    probe: Callable[[str, int], bool] = port_open,
) -> Observation:
    """Judge one child against its wait mode. Pure but for ``probe``."""
    if container is None:
        return Observation("missing", False, "no container answers to this name")
    state = container.get("State") or {}
    status = state.get("Status", "unknown")
    if status in ("exited", "dead"):
        detail = f"exited with {state.get('ExitCode')} at {state.get('FinishedAt', '?')}"
        return Observation(f"exited({state.get('ExitCode')})", False, detail, container)
    if status != "running":
        return Observation(status, False, f"state {status}", container)
    address = shared_address(spec, parent, container)
    if not address:
        return Observation("no address", False, "running but without an IP address", container)
    seen = Observation("running", True, "running", container, address)
    if spec.wait in ("started", "none"):
        return seen
    health = (state.get("Health") or {}).get("Status")
    if health and health != "healthy":
        log = (state.get("Health") or {}).get("Log") or [{}]
        last = str(log[-1].get("Output", "")).strip().splitlines()
        detail = f"health {health}" + (f", last check said: {last[-1]}" if last else "")
        return Observation(health, False, detail, container, address)
    seen = Observation("healthy" if health else "running", True, seen.state, container, address)
    port = first_tcp_port(container)
    if spec.wait != "listening" or port is None:
        return seen
    if not probe(address, port):
        return Observation(f"port {port} closed", False,
                           f"{address}:{port} refused connections", container, address)
    return Observation("listening", True, f"listening on {port}", container, address)


class EventWatcher:
    """Wakes the waiter when the Engine reports a container event (a daemon thread).

    Subscribed from a moment before the first look, so an event between a look and the
    next wait is never missed; after a broken stream it reconnects and wakes the waiter,
    which looks again at everything (the Engine's buffer may have dropped events).
    """

    def __init__(self, engine: Engine, since: float) -> None:
        self._engine = engine
        self._since = since
        import threading  # only a wait needs it: most starts find every child ready

        self._wake = threading.Event()
        threading.Thread(target=self._follow, name="linkinit-events", daemon=True).start()

    def _follow(self) -> None:
        delay = 0.05
        while True:
            try:
                filters = {"type": ["container"], "event": _WAKING_EVENTS}
                for _ in self._engine.events(filters, since=self._since):
                    delay = 0.05
                    self._wake.set()
            except EngineUnreachable:
                pass
            self._since = time.time() - 1
            self._wake.set()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def wait(self, timeout: float) -> bool:
        """Sleep until woken or ``timeout``; True if an event (or a reconnect) woke us."""
        woken = self._wake.wait(max(timeout, 0))
        self._wake.clear()
        return woken


def connect(engine: Engine, deadline: float) -> None:
    """Reach the Engine, retrying with backoff until the deadline (exit 69 after that)."""
    if engine.socket_missing():
        path = engine.host.replace("unix://", "")
        raise EngineUnreachable(f"no Docker Engine socket at {path}: {MOUNT_HINT}")
    try:
        engine.ping()
        return
    except EngineUnreachable:
        pass
    import tenacity  # only when the first try failed: it costs ~50 ms of imports

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(max(deadline - time.monotonic(), 0)),
        wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
        retry=tenacity.retry_if_exception_type(EngineUnreachable),
        reraise=True,
    )
    try:
        retrying(engine.ping)
    except EngineUnreachable as error:
        raise EngineUnreachable(
            f"{error} (retried until the timeout); is dockerd running?"
        ) from None


def _say(report: Report, spec: LinkSpec, before: Optional[Observation], now: Observation) -> None:
    if before is None and now.ready:
        return  # ready at the first look: nothing to tell
    change = now.state if before is None else f"{before.state} -> {now.state}"
    report(f"waiting for {spec.alias} ({spec.child}): {change}")


def wait_for_children(
    engine: Engine,
    parent: dict,
    specs: Sequence[LinkSpec],
    timeout: float,
    report: Report,
    probe: Callable[[str, int], bool] = port_open,
) -> list[tuple[LinkSpec, Observation]]:
    """Look at every child until all are ready (or optional and absent), or time runs out.

    The first look decides which optional children are absent; after it, the waiter sleeps
    until an Engine event, the next port probe or the deadline, then looks again at the
    children not ready yet. An Engine that stops answering is retried until the deadline.
    """
    deadline = time.monotonic() + timeout
    started = time.time()
    seen: dict[str, Observation] = {}
    watcher: Optional[EventWatcher] = None
    backoff = port_backoff = 0
    looked_once = False
    fresh = True
    while True:
        error = _look(engine, parent, specs, seen, report, probe, fresh)
        if error is None and not looked_once:
            specs = _drop_absent_optional(specs, seen, report)
            looked_once = True
        unready = [s for s in specs if not (s.alias in seen and seen[s.alias].ready)]
        if error is None and not unready:
            return [(s, seen[s.alias]) for s in specs]
        remaining = deadline - time.monotonic()
        if error is not None and remaining <= 0:
            raise EngineUnreachable(f"{error} (retried until the timeout)")
        if error is None and (remaining <= 0 or any(s.wait == "none" for s in unready)):
            raise NotReady(_not_ready_message(unready, seen, time.time() - started))
        if watcher is None:
            watcher = EventWatcher(engine, since=started - 1)
        pause = remaining
        if error is not None:
            pause = min(pause, _PROBE_DELAYS[min(backoff, len(_PROBE_DELAYS) - 1)])
            backoff += 1
        elif any(seen[s.alias].state.startswith("port ") for s in unready):
            step = min(port_backoff, len(_PORT_PROBE_DELAYS) - 1)
            pause = min(pause, _PORT_PROBE_DELAYS[step])
            port_backoff += 1
        fresh = watcher.wait(pause) or error is not None


def _look(
    engine: Engine,
    parent: dict,
    specs: Sequence[LinkSpec],
    seen: dict[str, Observation],
    report: Report,
    probe: Callable[[str, int], bool],
    fresh: bool = True,
) -> Optional[EngineUnreachable]:
    """One look at each child not ready yet; report changes. Stops at an Engine failure.

    Not ``fresh`` (no event since the last look), a child whose only fault was a closed
    port is not inspected again: its document still holds, only the port is probed.
    """
    for spec in specs:
        before = seen.get(spec.alias)
        if before is not None and before.ready:
            continue
        try:
            if (not fresh and before is not None and before.container is not None
                    and before.state.startswith("port ")):
                now = observe(spec, parent, before.container, probe)
            else:
                now = observe(spec, parent, find_child(engine, spec, parent), probe)
        except EngineUnreachable as error:
            return error
        if before is None or before.state != now.state:
            _say(report, spec, before, now)
        seen[spec.alias] = now
    return None


def _drop_absent_optional(
    specs: Sequence[LinkSpec], seen: Mapping[str, Observation], report: Report
) -> list[LinkSpec]:
    kept = []
    for spec in specs:
        if spec.optional and seen[spec.alias].state == "missing":
            report(f"{spec.alias} ({spec.child}) is optional and absent: skipped")
        else:
            kept.append(spec)
    return kept


def _not_ready_message(
    unready: Iterable[LinkSpec], seen: Mapping[str, Observation], waited: float
) -> str:
    lines = [
        f"{s.alias} ({s.child}) not ready after {waited:.0f}s "
        f"(wait={s.wait}): {seen[s.alias].state}; last seen: {seen[s.alias].detail}"
        for s in unready
    ]
    return "\n".join(lines)


def endpoint_for(spec: LinkSpec, parent: dict, seen: Observation) -> Endpoint:
    child = seen.container or {}
    config = child.get("Config") or {}
    return Endpoint(
        alias=spec.alias,
        parent_name=name_of(parent),
        ip=seen.address,
        ports=tuple(exposed_ports(config.get("ExposedPorts") or {})),
        env=tuple(config.get("Env") or ()),
        child_name=name_of(child),
        child_hostname=str(config.get("Hostname", "")),
    )


def resolve_endpoints(
    engine: Engine,
    parent: dict,
    specs: Sequence[LinkSpec],
    timeout: float,
    report: Report,
) -> list[Endpoint]:
    ready = wait_for_children(engine, parent, specs, timeout, report)
    return [endpoint_for(spec, parent, seen) for spec, seen in ready]
