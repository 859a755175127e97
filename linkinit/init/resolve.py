"""Link specs + the Engine -> endpoints, once every child is ready.

Finds the parent (this container) and each child through the Engine, then hands the
waiting to ``waiter.Waiter`` and turns what it saw into ``ResolvedLink``s. What a document
means is ``container``'s business, whether a child is ready ``readiness``'s; this module
only asks the Engine.
"""

from __future__ import annotations

import time

from linkinit.engine import kinds as engines
from linkinit.engine.whoami import self_references
from linkinit.errors import (
    AmbiguousReference,
    EngineRefused,
    EngineUnreachable,
    NotSwarmManager,
    ResolveError,
)
from linkinit.init.readiness import answerer
from linkinit.init.waiter import EventWatcher, Waiter
from linkinit.model import childenv, swarm
from linkinit.model import container as model
from linkinit.model.envvars import ResolvedLink

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Callable, Mapping, Optional, Sequence

    from linkinit.engine.client import Engine
    from linkinit.init.readiness import Observation
    from linkinit.model.declare import LinkSpec

    Report = Callable[[str], None]

LAST_LOOK_GRACE = 1.0  # seconds a look at the deadline may take before the Engine counts as hung
# -- this container -----------------------------------------------------------------------


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


# -- children -----------------------------------------------------------------------------


# What to deploy when a parent on a swarm worker cannot see services (README, "Swarm").
WORKER_HINT = (
    "this node is a swarm worker and only managers know services: run `linkinit proxy "
    "--listen tcp://0.0.0.0:2375` on the managers as a service attached to this overlay "
    "network, and set DOCKER_HOST=tcp://<that service>:2375 in this service (README: Swarm)"
)


class EngineLookup:
    """``container.find``'s questions answered by the Engine: its own lookup for names, IDs
    and prefixes, a manager's for services, and an inspect of each container on the
    parent's alias networks (the list API does not show aliases)."""

    def __init__(self, engine: Engine, parent: Mapping[str, Any]) -> None:
        self.engine = engine
        self.parent = parent

    def service(self, reference: str) -> model.Lookup:
        """A swarm service shaped as a container (its tasks and, without published ports,
        its image asked for too); MISSING where there is no swarm."""
        role = self.engine.swarm_role
        if role == swarm.NOT_IN_SWARM or not self.engine.kind.has_swarm:
            return model.Lookup(None, model.MISSING)
        try:
            service = None if role == swarm.WORKER else self._inspect_service(reference)
        except NotSwarmManager as error:
            self.engine.swarm_role = role = error.role  # one 503 is enough to know
            service = None
        except EngineRefused:  # a proxy that serves no services: as if there were no swarm
            self.engine.swarm_role = swarm.NOT_IN_SWARM
            return model.Lookup(None, model.MISSING)
        if role == swarm.WORKER:
            return model.Lookup(None, model.NO_MANAGER, WORKER_HINT)
        if service is None:
            return model.Lookup(None, model.MISSING)
        tasks = self.engine.list_tasks({"service": [str(service.get("ID", ""))]})
        image = None
        if not swarm.target_ports(service) and swarm.service_image(service):
            image = self.engine.inspect_image(swarm.service_image(service))
        names = {str(s.get("NetworkID")): name
                 for name, s in model.networks_of(self.parent).items() if s.get("NetworkID")}
        return model.Lookup(swarm.service_document(service, tasks, image, names))

    def by_reference(self, reference: str) -> model.Lookup:
        try:
            found = self.engine.inspect_container(reference)
        except AmbiguousReference as error:
            return model.Lookup(None, model.AMBIGUOUS, str(error))
        return model.Lookup(found) if found is not None else model.Lookup(None, model.MISSING)

    def _inspect_service(self, reference: str) -> Optional[dict]:
        """The service by the reference as written, else inside the parent's stack."""
        for name in swarm.service_references(reference, self.parent):
            service = self.engine.inspect_service(name)
            if service is not None:
                return service
        return None

    def on_networks(self, networks: Sequence[str]) -> list[dict]:
        candidates: dict[str, dict] = {}
        for network in networks:
            for summary in self.engine.list_containers({"network": [network]}):
                cid = summary["Id"]
                if cid in candidates or cid == self.parent.get("Id"):
                    continue
                document = self.engine.inspect_container(cid)
                if document is not None:
                    candidates[cid] = document
        return list(candidates.values())


