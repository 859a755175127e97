"""``linkinit proxy``: a host daemon between parent containers and the Docker Engine.

Parents mount the proxy's directory instead of the Engine socket, or (swarm tasks on any
node) reach it over TCP on an overlay network. For each connection the proxy asks the kernel
who is calling (``peer`` on the Unix socket, ``overlay`` on TCP), asks the Engine which
containers and services that caller declared as links at create time, and lets
``policy.decide`` judge the request; this module
only forwards what is allowed and filters the answers. HTTP is aiohttp's on both sides (a
security boundary parses HTTP with a well-kept library, never by hand). One upstream event
stream serves every caller: it is fanned out line by line, unbuffered, and doubles as the
invalidation feed of the small cache of who may see what.

Runs on the host only; a parent image never imports it (aiohttp is in the ``host`` extra).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import json
import logging
import os
import re
import signal
import socket
import sys
import time
import urllib.parse
from typing import Any, Awaitable, Callable, Optional, Sequence

import aiohttp
from aiohttp import web
from yarl import URL

from linkinit import env_redaction, overlay, policy
from linkinit.engine import identity as peer
from linkinit.engine import kinds as engines
from linkinit.errors import LinkinitError, UsageError
from linkinit.flights import Flights, Remembered
from linkinit.model import container as model
from linkinit.model import swarm
from linkinit.model.declare import LABEL_PREFIX

DEFAULT_LISTEN = "/run/linkinit/engine.sock"
DEFAULT_TCP_PORT = 2375
DEFAULT_UPSTREAM = "unix:///var/run/docker.sock"
_BASE = "http://docker"
_TOPOLOGY = {"create", "destroy", "rename", "connect", "disconnect"}  # who answers to a name
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date",
               "server", "upgrade"}
_REPLAY = 1024  # events kept for a caller's ``since`` (the Engine keeps 256)
_QUEUE = 1024  # events queued for one slow caller before it is dropped
_DOCUMENTS = 1024  # inspect answers kept (the oldest go first)
_PING_SECONDS = 1.0  # a /_ping answer is served as is for this long, then asked again
_PING_STALE_SECONDS = 30.0  # ... in the background, while the event stream stays up
_BEHIND_SECONDS = 0.5  # an event this late: the event stream trails the Engine
_VERSION_PREFIX = re.compile(r"^/v[0-9]+(?:\.[0-9]+)?(?=/)")


# Seconds one request spent waiting for the Engine (a one-element list per request).
engine_wait: contextvars.ContextVar[Optional[list[float]]] = contextvars.ContextVar(
    "engine_wait", default=None)
# The API version the request asked for ("/v1.47", "" for none): inspect answers differ by it.
api_version: contextvars.ContextVar[str] = contextvars.ContextVar("api_version", default="")


def _count_wait(seconds: float) -> None:
    waited = engine_wait.get()
    if waited is not None:
        waited[0] += seconds


def _alone(ask: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``ask`` as a shared flight: its Engine time is counted by each asker's wait
    (``Flights(on_wait=_count_wait)``), not also by the asker that happened to start it."""
    async def flight() -> Any:
        engine_wait.set(None)  # the flight's task has its own context: askers keep theirs
        return await ask()
    return flight


class Unavailable(Exception):
    """The Engine did not answer: 503 to the caller, who retries."""


def log(message: str) -> None:
    print(f"linkinit proxy: {message}", file=sys.stderr, flush=True)


class _OneLine(logging.Formatter):
    """aiohttp's own reports (a malformed request, say) as one line each, no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        detail = " ".join(str(error).split()) if error else ""
        return f"linkinit proxy: {record.getMessage().strip()}" + (f": {detail}" if detail else "")


def quiet_aiohttp() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    logger = logging.getLogger("aiohttp")
    logger.handlers[:] = [handler]
    logger.propagate = False


# -- the Engine ----------------------------------------------------------------------------


class Upstream:
    """The Engine's API through aiohttp's client, on a Unix socket or plain TCP."""

    def __init__(self, host: str) -> None:
        self.host = host
        if host.startswith("unix://"):
            self.path: Optional[str] = host[len("unix://"):]
            self.base = _BASE
        elif host.startswith(("tcp://", "http://")):
            self.path = None
            self.base = "http://" + host.split("://", 1)[1].rstrip("/")
        else:
            raise UsageError(f"DOCKER_HOST={host} is not supported: use unix:///path or "
                             "tcp://host:port")
        self.session: Optional[aiohttp.ClientSession] = None

    async def open(self) -> None:
        connector = (aiohttp.UnixConnector(path=self.path, limit=64) if self.path
                     else aiohttp.TCPConnector(limit=64))
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def url(self, raw_path_qs: str) -> URL:
        return URL(self.base + raw_path_qs, encoded=True)

    def request(self, method: str, raw_path_qs: str, timeout: Optional[float] = 30) -> Any:
        """An aiohttp request context; ``timeout=None`` for streams that last."""
        assert self.session is not None
        return self.session.request(
            method, self.url(raw_path_qs),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=5, sock_connect=5),
        )

    async def fetch(self, method: str, raw_path_qs: str) -> tuple[int, dict, bytes]:
        """One whole answer: status, end-to-end headers, body. The time it took is added to
        the request's Engine time (``engine_wait``), so the log can tell the proxy's own
        share from the Engine's."""
        started = time.monotonic()
        try:
            async with self.request(method, raw_path_qs) as response:
                body = await response.read()
                headers = {k: v for k, v in response.headers.items()
                           if k.lower() not in _HOP_BY_HOP}
                return response.status, headers, body
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise Unavailable(f"the Docker Engine at {self.host} did not answer: "
                              f"{error or type(error).__name__}") from None
        finally:
            waited = engine_wait.get()
            if waited is not None:
                waited[0] += time.monotonic() - started

    async def get_json(self, path: str, params: Optional[dict] = None) -> tuple[int, Any]:
        query = "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params.items()) \
            if params else ""
        status, _, body = await self.fetch("GET", path + query)
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# -- who may see what ----------------------------------------------------------------------


