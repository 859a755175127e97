"""Engines as data: what Podman's Docker-compatible API does differently from Docker's.

One place knows the differences; the rest of linkinit reads Docker-shaped documents. The
Engine client learns which engine answered from ``/_ping`` (Podman adds a
``Libpod-Api-Version`` header), reshapes Podman's inspect documents with ``docker_shaped``,
and subscribes to the events under the names that engine filters by. Facts, as Podman 4.3
(Debian 12) shows them:

- events: a container's end is filtered as ``died`` and its removal as ``remove`` (Docker:
  ``die``, ``destroy``); ``podman stop`` sends no ``stop``; ``health_status`` fires on every
  check, its status in a field that lags one check behind: the waiter re-inspects instead.
- inspect: a container that has exited but is not cleaned up yet is ``stopped`` for a
  moment (Docker: ``exited`` at once); a container on the host's or no network has
  ``Networks: {}`` (Docker names ``host`` or ``none``); ``Config.Env`` also holds what
  Podman adds to every container (``container=podman``, ``TERM=xterm``,
  ``HOSTNAME=<its hostname>``), which Docker's inspect does not show and so Docker's links
  never exported; ``State.Health`` is there with ``Status: ""`` when there is no
  healthcheck; ``NetworkID`` is the network's name; SCTP ports cannot be exposed.
- an ID prefix of several containers is a 404 "more than one result" (Docker: "multiple").
- healthchecks run from systemd timers: where there is no systemd nothing runs them, and
  ``HealthchecksOnDemand`` runs them for the children linkinit waits for.
- a container finds itself by ``/run/.containerenv`` (``id=``/``name=``, empty unless
  privileged) and by ``libpod-<id>`` cgroups and ``overlay-containers/<id>`` mounts.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple

from linkinit.errors import EngineError
from linkinit.model import swarm

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Mapping, Optional


class EngineKind(
    namedtuple("EngineKind",
               "name waking_events added_env states runs_healthchecks mount_hint "
               "event_types has_swarm")
):
    """One engine's differences as data.

    name: "docker" or "podman"; waking_events: the container events after which a child may
    look different, under this engine's filter names; added_env: ``KEY=value`` entries the
    engine puts in every container's ``Config.Env`` that Docker's would not show
    (``{hostname}`` stands for the container's hostname); states: the engine's own state
    words -> Docker's; runs_healthchecks: whether the
    engine runs HEALTHCHECKs by itself; mount_hint: how to give a container its socket;
    event_types: the event types to follow (a service's create, update and remove wake a
    waiter on a swarm manager); has_swarm: whether ``/services`` may answer at all.
    """

    __slots__ = ()


DOCKER = EngineKind(
    "docker",
    ("create", "start", "restart", "die", "stop", "kill", "destroy", "rename",
     "pause", "unpause", "health_status", "connect", "disconnect", "update", "remove"),
    (),
    {},
    True,
    "mount it with -v /var/run/docker.sock:/var/run/docker.sock",
    ("container", "service"),
    True,
)
PODMAN = EngineKind(
    "podman",
    ("create", "init", "start", "restart", "died", "kill", "remove", "rename",
     "pause", "unpause", "health_status", "connect", "disconnect"),
    ("container=podman", "TERM=xterm", "HOSTNAME={hostname}"),
    {"stopped": "exited"},  # exited, not cleaned up yet: Docker has no such moment
    False,
    "mount Podman's socket there, e.g. -v /run/podman/podman.sock:/var/run/docker.sock "
    "(rootless: -v $XDG_RUNTIME_DIR/podman/podman.sock:/var/run/docker.sock)",
    ("container",),
    False,
)

# -- which engine ---------------------------------------------------------------------------

CONTAINERENV = "/run/.containerenv"  # Podman writes it into every container it runs
# How each engine says a reference names several objects: Docker 400 "multiple IDs found with
# provided prefix: 7" (containers) and 400 "service db is ambiguous (2 matches found)"
# (services), Podman 404 "more than one result for container ID 7: ...".
AMBIGUOUS_ANSWERS = ((400, "multiple"), (400, "ambiguous"),
                     (404, "more than one result for container id"))
# Podman's own API (not the compatible one) runs a healthcheck; 4.0.0 is its oldest version.
LIBPOD_HEALTHCHECK = "/v4.0.0/libpod/containers/{}/healthcheck"


def kind_from_headers(headers: Mapping[str, str]) -> EngineKind:
    """The engine behind a ``/_ping`` answer (header names in lower case)."""
    return PODMAN if "libpod-api-version" in headers else DOCKER


def running_under_podman() -> bool:
    """Whether this container was started by Podman (before any socket is reachable)."""
    return os.path.exists(CONTAINERENV)


def mount_hint() -> str:
    """How to give this container the Engine's socket, for the engine that runs it."""
    return (PODMAN if running_under_podman() else DOCKER).mount_hint


DOCKERENV = "/.dockerenv"  # Docker writes it into every container it runs


def in_a_container(environ: Mapping[str, str]) -> bool:
    """Whether linkinit runs in a container (Docker's, Podman's, a Kubernetes pod's)."""
    return (os.path.exists(DOCKERENV) or running_under_podman()
            or "KUBERNETES_SERVICE_HOST" in environ)


def missing_socket_advice(environ: Mapping[str, str]) -> str:
    """What to do about a socket that is not there: DOCKER_HOST named it, so fix that; in a
    container, mount it; on the host, start the Engine (mount advice would mislead there)."""
    if environ.get("DOCKER_HOST"):
        return ("DOCKER_HOST names it: set DOCKER_HOST to the Engine's socket "
                "(unix:///var/run/docker.sock) or unset it")
    if in_a_container(environ):
        return mount_hint()
    return "is dockerd running on this host? (or set DOCKER_HOST to the Engine's socket)"


def is_ambiguous(status: int, message: str) -> bool:
    """Whether an error answer says "that reference names several containers or services"."""
    lowered = message.lower()
    return any(status == code and phrase in lowered for code, phrase in AMBIGUOUS_ANSWERS)


# What an Engine's error answer means, for the start path's client and the proxy alike.
AMBIGUOUS = "ambiguous"  # a reference that names several: the user must say which (64)
MISSING = "missing"  # no such object (404)
NOT_MANAGER = "not-manager"  # swarm questions asked of a worker or a lone Engine (503)
UNAVAILABLE = "unavailable"  # the Engine failed or is busy: ask again (5xx)
REFUSED = "refused"  # any other refusal, named to the user (4xx)


def answer_kind(status: int, message: str) -> str:
    """The one reading of an error answer (status >= 400) and its message."""
    if is_ambiguous(status, message):
        return AMBIGUOUS
    if status == 404:
        return MISSING
    if swarm.manager_refusal(status, message) is not None:
        return NOT_MANAGER
    return UNAVAILABLE if status >= 500 else REFUSED


# -- this container -------------------------------------------------------------------------

def containerenv_fields(text: str) -> dict[str, str]:
    """``key="value"`` lines of /run/.containerenv (Podman fills it for privileged
    containers, rootless ones included; rootful unprivileged ones get it empty)."""
    fields = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip():
            fields[key.strip()] = value.strip().strip('"')
    return fields


# -- documents ------------------------------------------------------------------------------


def docker_shaped(kind: EngineKind, document: dict) -> dict:
    """The inspect document as Docker would give it: what linkinit reads means one thing.

    For Podman: ``stopped`` reads ``exited``; a container on the host's or no network gets
    its ``Networks`` entry back,
    and the variables Podman adds to every container leave ``Config.Env`` (so
    ``<ALIAS>_ENV_*`` holds what the child's image and run set, as on Docker; a variable
    set to exactly the value Podman would add, such as ``TERM=xterm``, goes too).
    """
    if kind is DOCKER:
        return document
    shaped = dict(document)
    for reshape in (_network_back, _state_word, _env_as_set):
        shaped.update(reshape(kind, document))
    return shaped


def _network_back(kind: EngineKind, document: Mapping[str, Any]) -> dict:
    """``NetworkSettings`` naming the host's or no network, where the engine left it empty."""
    settings = dict(document.get("NetworkSettings") or {})
    mode = (document.get("HostConfig") or {}).get("NetworkMode")
    if mode not in ("host", "none") or settings.get("Networks"):
        return {}
    settings["Networks"] = {mode: {"IPAddress": "", "Aliases": None, "NetworkID": mode}}
    return {"NetworkSettings": settings}


def _state_word(kind: EngineKind, document: Mapping[str, Any]) -> dict:
    """``State`` with Docker's word for the engine's own."""
    state = document.get("State") or {}
    if state.get("Status") not in kind.states:
        return {}
    return {"State": dict(state, Status=kind.states[state["Status"]])}


def _env_as_set(kind: EngineKind, document: Mapping[str, Any]) -> dict:
    """``Config`` whose ``Env`` holds what the image and the run set, not what the engine added."""
    config = dict(document.get("Config") or {})
    if not config.get("Env"):
        return {}
    hostname = str(config.get("Hostname") or "")
    added = {entry.replace("{hostname}", hostname) for entry in kind.added_env}
    config["Env"] = [entry for entry in config["Env"] if entry not in added]
    return {"Config": config}


# -- healthchecks nobody runs ---------------------------------------------------------------

HEALTHCHECK_MIN_PERIOD = 1.0  # seconds: linkinit never runs one child's check more often
DEFAULT_HEALTHCHECK_INTERVAL = 30.0  # Docker's and Podman's default


def healthcheck_period(container: Mapping[str, Any]) -> Optional[float]:
    """Seconds between checks of a child with a HEALTHCHECK; None where it has none."""
    check = (container.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    interval = (check.get("Interval") or 0) / 1e9 or DEFAULT_HEALTHCHECK_INTERVAL
    return max(interval, HEALTHCHECK_MIN_PERIOD)


def pending_check_period(container: Mapping[str, Any]) -> Optional[float]:
    """The check period of a running child whose HEALTHCHECK has not said healthy yet."""
    state = container.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    if not state.get("Running") or health in ("healthy", "", None):
        return None
    return healthcheck_period(container)


def last_check_at(container: Mapping[str, Any]) -> Optional[float]:
    """When the last check (by anyone: systemd's timer, a user) ended, in epoch seconds."""
    log = ((container.get("State") or {}).get("Health") or {}).get("Log") or []
    end = str((log[-1] or {}).get("End") or "") if log else ""
    return parse_timestamp(end)


def parse_timestamp(text: str) -> Optional[float]:
    """RFC 3339 in UTC with any fraction (``2026-11-28T14:19:52.832606474Z``), or None."""
    if len(text) < 20 or not text.endswith("Z"):
        return None
    import calendar  # only when a Podman child's healthcheck is pending

    try:
        fields = [int(part) for part in
                  (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])]
        fraction = float("0" + text[19:-1]) if text[19] == "." else 0.0
    except ValueError:
        return None
    return calendar.timegm((*fields, 0, 0, 0)) + fraction


class HealthchecksOnDemand:
    """Run the HEALTHCHECK of children an engine does not check by itself (Podman without
    systemd), at their own interval and at most once a second.

    ``checked`` wraps the waiter's lookup: a running child that is not healthy yet, whose
    last check (by anyone) is a period old, gets its check run now and is inspected again.
    ``wake`` wraps the waiter's wake source so the pause ends when the next check is due.
    """

    def __init__(self, engine: Any, clock: Any = time) -> None:
        self.engine = engine
        self.clock = clock
        self.ran: dict[str, float] = {}  # child ID -> when linkinit last ran its check
        self.due: dict[str, float] = {}  # child ID -> when its next check is due

    def checked(self, wait: str, document: Optional[dict]) -> Optional[dict]:
        """The child's document, inspected again after its check ran if one was due."""
        if document is None or wait in ("started", "none"):  # the rest wait for health
            return document
        cid = str(document.get("Id", ""))
        period = pending_check_period(document)
        if period is None:
            self.due.pop(cid, None)
            return document
        now = self.clock.time()
        last = max(self.ran.get(cid, 0.0), last_check_at(document) or 0.0)
        if now - last < period:
            self.due[cid] = last + period
            return document
        self.ran[cid] = now
        self.due[cid] = now + period
        try:
            self.engine.run_healthcheck(cid)
        except EngineError as error:  # gone or stopped since the look: the next look says
            if error.retryable:
                raise
            return document
        return self.engine.inspect_container(cid)

    def next_due_in(self) -> Optional[float]:
        if not self.due:
            return None
        return max(min(self.due.values()) - self.clock.time(), 0.0)

    def wake(self, source: Any) -> Any:
        return _WakeForChecks(self, source)


class _WakeForChecks:
    """A wake source whose pause also ends (as woken) when a healthcheck is due."""

    def __init__(self, checks: HealthchecksOnDemand, source: Any) -> None:
        self.checks = checks
        self.source = source

    def wait(self, timeout: float) -> bool:
        due_in = self.checks.next_due_in()
        if due_in is None or due_in >= timeout:
            return bool(self.source.wait(timeout))
        self.source.wait(due_in)
        return True