def find_child(engine: Engine, spec: LinkSpec, parent: Mapping[str, Any]) -> Optional[dict]:
    """The child a spec names (None when absent); two candidates is a ResolveError (64)."""
    found = model.find(spec.child, parent, EngineLookup(engine, parent))
    if found.state == model.AMBIGUOUS:
        raise ResolveError(
            f"{spec.origin}: child {spec.child!r} is ambiguous: {found.why}; "
            "link one of them by its full name or ID"
        )
    if found.state == model.NO_MANAGER:
        raise NotSwarmManager(f"link {spec.alias}: {spec.child!r} is not a container on this "
                              f"node; {found.why}", 503, swarm.WORKER)
    if found.container and parent.get("Id") and found.container.get("Id") == parent["Id"]:
        raise ResolveError(f"{spec.origin}: child {spec.child!r} is this container itself; "
                           "a container cannot link to itself: name another container")
    return found.container


def connect(engine: Engine, deadline: float, environ: Mapping[str, str]) -> None:
    """Reach the Engine, retrying with backoff until the deadline (exit 69 after that)."""
    if engine.socket_missing():
        raise EngineUnreachable(f"no Docker Engine socket at {engine.socket_path}: "
                                f"{engines.missing_socket_advice(environ)}")
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


# -- endpoints ----------------------------------------------------------------------------


def resolved_link(spec: LinkSpec, parent: Mapping[str, Any], seen: Observation) -> ResolvedLink:
    """What the parent is told about one ready child."""
    child = seen.container or {}
    return ResolvedLink(
        alias=spec.alias,
        parent_name=model.name_of(parent),
        ip=seen.address,
        ports=tuple(model.exposed_ports(child)),
        env=childenv.select(model.environment_of(child), spec.env),
        child_name=model.name_of(child),
        child_hostname=model.hostname_of(child),
        child_id=str(child.get("Id", "")),
        address=spec.alias if spec.address == "name" else "",
        by_dns=spec.address == "name" and spec.alias in model.dns_names(parent, child),
    )


def resolve_links(
    engine: Engine,
    parent: Mapping[str, Any],
    specs: Sequence[LinkSpec],
    timeout: float,
    report: Report,
    environ: Optional[Mapping[str, str]] = None,
) -> list[ResolvedLink]:
    """Wait for every child (no Engine request outlives the timeout), then describe each.
    ``environ`` is the parent's own environment, under which ``exec:`` probes run."""
    # The last look comes at the deadline itself: it gets a moment to be answered.
    engine.deadline = time.monotonic() + timeout + LAST_LOOK_GRACE
    find, wake_source = _lookups(engine, parent)
    waiter = Waiter(specs, parent, find, timeout, report, wake_source=wake_source,
                    absent_reason=lambda spec: engine.refusals.get(spec.child, ""),
                    ask=answerer(parent, environ))
    ready = waiter.run()
    for spec, seen in ready:
        _report_missing_keys(spec, seen, report)
    return [resolved_link(spec, parent, seen) for spec, seen in ready]


def _report_missing_keys(spec: LinkSpec, seen: Observation, report: Report) -> None:
    """A named key the child lacks is not an error (the variable is simply not set), but
    the user should know why their application will not find it."""
    lacking = childenv.missing(model.environment_of(seen.container or {}), spec.env)
    if lacking:
        names = ", ".join(f"{spec.prefix}_ENV_{key}" for key in lacking)
        report(f"{spec.alias} ({spec.child}): the child's environment has no "
               f"{', '.join(lacking)} (named by env=): {names} not set")


def _lookups(
    engine: Engine, parent: Mapping[str, Any]
) -> tuple[Callable[[LinkSpec], Optional[dict]], Callable[..., Any]]:
    """How the waiter finds a child and is woken. An engine that runs no healthchecks by
    itself (Podman without systemd) gets them run on demand (engines.py)."""

    def find(spec: LinkSpec) -> Optional[dict]:
        return find_child(engine, spec, parent)

    def wake_source(since: float, matters: Any = None) -> Any:
        return EventWatcher(engine, since, matters=matters)

    if engine.kind.runs_healthchecks:
        return find, wake_source
    checks = engines.HealthchecksOnDemand(engine)
    return (lambda spec: checks.checked(spec.wait, find(spec)),
            lambda since, matters=None: checks.wake(wake_source(since, matters)))