class Inspected(collections.namedtuple("Inspected", "document headers body")):
    """The Engine's 200 answer to an inspect: parsed, and as it came (served again as is)."""

    __slots__ = ()


class Directory:
    """Callers and their scopes, from the kernel and the Engine, cached while events flow.

    A container's labels, command and environment never change, so what it declares does
    not. An event forgets what it names: the inspect answers of the containers it is about,
    the references equal to their names, the resolutions that found them, and, on create,
    destroy, rename, a service event, or a connect or disconnect on a network that carries
    aliases (``_may_rename``), every child found by network alias and every reference that
    named nothing. Each event has a sequence number; an answer
    fetched before an event that touched it is not kept. Without an event stream nothing is
    cached. Inspect answers are kept per API version (their shape differs by it) and asked
    for once however many callers ask at once (``Flights``).
    """

    def __init__(self, upstream: Upstream, allow_host: bool, trust_files: bool) -> None:
        self.upstream = upstream
        self.allow_host = allow_host
        self.trust_files = trust_files
        self.addresses = overlay.Addresses(upstream.get_json)  # TCP callers
        self.not_manager = ""  # the Engine's 503 to /services, once it said it is no manager
        self.generation = 0  # topology changes seen: event streams look at scopes again
        self.caching = False
        self._sequence = 0  # events seen
        self._touched: dict[str, int] = {}  # ID or name -> sequence of the last event on it
        self._topology = 0  # sequence of the last create/destroy/rename/(dis)connect
        self._inspected: dict[str, dict[str, Inspected]] = {}  # ID -> API version -> answer
        self.flights = Flights(on_wait=_count_wait)
        self.behind_until = 0.0  # monotonic time until which the event stream trails
        self.version_hint = ""  # the API version callers last asked for (for prefetches)
        self._prefetches: set[asyncio.Task] = set()
        # the Engine's /_ping answers: a stream (re)connecting forgets them (a new Engine)
        self.pings = Remembered(_PING_SECONDS, self.flights, _PING_STALE_SECONDS)
        self._resolved: dict[tuple[str, str], tuple[tuple[dict, ...], bool]] = {}
        self._namespaces: Optional[dict[str, str]] = None
        self._own_namespace = peer.pid_namespace("self")

    def reset(self, caching: bool) -> None:
        self.generation += 1
        self._sequence += 1
        self._topology = self._sequence
        self.caching = caching
        self._inspected.clear()
        self.pings.forget()
        self._resolved.clear()
        self._namespaces = None

    def saw(self, event: dict) -> None:
        """An Engine event: forget what it may have changed. A service event may change what
        a name resolves to (a service comes before an alias) and which task holds an
        address; a network event moves addresses."""
        self._sequence += 1
        keys = _keys_of(event)
        self._forget(keys)
        action = str(event.get("Action", ""))
        self._prefetch_for(event, action)
        if event.get("Type") in ("service", "network"):
            self.addresses.forget()
        if action in _TOPOLOGY or action in ("start", "die"):
            self._namespaces = None
        if _may_rename(event):
            self.generation += 1
            self._topology = self._sequence
            self._resolved = {key: value for key, value in self._resolved.items()
                              if not _touches(keys, key[0], *value)}

    def _forget(self, keys: set[str]) -> None:
        for key in keys:
            self._touched[key] = self._sequence
            self._inspected.pop(key, None)

    def _fresh(self, began: int, keys: Sequence[str]) -> bool:
        """Whether an answer fetched from sequence ``began`` on may be kept."""
        return self.caching and all(self._touched.get(key, 0) < began for key in keys)

    @property
    def serving(self) -> bool:
        """Whether kept inspect answers may be served to callers: the event stream is up
        and does not trail the Engine (a caller's own ``since`` then covers any event the
        proxy has yet to see)."""
        return self.caching and time.monotonic() >= self.behind_until

    async def document(self, container_id: str) -> Optional[dict]:
        found = await self.inspected(container_id)
        return found.document if found is not None else None

    async def inspected(self, container_id: str, running: bool = False) -> Optional[Inspected]:
        """The Engine's answer to inspecting ``container_id`` (a full ID or a name) in the
        current request's API version, kept while no event touches it; None if the Engine
        knows no such container. ``running``: a kept answer saying it is not running is
        asked again (the container asking about itself runs; its start event may be late)."""
        version = api_version.get()
        kept = self._inspected.get(container_id, {}).get(version)
        if kept is not None and (not running or _running(kept.document)):
            return kept
        return await self.flights.run(
            ("inspect", version, container_id, self._touched.get(container_id, 0)),
            _alone(lambda: self._inspect(container_id, version)))

    async def _inspect(self, container_id: str, version: str) -> Optional[Inspected]:
        began = self._sequence + 1
        status, headers, body = await self.upstream.fetch(
            "GET", f"{version}/containers/{_quote(container_id)}/json")
        try:
            document = json.loads(body) if status == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return None
        found = Inspected(document, headers, body)
        found_id = str(document.get("Id"))
        if self._fresh(began, [container_id, found_id]):
            if len(self._inspected) >= _DOCUMENTS and found_id not in self._inspected:
                self._inspected.pop(next(iter(self._inspected)))  # the oldest kept
            self._inspected.setdefault(found_id, {})[version] = found
        return found

    def _prefetch_for(self, event: dict, action: str) -> None:
        """What callers are about to ask, asked now: a parent that just started asks for its
        own document and its children within milliseconds; parents waiting for a child that
        did not exist inspect it as soon as its create event reaches them, and its start
        would make the Engine answer them only once it has started."""
        actor = event.get("Actor") or {}
        container_id = str(actor.get("ID") or "")
        if event.get("Type") != "container" or not container_id or not self.caching:
            return
        if action == "start" and _declares_links(event):
            self._prefetch(container_id, scope=True)
        elif action == "create" and (actor.get("Attributes") or {}).get("name") in \
                self._awaited():
            self._prefetch(container_id, scope=False)

    def _awaited(self) -> set[str]:
        """The references some parent resolved to nothing (it waits for them)."""
        return {reference for (reference, _), (children, _) in self._resolved.items()
                if not children}

    def _prefetch(self, container_id: str, scope: bool) -> None:
        async def fetch() -> None:
            api_version.set(self.version_hint)
            with contextlib.suppress(Unavailable):
                document = await self.document(container_id)
                if document is not None and scope:
                    await self.scoped(document, 0)

        try:
            task = asyncio.get_running_loop().create_task(fetch())
        except RuntimeError:  # no loop: nothing to prefetch for
            return
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)

    async def caller(self, pid: Optional[int], scoped: bool = True) -> policy.Caller:
        """The caller as the kernel names it, with the containers it may see (``scoped``;
        else itself only, enough for a request that names no container)."""
        document = await self._container_of(pid) if pid else None
        if document is None:
            view = policy.ALL if self.allow_host else policy.NOBODY
            return policy.Caller("", "", view, (), pid or 0)
        if not scoped:
            own = policy.Visible(str(document.get("Id")), _name(document))
            return policy.Caller(own.id, own.name, policy.LINKS, (own,), pid or 0)
        return await self.scoped(document, pid or 0)

    async def caller_at(self, peername: Any, sockname: Any,
                        scoped: bool = True) -> policy.Caller:
        """A TCP caller: the task or container holding its address on the overlay network
        the connection arrived on (``overlay``); a loopback peer is this host."""
        address = _address_text(peername)
        peer_ip = overlay.address(peername[0] if peername else "")
        if peer_ip is not None and peer_ip.is_loopback:
            view = policy.ALL if self.allow_host else policy.NOBODY
            return policy.Caller("", "", view, address=address, why=(
                "is a process on the proxy's own host or container (loopback), refused unless "
                f"the proxy runs with --allow-host; {overlay.SERVES}"))
        found = await self.addresses.who(peer_ip, overlay.address(
            sockname[0] if sockname else ""), self.caching)
        document = await self._holder_document(found.holder)
        if document is None:
            return policy.Caller("", "", policy.NOBODY, address=address,
                                 why=found.why or f"is gone; {overlay.SERVES}")
        remote = found.holder is not None and found.holder.kind == overlay.TASK
        if not scoped:
            own = policy.Visible(str(document.get("Id")), _name(document))
            return policy.Caller(own.id, own.name, policy.LINKS, (own,), address=address,
                                 document=document if remote else None)
        return await self.scoped(document, 0, address, remote)

    async def _holder_document(self, holder: Optional[overlay.Holder]) -> Optional[dict]:
        """A container's inspect document, or a task's as its node would show it."""
        if holder is None:
            return None
        if holder.kind == overlay.TASK:
            return await self.addresses.document(holder)
        return await self.document(holder.id)

    async def scoped(self, document: dict, pid: int, address: str = "",
                     remote: bool = False) -> policy.Caller:
        """The caller with what it may see; ``remote``: the Engine cannot inspect it (a task
        on another node), so its document goes with it."""
        own = policy.Visible(str(document.get("Id")), _name(document))
        mine = document if remote else None
        if self.trust_files:
            return policy.Caller(own.id, own.name, policy.ALL, (own,), pid, address=address,
                                 document=mine)
        scope: list[policy.Visible] = [own]
        services: list[policy.Visible] = []
        images: list[str] = []
        declared_env = env_redaction.declared_env(document)
        env: dict[str, env_redaction.Allowed] = {}
        for reference in policy.declared_references(document):
            for child in await self._resolve(reference, document):
                seen = policy.Visible(str(child.get("Id")), _name(child))
                env[seen.id] = env_redaction.widen(env, seen.id, declared_env.get(reference))
                into = services if swarm.is_service(child) else scope
                if seen not in into:
                    into.append(seen)
                if swarm.is_service(child):
                    image = model.image_of(child)
                    images += [image, swarm.local_image(image)]
        env.pop(own.id, None)  # its own answers are never cut
        return policy.Caller(own.id, own.name, policy.LINKS, tuple(scope), pid,
                             tuple(services), tuple(dict.fromkeys(images)), address, mine,
                             env=tuple(env.items()))

    async def rescoped(self, caller: policy.Caller) -> policy.Caller:
        """The caller's scope looked at again (a child may have appeared)."""
        document = caller.document or await self.document(caller.id)
        if document is None:
            return caller
        return await self.scoped(document, caller.pid, caller.address,
                                 caller.document is not None)

    async def _container_of(self, pid: int) -> Optional[dict]:
        for candidate in peer.cgroup_candidates(pid):
            document = await self.document(candidate)
            if document is not None and document.get("Id") == candidate:  # not a name
                return document
        namespace = peer.pid_namespace(pid)
        if namespace is None or namespace == self._own_namespace:
            return None
        owner = (await self._pid_namespaces()).get(namespace)
        return await self.document(owner) if owner else None

    async def _pid_namespaces(self) -> dict[str, str]:
        """PID namespace -> container ID of the running containers (not --pid=host ones)."""
        if self._namespaces is not None:
            return self._namespaces
        began = self._sequence + 1
        found: dict[str, str] = {}
        for summary in await self._list("/containers/json"):
            document = await self.document(str(summary.get("Id")))
            namespace = _namespace_of(document)
            if namespace and namespace != self._own_namespace:
                found[namespace] = str(summary.get("Id"))
        if self.caching and self._topology < began and not any(
                self._touched.get(cid, 0) >= began for cid in found.values()):
            self._namespaces = found
        return found

    async def _list(self, path: str, params: Optional[dict] = None) -> list[dict]:
        status, summaries = await self.upstream.get_json(path, params)
        return summaries if status == 200 and isinstance(summaries, list) else []

    async def _resolve(self, reference: str, parent: dict) -> tuple[dict, ...]:
        """The child a reference names, as linkinit finds it (``container.find``): name, ID
        or unique prefix, else the one container holding it as a network alias on a network
        the parent is on. A reference two containers answer to grants neither."""
        key = (reference, str(parent.get("Id")))
        if key in self._resolved:
            return self._resolved[key][0]
        began = self._sequence + 1
        answers = await self._answers(reference, parent)
        found = model.find(reference, parent, answers)
        children: tuple[dict, ...] = (found.container,) if found.container is not None else ()
        # found by alias, or not found: any container created, renamed or connected may
        # change the answer
        unnamed = answers.neighbours is not None or not children
        names = [str(c.get("Id")) for c in children] + [_name(c) for c in children]
        if self._fresh(began, [reference, *names]) and (not unnamed or self._topology < began):
            self._resolved[key] = (children, unnamed)
        return children

    async def _answers(self, reference: str, parent: dict) -> _Answers:
        """What ``find`` asks, in its order, each asked only if the one before settled
        nothing (the aliases' holders are None when a name or a service answered)."""
        missing = model.Lookup(None, model.MISSING)
        named = await self._by_reference(reference)
        if model.settles(named, reference):
            return _Answers(named, missing, None)
        service = await self._service(reference, parent)
        if service.container is not None or service.state == model.AMBIGUOUS:
            return _Answers(named, service, None)
        return _Answers(named, service, await self._neighbours(parent))

    async def _by_reference(self, reference: str) -> model.Lookup:
        """The Engine's own lookup (full ID, exact name, unique ID prefix), asked once for
        every parent resolving the same reference now (a new flight after any create,
        destroy or rename: an answer is never older than what its asker has seen)."""
        return await self.flights.run(("lookup", reference, self._topology), _alone(
            lambda: self._look_up(reference)))

    async def _look_up(self, reference: str) -> model.Lookup:
        status, body = await self.upstream.get_json(f"/containers/{_quote(reference)}/json")
        if status == 200 and isinstance(body, dict):
            return model.Lookup(body)
        message = str((body or {}).get("message", "")) if isinstance(body, dict) else ""
        if status == 400 and "multiple" in message.lower():
            return model.Lookup(None, model.AMBIGUOUS, message)
        return model.Lookup(None, model.MISSING)

    async def _service(self, reference: str, parent: dict) -> model.Lookup:
        """A swarm service as linkinit looks for it (the reference as written, then inside
        the parent's stack), shaped as a container: its ID, name and image are what a scope
        needs, so no tasks are asked for. MISSING where there is none or the Engine is no
        manager."""
        for name in swarm.service_references(reference, parent):
            status, body = await self.flights.run(
                ("service", name, self._topology),
                _alone(functools.partial(self.upstream.get_json, f"/services/{_quote(name)}")))
            if status == 200 and isinstance(body, dict):
                return model.Lookup(swarm.service_document(body, ()))
            message = str((body or {}).get("message", "")) if isinstance(body, dict) else ""
            if status == 400 and "ambiguous" in message.lower():
                return model.Lookup(None, model.AMBIGUOUS, message)
            if swarm.manager_refusal(status, message):
                self.not_manager = message
                break
        return model.Lookup(None, model.MISSING)

    async def _neighbours(self, parent: dict) -> list[dict]:
        documents: dict[str, dict] = {}
        for network in model.alias_networks(parent):
            filters = json.dumps({"network": [network]})
            for summary in await self._list("/containers/json", {"all": "1", "filters": filters}):
                container_id = str(summary.get("Id"))
                if container_id not in documents and container_id != parent.get("Id"):
                    document = await self.document(container_id)
                    if document is not None:
                        documents[container_id] = document
        return list(documents.values())


