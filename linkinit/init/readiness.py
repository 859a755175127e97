"""Is a child ready for its wait mode? One look at its inspect document says.

Pure but for the TCP probe, which the caller passes in (a fake in unit tests). A look is an
``Observation``: a ``phase`` the waiter acts on (a constant below, never a string to be
parsed), the ``state`` word shown in progress lines, and the detail a timeout reports.
"""

from __future__ import annotations

import _socket  # not socket.py: ~5 ms of imports on every start (engine.py)
import os
from collections import namedtuple

from linkinit.errors import ResolveError
from linkinit.model import container as model
from linkinit.model import swarm

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Callable, Mapping, Optional

    from linkinit.init.probes import Answer
    from linkinit.model.declare import LinkSpec

    Probe = Callable[[str, int], bool]
    AskChild = Callable[[LinkSpec, "Observation"], Answer]

# Phases, from "nothing there" to "ready". The waiter acts on these, never on ``state``.
MISSING = "missing"  # no container answers to the reference
DOWN = "down"  # the container exists but does not run (created, exited, paused...)
NO_ADDRESS = "no-address"  # running, but without an IP on a shared network yet
UNHEALTHY = "unhealthy"  # its healthcheck does not say healthy (yet)
PORT_CLOSED = "port-closed"  # healthy enough, but the port refuses connections
NOT_SERVING = "not-serving"  # healthy enough, but its protocol probe (or exec:) says not yet
READY = "ready"
PROBING = (PORT_CLOSED, NOT_SERVING)  # only another probe can change these: no inspect


class Observation(
    namedtuple("Observation", "phase state detail container address", defaults=(None, ""))
):
    """What one look at a child showed.

    phase: one of the constants above; state: the short word for progress lines
    (``exited(1)``, ``port 6379 closed``); detail: what a timeout message says was last
    seen; container: the inspect document or None; address: the child's IP on a shared
    network ("" until it has one).
    """

    __slots__ = ()

    @property
    def ready(self) -> bool:
        return self.phase == READY


def port_open(address: str, port: int, timeout: float = 0.5) -> bool:
    """Whether ``address`` (an IP, never a name) accepts a TCP connection on ``port``.

    A plain connect, not ``socket.create_connection``: its ``getaddrinfo`` encodes the host
    with the idna codec, ~3 ms of imports on every start that probes a port.
    """
    family = _socket.AF_INET6 if ":" in address else _socket.AF_INET
    sock = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def link_address(spec: LinkSpec, parent: Mapping[str, Any], child: Mapping[str, Any]) -> str:
    """The child's address on a shared network ("" not yet); no shared network is a 64."""
    address = model.shared_address(parent, child)
    if address is None:
        raise ResolveError(model.no_shared_network_message(spec.alias, parent, child))
    return address


def observe(
    spec: LinkSpec,
    parent: Mapping[str, Any],
    container: Optional[Mapping[str, Any]],
    probe: Probe = port_open,
    ask: Optional[AskChild] = None,
) -> Observation:
    """Judge one child against its wait mode, one condition after the other."""
    if container is None:
        return Observation(MISSING, "missing", "no container answers to this name")
    status = model.state_of(container)
    if status != "running":
        return _not_running(container, status)
    address = link_address(spec, parent, container)
    if not address:
        return Observation(NO_ADDRESS, "no address", "running but without an IP address",
                           container)
    if spec.wait in ("started", "none"):
        return Observation(READY, "running", "running", container, address)
    # A swarm service has no health of its own: swarm reports a task running only once its
    # healthcheck passed (swarm.py), so a running task is a healthy one.
    health = model.health_of(container)
    if health and health != "healthy":
        return _unhealthy(container, health, address)
    ready = Observation(READY, "healthy" if health else "running", "running", container, address)
    if spec.wait == "healthy":
        return ready
    return check_port(ready, probe, spec, ask)


def probe_port(spec: Optional[LinkSpec], container: Mapping[str, Any]) -> Optional[int]:
    """The port a probe asks: ``link.<alias>.port``, else the lowest exposed TCP port (the
    one ``<ALIAS>_PORT`` names), else a protocol probe's well-known port (None: listening
    has nothing to probe)."""
    if spec is not None and spec.port:
        return int(spec.port)
    port = model.first_tcp_port(container)
    if port is None and spec is not None and spec.wait not in ("listening", "healthy"):
        from linkinit.init.probes import DEFAULT_PORTS, kind_of

        return DEFAULT_PORTS.get(kind_of(spec.wait))
    return port


def check_port(seen: Observation, probe: Probe = port_open, spec: Optional[LinkSpec] = None,
               ask: Optional[AskChild] = None) -> Observation:
    """An observation that got as far as healthy, with its port probed (``listening``) or
    the child asked (a protocol probe, ``exec:``). The waiter calls it alone to probe again
    without inspecting again."""
    if spec is not None and spec.wait != "listening":
        return check_answer(seen, spec, ask or answerer({}))
    port = probe_port(spec, seen.container or {})
    if port is None:
        return seen._replace(phase=READY)
    if not probe(seen.address, port):
        return Observation(PORT_CLOSED, f"port {port} closed",
                           f"{seen.address}:{port} refused connections",
                           seen.container, seen.address)
    return Observation(READY, "listening", f"listening on {port}", seen.container, seen.address)


def check_answer(seen: Observation, spec: LinkSpec, ask: AskChild) -> Observation:
    """One try of the probe ``spec.wait`` names; its answer is the state in progress lines
    (``postgres: the database system is starting up (57P03)``)."""
    name = spec.wait.partition(":")[0]
    answer = ask(spec, seen)
    state = f"{name}: {answer.said}"
    where = f"{seen.address}:{probe_port(spec, seen.container or {})}"
    if name == "exec":
        where = f"{spec.wait[5:]!r}"
    detail = f"{where} answered: {answer.said}" + (f": {answer.output}" if answer.output else "")
    return Observation(READY if answer.ready else NOT_SERVING,
                       f"{name}: ready" if answer.ready else state, detail,
                       seen.container, seen.address)


def answerer(parent: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> AskChild:
    """The real ``ask``: a protocol probe over TCP, or ``exec:`` run with the link's variables
    under ``environ`` (the parent's own, which win, as for COMMAND). The probes' modules are
    imported here, on the first try: a start without probes never loads them."""

    def ask(spec: LinkSpec, seen: Observation) -> Answer:
        if spec.wait.startswith("exec:"):
            from linkinit.init import command_probe
            from linkinit.init.resolve import resolved_link
            from linkinit.model.envvars import build_environment, link_variables

            links = dict(link_variables(resolved_link(spec, parent, seen)))
            env = build_environment(os.environ if environ is None else environ, links)
            return command_probe.run(spec.wait[5:], env)
        from linkinit.init import probes

        return probes.ask(spec.wait, seen.address, probe_port(spec, seen.container or {}) or 0)

    return ask


def _not_running(container: Mapping[str, Any], status: str) -> Observation:
    if swarm.is_service(container):
        return Observation(DOWN, *swarm.service_state(container), container)
    state = container.get("State") or {}
    if status in ("exited", "dead"):
        code = state.get("ExitCode")
        detail = f"exited with {code} at {state.get('FinishedAt', '?')}"
        return Observation(DOWN, f"exited({code})", detail, container)
    return Observation(DOWN, status, f"state {status}", container)


def _unhealthy(container: Mapping[str, Any], health: str, address: str) -> Observation:
    last = model.last_health_output(container)
    detail = f"health {health}" + (f", last check said: {last}" if last else "")
    return Observation(UNHEALTHY, health, detail, container, address)
