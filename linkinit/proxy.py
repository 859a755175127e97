"""``linkinit proxy``: a host daemon between parent containers and the Docker Engine.

Parents mount the proxy's directory instead of the Engine socket. For each connection the
proxy asks the kernel who is calling (``peer``), asks the Engine which containers that caller
declared as links at create time, and lets ``policy.decide`` judge the request; this module
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
import json
import logging
import os
import signal
import socket
import sys
import time
import urllib.parse
from typing import Any, Awaitable, Callable, Optional, Sequence

import aiohttp
from aiohttp import web
from yarl import URL

from . import container as model
from . import peer, policy
from .errors import LinkinitError, UsageError

DEFAULT_LISTEN = "/run/linkinit/engine.sock"
DEFAULT_UPSTREAM = "unix:///var/run/docker.sock"
_BASE = "http://docker"
_TOPOLOGY = {"create", "destroy", "rename", "connect", "disconnect"}  # who answers to a name
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date",
               "server", "upgrade"}
_REPLAY = 1024  # events kept for a caller's ``since`` (the Engine keeps 256)
_QUEUE = 1024  # events queued for one slow caller before it is dropped


# Seconds one request spent waiting for the Engine (a one-element list per request).
engine_wait: contextvars.ContextVar[Optional[list[float]]] = contextvars.ContextVar(
    "engine_wait", default=None)


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

    async def inspect(self, ref: str) -> Optional[dict]:
        status, body = await self.get_json(f"/containers/{_quote(ref)}/json")
        return body if status == 200 and isinstance(body, dict) else None


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# -- who may see what ----------------------------------------------------------------------


class Directory:
    """Callers and their scopes, from the kernel and the Engine, cached while events flow.

    A container's labels, command and environment never change, so what it declares does
    not. An event forgets what it names: the documents of the containers it is about, the
    references equal to their names, the resolutions that found them, and, on create,
    destroy, rename, connect or disconnect, every child found by network alias. Each event
    has a sequence number; an answer fetched before an event that touched it is not kept.
    Without an event stream nothing is cached.
    """

    def __init__(self, upstream: Upstream, allow_host: bool, trust_files: bool) -> None:
        self.upstream = upstream
        self.allow_host = allow_host
        self.trust_files = trust_files
        self.generation = 0  # topology changes seen: event streams look at scopes again
        self.caching = False
        self._sequence = 0  # events seen
        self._touched: dict[str, int] = {}  # ID or name -> sequence of the last event on it
        self._topology = 0  # sequence of the last create/destroy/rename/(dis)connect
        self._documents: dict[str, dict] = {}
        self._resolved: dict[tuple[str, str], tuple[tuple[dict, ...], bool]] = {}
        self._namespaces: Optional[dict[str, str]] = None
        self._own_namespace = peer.pid_namespace("self")

    def reset(self, caching: bool) -> None:
        self.generation += 1
        self._sequence += 1
        self._topology = self._sequence
        self.caching = caching
        self._documents.clear()
        self._resolved.clear()
        self._namespaces = None

    def saw(self, event: dict) -> None:
        """An Engine event: forget what it may have changed."""
        self._sequence += 1
        keys = _keys_of(event)
        for key in keys:
            self._touched[key] = self._sequence
            self._documents.pop(key, None)
        action = str(event.get("Action", ""))
        if action in _TOPOLOGY or action in ("start", "die"):
            self._namespaces = None
        if action in _TOPOLOGY:
            self.generation += 1
            self._topology = self._sequence
            self._resolved = {key: value for key, value in self._resolved.items()
                              if not _touches(keys, key[0], *value)}

    def _fresh(self, began: int, keys: Sequence[str]) -> bool:
        """Whether an answer fetched from sequence ``began`` on may be kept."""
        return self.caching and all(self._touched.get(key, 0) < began for key in keys)

    async def document(self, container_id: str) -> Optional[dict]:
        cached = self._documents.get(container_id)
        if cached is not None:
            return cached
        began = self._sequence + 1
        found = await self.upstream.inspect(container_id)
        if found is not None and self._fresh(began, [container_id, str(found.get("Id"))]):
            self._documents[str(found.get("Id"))] = found
        return found

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

    async def scoped(self, document: dict, pid: int) -> policy.Caller:
        own = policy.Visible(str(document.get("Id")), _name(document))
        if self.trust_files:
            return policy.Caller(own.id, own.name, policy.ALL, (own,), pid)
        scope = [own]
        for reference in policy.declared_references(document):
            for child in await self._resolve(reference, document):
                seen = policy.Visible(str(child.get("Id")), _name(child))
                if seen not in scope:
                    scope.append(seen)
        return policy.Caller(own.id, own.name, policy.LINKS, tuple(scope), pid)

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
        named = await self._by_reference(reference)
        unnamed = named.container is None and named.state != model.AMBIGUOUS
        neighbours = await self._neighbours(parent) if unnamed else []
        found = model.find(reference, parent, _Answers(named, neighbours))
        children: tuple[dict, ...] = (found.container,) if found.container is not None else ()
        names = [str(c.get("Id")) for c in children] + [_name(c) for c in children]
        if children and self._fresh(began, [reference, *names]) and (
                not unnamed or self._topology < began):
            self._resolved[key] = (children, unnamed)
        return children

    async def _by_reference(self, reference: str) -> model.Lookup:
        status, body = await self.upstream.get_json(f"/containers/{_quote(reference)}/json")
        if status == 200 and isinstance(body, dict):
            return model.Lookup(body)
        message = str((body or {}).get("message", "")) if isinstance(body, dict) else ""
        if status == 400 and "multiple" in message.lower():
            return model.Lookup(None, model.AMBIGUOUS, message)
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

    def __init__(self, named: model.Lookup, neighbours: list[dict]) -> None:
        self.named = named
        self.neighbours = neighbours

    def by_reference(self, reference: str) -> model.Lookup:
        return self.named

    def service(self, reference: str) -> model.Lookup:
        return model.Lookup(None, model.MISSING)  # containers only, so far

    def on_networks(self, networks: Sequence[str]) -> list[dict]:
        return self.neighbours


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
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as error:
                if self.connected.is_set() or delay == 0.05:
                    log(f"the Engine's event stream broke ({error or type(error).__name__});"
                        " reconnecting")
            self._disconnected()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _follow(self) -> None:
        filters = json.dumps({"type": ["container", "network"]})
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

    def publish(self, raw: bytes, event: dict) -> None:
        self.directory.saw(event)
        when = float(event.get("timeNano") or 0) / 1e9 or float(event.get("time") or 0)
        self._since = max(self._since, when)
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
            "ping": self._forward, "version": self._forward, "inspect": self._inspect,
            "list": self._list, "events": self._events,
        }

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        waited = [0.0]
        engine_wait.set(waited)
        caller = policy.Caller("")
        response: web.StreamResponse
        try:
            asked = policy.Request(request.method, request.rel_url.raw_path,
                                   tuple(request.query.items()))
            caller = await self.directory.caller(_peer_pid(request), policy.needs_scope(asked))
            decision = policy.decide(caller, asked)
            if not decision.allowed:
                response = _refusal(decision)
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

    async def _forward(self, request: web.BaseRequest, *_: Any) -> web.StreamResponse:
        status, headers, body = await self._fetch(request)
        return web.Response(status=status, headers=headers, body=body)

    async def _fetch(self, request: web.BaseRequest) -> tuple[int, dict, bytes]:
        return await self.upstream.fetch(request.method, request.rel_url.raw_path_qs)

    async def _inspect(self, request: web.BaseRequest, caller: policy.Caller,
                       decision: policy.Decision) -> web.StreamResponse:
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
        return web.Response(status=status, headers=headers, body=body)

    async def _list(self, request: web.BaseRequest, caller: policy.Caller,
                    _: policy.Decision) -> web.StreamResponse:
        status, headers, body = await self._fetch(request)
        if status != 200:
            return web.Response(status=status, headers=headers, body=body)
        try:
            shown = policy.filter_containers(caller, json.loads(body))
        except (ValueError, AttributeError, TypeError):
            return _message(502, "linkinit proxy: the Engine's container list was not JSON")
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
                document = await self.directory.document(caller.id)
                if document is not None:
                    caller = await self.directory.scoped(document, caller.pid)
            if policy.event_visible(caller, event, filters):
                await response.write(raw + b"\n")  # sent at once: no buffering


def _peer_pid(request: web.BaseRequest) -> Optional[int]:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return peer.peer_pid(sock) if sock is not None else None


def _who(caller: policy.Caller) -> str:
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


async def serve(options: Any) -> None:
    """Listen until SIGTERM or SIGINT, then remove the socket."""
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
    following = asyncio.create_task(hub.run())
    bound = False
    try:
        prepare_socket(options.listen)
        bound = True  # from here on the socket path is ours to remove
        await web.UnixSite(runner, options.listen, shutdown_timeout=1).start()
        os.chmod(options.listen, 0o666)  # anyone may connect; the kernel says who they are
        log(f"listening on {options.listen} for {upstream.host}"
            + (" (host processes allowed)" if options.allow_host else "")
            + (" (YAML files trusted)" if options.trust_files else ""))
        await stop.wait()
    finally:
        following.cancel()
        await runner.cleanup()
        await upstream.close()
        if bound:
            with contextlib.suppress(OSError):
                os.unlink(options.listen)
            log(f"stopped ({hub.streams_opened} upstream event stream(s) opened)")


def parse(argv: Sequence[str], environ: dict) -> Any:
    from .usage import UsageParser

    parser = UsageParser(
        prog="linkinit proxy",
        description="Serve parent containers a read-only view of the Engine scoped to their "
                    "links, on a Unix socket they mount instead of the Engine's.")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="PATH",
                        help=f"the socket, in a directory of its own (default {DEFAULT_LISTEN})")
    parser.add_argument("--allow-host", action="store_true",
                        help="let processes outside containers read every container")
    parser.add_argument("--trust-files", action="store_true",
                        help="trust links declared in files inside containers (weaker: a "
                             "container may then read any container)")
    parser.add_argument("--idle-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="close a connection that sends no request for this long (10)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every request with its status and duration")
    options = parser.parse_args(list(argv))
    options.upstream = environ.get("DOCKER_HOST") or DEFAULT_UPSTREAM
    if os.path.abspath(options.upstream.replace("unix://", "")) == os.path.abspath(
            options.listen):
        raise UsageError(f"DOCKER_HOST={options.upstream} is the proxy's own socket: point it "
                         "at the Engine")
    if not options.idle_timeout > 0:
        raise UsageError(f"proxy: --idle-timeout must be > 0, not {options.idle_timeout}")
    return options


def main(argv: Sequence[str], stdout: Any, stderr: Any) -> int:
    """``linkinit proxy [--listen PATH] [--allow-host] [--trust-files]``."""
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