def _keys_of(event: dict) -> set[str]:
    """The container IDs and names an event is about (a network event names its container)."""
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    return {str(actor.get("ID") or ""), str(attributes.get("container") or ""),
            str(attributes.get("name") or ""),
            str(attributes.get("oldName") or "").lstrip("/")} - {""}


def _touches(keys: set[str], reference: str, children: tuple[dict, ...], by_alias: bool) -> bool:
    """Whether a topology event about ``keys`` may change what ``reference`` names."""
    return by_alias or reference in keys or any(str(c.get("Id")) in keys for c in children)


class _Answers:
    """``container.find``'s questions, answered from what the proxy fetched already."""

    def __init__(self, named: model.Lookup, service: model.Lookup,
                 neighbours: Optional[list[dict]]) -> None:
        self.named = named
        self.found_service = service
        self.neighbours = neighbours  # None: not asked (a name or a service answered)

    def by_reference(self, reference: str) -> model.Lookup:
        return self.named

    def service(self, reference: str) -> model.Lookup:
        return self.found_service

    def on_networks(self, networks: Sequence[str]) -> list[dict]:
        return self.neighbours or []


def _may_rename(event: dict) -> bool:
    """Whether an event may change which container or service a reference names: a create,
    destroy or rename, a service event, or a container joining or leaving a network that
    carries aliases (every start connects its container to the default bridge: not that)."""
    action = str(event.get("Action", ""))
    if event.get("Type") == "service":
        return True
    if event.get("Type") == "network" and action in ("connect", "disconnect"):
        network = str(((event.get("Actor") or {}).get("Attributes") or {}).get("name") or "")
        return model.carries_aliases(network)
    return action in _TOPOLOGY


def _running(document: dict) -> bool:
    return bool((document.get("State") or {}).get("Running"))


def _declares_links(event: dict) -> bool:
    """Whether a container event's labels (the Engine sends them as attributes) declare a
    link: the container is a parent, worth a prefetch."""
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    return event.get("Type") == "container" and any(
        str(key).startswith(LABEL_PREFIX) for key in attributes)


def _namespace_of(document: Optional[dict]) -> Optional[str]:
    pid = ((document or {}).get("State") or {}).get("Pid") or 0
    return peer.pid_namespace(pid) if pid else None


def _name(document: dict) -> str:
    return model.name_of(document)


# -- the one event stream ------------------------------------------------------------------


class Subscriber:
    """One caller's event stream: a bounded queue the hub fills; None ends it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Optional[tuple[bytes, dict]]] = asyncio.Queue(_QUEUE)
        self.dropped = False

    def offer(self, item: Optional[tuple[bytes, dict]]) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True  # a caller that does not read: end its stream, not ours


class EventHub:
    """One upstream /events stream for all callers; reconnects with backoff when it breaks.

    Keeps the last events so a caller's ``since`` is served as the Engine would; callers'
    streams end when the upstream one breaks, so they reconnect and look again.
    """

    def __init__(self, upstream: Upstream, directory: Directory) -> None:
        self.upstream = upstream
        self.directory = directory
        self.subscribers: set[Subscriber] = set()
        self.recent: collections.deque[tuple[float, bytes, dict]] = collections.deque(
            maxlen=_REPLAY)
        self.connected = asyncio.Event()
        self.streams_opened = 0
        self._since = time.time() - 5

    async def run(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._follow()
                delay = 0.05
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError,
                    Unavailable) as error:  # Unavailable: /_ping, asked before the stream
                if self.connected.is_set() or delay == 0.05:
                    log(f"the Engine's event stream broke ({error or type(error).__name__});"
                        " reconnecting")
            self._disconnected()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _follow(self) -> None:
        filters = json.dumps({"type": [*await self._event_types(), "network"]})
        path = f"/events?since={self._since:.9f}&filters={_quote(filters)}"
        async with self.upstream.request("GET", path, timeout=None) as response:
            if response.status != 200:
                raise OSError(f"the Engine answered {response.status} to /events")
            self.streams_opened += 1
            self.directory.reset(caching=True)
            self.connected.set()
            async for line in response.content:
                if line.strip():
                    self.publish(line.rstrip(b"\r\n"), json.loads(line))

    async def _event_types(self) -> tuple[str, ...]:
        """The engine's event types for links: Docker's service events too (Podman refuses
        a type it does not know)."""
        status, headers, _ = await self.upstream.fetch("GET", "/_ping")
        if status != 200:
            raise OSError(f"the Engine answered {status} to /_ping")
        kind = engines.kind_from_headers({key.lower(): value for key, value in headers.items()})
        return tuple(kind.event_types)

    def publish(self, raw: bytes, event: dict) -> None:
        self.directory.saw(event)
        when = float(event.get("timeNano") or 0) / 1e9 or float(event.get("time") or 0)
        self._since = max(self._since, when)
        if time.time() - when > _BEHIND_SECONDS:  # kept answers wait until it catches up
            self.directory.behind_until = time.monotonic() + 2 * _BEHIND_SECONDS
        self.recent.append((when, raw, event))
        for subscriber in self.subscribers:
            subscriber.offer((raw, event))

    def _disconnected(self) -> None:
        self.connected.clear()
        self.directory.reset(caching=False)
        for subscriber in list(self.subscribers):
            subscriber.offer(None)

    def subscribe(self, since: Optional[float]) -> Subscriber:
        """A new caller's queue, primed with the kept events since ``since`` (atomically:
        nothing can arrive between the copy and the registration)."""
        subscriber = Subscriber()
        if since is not None:
            for when, raw, event in self.recent:
                if when >= since:
                    subscriber.offer((raw, event))
        self.subscribers.add(subscriber)
        return subscriber


# -- the server ----------------------------------------------------------------------------


class Proxy:
    """Judge each request with ``policy.decide``; forward, filter, or refuse."""

    def __init__(self, upstream: Upstream, directory: Directory, hub: EventHub,
                 verbose: bool = False) -> None:
        self.upstream = upstream
        self.directory = directory
        self.hub = hub
        self.verbose = verbose
        self.routes: dict[str, Callable[..., Awaitable[web.StreamResponse]]] = {
            "ping": self._ping, "version": self._forward, "inspect": self._inspect,
            "list": self._list, "events": self._events, "service": self._service,
            "tasks": self._tasks, "image": self._forward,
        }

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        waited = [0.0]
        engine_wait.set(waited)
        version = _VERSION_PREFIX.match(request.rel_url.raw_path)
        api_version.set(version.group(0) if version else "")
        if version:
            self.directory.version_hint = version.group(0)
        caller = policy.Caller("")
        response: web.StreamResponse
        try:
            asked = policy.Request(request.method, request.rel_url.raw_path,
                                   tuple(request.query.items()))
            caller = await self._caller(request, policy.needs_scope(asked))
            decision = policy.decide(caller, asked)
            if not decision.allowed:
                response = self._refused(decision, asked)
                log(f"refused {request.method} {request.rel_url.raw_path} for "
                    f"{_who(caller)}: {decision.status}")
            else:
                response = await self.routes[decision.route](request, caller, decision)
        except Unavailable as error:
            response = _message(503, f"linkinit proxy: {error}; retry when it is back")
        except asyncio.CancelledError:
            raise  # the caller hung up
        except Exception as error:  # the daemon keeps serving everyone else
            log(f"internal error on {request.method} {request.rel_url.raw_path}: {error!r}")
            response = _message(500, f"linkinit proxy: internal error: {error}")
        if self.verbose:
            log(f"{request.method} {request.rel_url.raw_path} {response.status} "
                f"{(time.monotonic() - started) * 1000:.1f} ms (Engine "
                f"{waited[0] * 1000:.1f} ms) {_who(caller)}")
        return response

    def _refused(self, decision: policy.Decision, asked: policy.Request) -> web.Response:
        """The refusal; where the Engine is a swarm worker, a refused service or task list
        is its own 503 instead, so that linkinit says what to deploy (resolve.WORKER_HINT)."""
        if self.directory.not_manager and decision.status == 404 and policy.about_swarm(asked):
            return _message(503, self.directory.not_manager)
        return _refusal(decision)

    async def _caller(self, request: web.BaseRequest, scoped: bool) -> policy.Caller:
        """Who is calling, from the kernel: the peer's PID on the Unix socket, the peer's and
        the arrival address on TCP."""
        transport = request.transport
        if transport is None:  # the caller hung up already
            return policy.Caller("")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family != socket.AF_UNIX:
            return await self.directory.caller_at(transport.get_extra_info("peername"),
                                                  transport.get_extra_info("sockname"), scoped)
        return await self.directory.caller(peer.peer_pid(sock) if sock else None, scoped)

    async def _forward(self, request: web.BaseRequest, *_: Any) -> web.StreamResponse:
        status, headers, body = await self._fetch(request)
        return web.Response(status=status, headers=headers, body=body)

    async def _ping(self, request: web.BaseRequest, *_: Any) -> web.StreamResponse:
        """The Engine's ``/_ping`` answer, asked at most once a second (in the background
        while one under 30 s old is served) as long as the event stream says the Engine is
        up: a hundred parents starting at once all ping, and a busy Engine is slow to say
        what it said a second ago."""
        if not self.directory.serving:
            return await self._forward(request)
        key = (request.method, request.rel_url.raw_path_qs)
        status, headers, body = await self.directory.pings.get(
            key, _alone(lambda: self._fetch(request)), keep=lambda answer: answer[0] == 200)
        return web.Response(status=status, headers=headers, body=body)

    async def _fetch(self, request: web.BaseRequest) -> tuple[int, dict, bytes]:
        return await self.upstream.fetch(request.method, request.rel_url.raw_path_qs)

    async def _inspect(self, request: web.BaseRequest, caller: policy.Caller,
                       decision: policy.Decision) -> web.StreamResponse:
        if policy.answers_for_itself(caller, decision.ref):  # the Engine cannot: another node
            return web.json_response(caller.document)
        kept = await self._kept_inspect(request, caller, decision.ref)
        if kept is not None:
            return kept
        status, headers, body = await self._fetch(request)
        if status == 404:
            return _refusal(policy.not_visible(caller, decision.ref))  # worded as a refusal
        if status == 200:
            try:
                found = str(json.loads(body).get("Id", ""))
            except (ValueError, AttributeError):
                found = ""
            if not policy.sees_id(caller, found):  # the name now belongs to someone else
                return _refusal(policy.not_visible(caller, decision.ref))
            body = env_redaction.container_body(caller.env, found, body)
        return web.Response(status=status, headers=headers, body=body)

    async def _kept_inspect(self, request: web.BaseRequest, caller: policy.Caller,
                            ref: str) -> Optional[web.Response]:
        """The Engine's answer the directory keeps (or fetches once for every caller asking
        now) for a container the caller names by full ID or name; None: ask the Engine as
        asked (a prefix, a query, or the event stream trailing)."""
        named = policy.named_exactly(caller, ref)
        if named is None or request.query or not self.directory.serving:
            return None
        found = await self.directory.inspected(named.id, running=named.id == caller.id)
        if found is None:
            return None
        return web.Response(status=200, headers=found.headers,
                            body=env_redaction.container_body(caller.env, named.id, found.body))

    async def _service(self, request: web.BaseRequest, caller: policy.Caller,
                       decision: policy.Decision) -> web.StreamResponse:
        """A linked service; a prefix that the Engine resolves to another service, or any
        refusal but "unavailable", reads as a missing service."""
        status, headers, body = await self._fetch(request)
        if status == 503:
            return web.Response(status=status, headers=headers, body=body)
        try:
            found = str(json.loads(body).get("ID", "")) if status == 200 else ""
        except (ValueError, AttributeError):
            found = ""
        if not found or not policy.sees_service_id(caller, found):
            return _refusal(policy.service_not_visible(decision.ref))
        return web.Response(status=status, headers=headers,
                            body=env_redaction.service_body(caller.env, found, body))

    async def _list(self, request: web.BaseRequest, caller: policy.Caller,
                    _: policy.Decision) -> web.StreamResponse:
        return await self._filtered(
            request, lambda items: policy.filter_containers(caller, items), "container list")

    async def _tasks(self, request: web.BaseRequest, caller: policy.Caller,
                     _: policy.Decision) -> web.StreamResponse:
        return await self._filtered(request, lambda items: env_redaction.tasks(
            caller.env, policy.filter_tasks(caller, items)), "task list")

    async def _filtered(self, request: web.BaseRequest, keep: Callable[[Any], list],
                        what: str) -> web.StreamResponse:
        """A list from the Engine, cut by ``keep`` to what the caller may see."""
        status, headers, body = await self._fetch(request)
        if status != 200:
            return web.Response(status=status, headers=headers, body=body)
        try:
            shown = keep(json.loads(body))
        except (ValueError, AttributeError, TypeError):
            return _message(502, f"linkinit proxy: the Engine's {what} was not JSON")
        return web.json_response(shown, headers={k: v for k, v in headers.items()
                                                 if k.lower() != "content-type"})

    async def _events(self, request: web.BaseRequest, caller: policy.Caller,
                      _: policy.Decision) -> web.StreamResponse:
        with contextlib.suppress(asyncio.TimeoutError):  # just started, or reconnecting
            await asyncio.wait_for(self.hub.connected.wait(), 2)
        if not self.hub.connected.is_set():
            raise Unavailable(f"the Docker Engine's event stream ({self.upstream.host}) is down")
        query = tuple(request.query.items())
        filters = policy.event_filters(query) or {}
        since = dict(query).get("since")
        subscriber = self.hub.subscribe(float(since) if since else None)
        try:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            if self.verbose:
                log(f"{request.method} {request.rel_url.raw_path} 200 streaming to "
                    f"{_who(caller)}: {len(self.hub.subscribers)} caller(s) on "
                    f"{self.hub.streams_opened} upstream stream(s) so far")
            await self._stream(response, subscriber, caller, filters)
            return response
        finally:
            self.hub.subscribers.discard(subscriber)

    async def _stream(self, response: web.StreamResponse, subscriber: Subscriber,
                      caller: policy.Caller, filters: dict) -> None:
        generation = self.directory.generation
        while not subscriber.dropped:
            item = await subscriber.queue.get()
            if item is None:
                return
            raw, event = item
            if generation != self.directory.generation and caller.view == policy.LINKS:
                generation = self.directory.generation  # a child may have appeared
                caller = await self.directory.rescoped(caller)
            if policy.event_visible(caller, event, filters):
                await response.write(raw + b"\n")  # sent at once: no buffering


def _address_text(peername: Any) -> str:
    """``10.0.1.5:41234`` (``[fd00::5]:41234``) from a transport's peername."""
    if not peername:
        return "unknown address"
    host = str(peername[0])
    return (f"[{host}]" if ":" in host else host) + f":{peername[1]}"


def _who(caller: policy.Caller) -> str:
    """``web.1.x7k (10.0.1.5:41234)``, ``webapp (pid 4242)``; "host" for a process outside
    any container, "nobody" for a TCP peer that matched nothing."""
    if caller.address:
        anonymous = "host" if caller.view == policy.ALL or "loopback" in caller.why else "nobody"
        return f"{caller.name or anonymous} ({caller.address})"
    return f"{caller.name or 'host'} (pid {caller.pid})"


def _refusal(decision: policy.Decision) -> web.Response:
    return _message(decision.status, decision.message)


def _message(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


# -- the daemon ----------------------------------------------------------------------------


def prepare_socket(path: str) -> None:
    """Create the proxy's own directory; refuse to take a socket another proxy listens on."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # left by a proxy that died: take its place
        return
    finally:
        probe.close()
    raise UsageError(f"proxy --listen {path}: another process listens there; stop it first")


class Listen(collections.namedtuple("Listen", "text path host port")):
    """Where the proxy listens: a Unix socket ``path``, or TCP ``host`` (None: every
    address) and ``port``; ``text`` as the operator wrote it."""

    __slots__ = ()


def listen_address(text: str) -> Listen:
    """``/run/linkinit/engine.sock``, ``unix:///path`` or ``tcp://ADDRESS:PORT`` (the port
    is 2375 unless given; ``tcp://:2375`` is every address)."""
    if not text.startswith("tcp://"):
        path = text[len("unix://"):] if text.startswith("unix://") else text
        if not path.startswith("/") or "://" in path:
            raise UsageError(f"proxy --listen {text}: give an absolute socket path, "
                             "unix:///path or tcp://ADDRESS:PORT")
        return Listen(text, path, None, 0)
    parsed = urllib.parse.urlsplit(text)
    try:
        port = parsed.port or DEFAULT_TCP_PORT
    except ValueError:
        port = 0
    if not 0 < port < 65536 or parsed.path not in ("", "/") or parsed.query:
        raise UsageError(f"proxy --listen {text}: give tcp://ADDRESS:PORT, e.g. "
                         f"tcp://0.0.0.0:{DEFAULT_TCP_PORT}")
    return Listen(text, "", parsed.hostname or None, port)


async def _start_sites(runner: web.BaseRunner, listens: Sequence[Listen],
                       bound: list[str]) -> None:
    """Each Unix socket (``bound`` collects them, to be removed) and TCP address."""
    for listen in listens:
        if listen.path:
            prepare_socket(listen.path)
            bound.append(listen.path)  # from here on the socket path is ours to remove
            await web.UnixSite(runner, listen.path, shutdown_timeout=1).start()
            os.chmod(listen.path, 0o666)  # anyone may connect; the kernel says who they are
            continue
        try:
            await web.TCPSite(runner, listen.host, listen.port, shutdown_timeout=1,
                              reuse_address=True).start()
        except OSError as error:
            raise UsageError(f"proxy --listen {listen.text}: {error.strerror or error}; "
                             "another process listens there, or the address is not this "
                             "container's") from None


async def _announce(directory: Directory) -> None:
    """Say once, at start, which overlay networks TCP callers are identified on."""
    with contextlib.suppress(Unavailable):
        await directory.addresses.rebuild(time.monotonic())
        book = directory.addresses.book
        networks = ", ".join(f"{own.name} ({own.interface})" for own in book.own)
        log(f"TCP callers are the tasks and containers on: {networks or 'no overlay network'}"
            + (f" ({book.problem})" if book.problem else ""))


async def serve(options: Any) -> None:
    """Listen until SIGTERM or SIGINT, then remove the Unix sockets."""
    quiet_aiohttp()
    upstream = Upstream(options.upstream)
    await upstream.open()
    directory = Directory(upstream, options.allow_host, options.trust_files)
    hub = EventHub(upstream, directory)
    proxy = Proxy(upstream, directory, hub, options.verbose)
    server = web.Server(proxy.handle, handler_cancellation=True,
                        keepalive_timeout=options.idle_timeout, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    tasks = [asyncio.create_task(hub.run())]
    bound: list[str] = []
    try:
        await _start_sites(runner, options.listens, bound)
        log(f"listening on {', '.join(listen.text for listen in options.listens)} for "
            f"{upstream.host}" + (" (host processes allowed)" if options.allow_host else "")
            + (" (YAML files trusted)" if options.trust_files else ""))
        if any(not listen.path for listen in options.listens):
            tasks.append(asyncio.create_task(_announce(directory)))
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()
        await upstream.close()
        for path in bound:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if bound or len(tasks) > 1:
            log(f"stopped ({hub.streams_opened} upstream event stream(s) opened)")


def parse(argv: Sequence[str], environ: dict) -> Any:
    from linkinit.usage import UsageParser

    parser = UsageParser(
        prog="linkinit proxy",
        description="Serve parent containers a read-only view of the Engine scoped to their "
                    "links: on a Unix socket they mount instead of the Engine's, or over TCP "
                    "to swarm tasks on the overlay networks the proxy is attached to.")
    parser.add_argument("--listen", action="append", metavar="PATH|tcp://ADDRESS:PORT",
                        help=f"a Unix socket in a directory of its own (default "
                             f"{DEFAULT_LISTEN}), or a TCP address for swarm tasks; may be "
                             "given more than once")
    parser.add_argument("--allow-host", action="store_true",
                        help="let processes outside containers (on TCP: loopback callers) "
                             "read every container")
    parser.add_argument("--trust-files", action="store_true",
                        help="trust links declared in files inside containers (weaker: a "
                             "container may then read any container)")
    parser.add_argument("--idle-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="close a connection that sends no request for this long (10)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every request with its status and duration")
    options = parser.parse_args(list(argv))
    options.listens = [listen_address(text) for text in options.listen or [DEFAULT_LISTEN]]
    options.upstream = environ.get("DOCKER_HOST") or DEFAULT_UPSTREAM
    for listen in options.listens:
        if listen.path and os.path.abspath(options.upstream.replace("unix://", "")) == \
                os.path.abspath(listen.path):
            raise UsageError(f"DOCKER_HOST={options.upstream} is the proxy's own socket: "
                             "point it at the Engine")
    if not options.idle_timeout > 0:
        raise UsageError(f"proxy: --idle-timeout must be > 0, not {options.idle_timeout}")
    return options


def main(argv: Sequence[str], stdout: Any, stderr: Any) -> int:
    """``linkinit proxy [--listen PATH|tcp://ADDRESS:PORT]... [--allow-host] [--trust-files]``."""
    try:
        options = parse(argv, dict(os.environ))
        asyncio.run(serve(options))
    except LinkinitError as error:
        print(f"linkinit: {error}", file=stderr)
        return error.exit_status
    except OSError as error:
        print(f"linkinit: proxy: {error.strerror or error}: {error.filename or ''}", file=stderr)
        return 69
    return 0
