"""``linkinit proxy``'s HTTP handlers: judge each request with ``policy.decide``; forward,
filter, or refuse.

Parents mount the proxy's directory instead of the Engine socket, or (swarm tasks on any
node) reach it over TCP on an overlay network. For each connection the proxy asks the kernel
who is calling (``callers``), asks the Engine which containers and services that caller
declared as links at create time (``scopes``), and lets ``policy.decide`` judge the request;
this module only forwards what is allowed and filters the answers. HTTP is aiohttp's on both
sides (a security boundary parses HTTP with a well-kept library, never by hand).

Runs on the host only; a parent image never imports it (aiohttp is in the ``host`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

from linkinit.host.proxy import policy, redaction
from linkinit.host.proxy.connections import Connections
from linkinit.host.proxy.directory import Directory
from linkinit.host.proxy.events import EventHub, Subscriber
from linkinit.host.proxy.logs import log, log_limited
from linkinit.host.proxy.upstream import Unavailable, Upstream, alone, api_version, engine_wait

_VERSION_PREFIX = re.compile(r"^/v([0-9]+)(?:\.([0-9]+))?(?=/)")


def canonical_version(raw_path: str) -> str:
    """The API version a path asks for as the Engine reads it (``/v01.041`` is ``/v1.41``:
    it compares the numbers), "" for none: what is kept per version is kept once."""
    match = _VERSION_PREFIX.match(raw_path)
    if match is None:
        return ""
    return f"/v{int(match.group(1))}.{int(match.group(2) or 0)}"


class Proxy:
    """Judge each request with ``policy.decide``; forward, filter, or refuse."""

    def __init__(self, upstream: Upstream, directory: Directory, hub: EventHub,
                 verbose: bool = False, connections: Optional[Connections] = None,
                 max_streams: int = 0) -> None:
        self.connections = connections if connections is not None else Connections()
        self.max_streams = max_streams  # event streams one container may hold open; 0: any
        self._streams: dict[str, int] = {}  # caller's container ID -> event streams open
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
        version = canonical_version(request.rel_url.raw_path)
        api_version.set(version)
        if version:
            self.directory.version_hint = version
        caller = policy.Caller("")
        response: web.StreamResponse
        if self.connections.over_limit(request.transport):
            return _too_many(request, "connections", self.connections.limit,
                             "--max-connections")
        try:
            asked = policy.Request(request.method, request.rel_url.raw_path,
                                   tuple(request.query.items()))
            caller = await self._caller(request, policy.needs_scope(asked))
            decision = policy.decide(caller, asked)
            if not decision.allowed:
                response = self._refused(decision, asked)
                log_limited(f"refused {caller.id or caller.address} {decision.status}",
                            f"refused {request.method} {request.rel_url.raw_path} for "
                            f"{_who(caller)}: {decision.status}")
            else:
                response = await self.routes[decision.route](request, caller, decision)
        except Unavailable as error:
            response = _message(503, f"linkinit proxy: {error}; retry when it is back")
        except asyncio.CancelledError:
            raise  # the caller hung up
        except Exception as error:  # the daemon keeps serving everyone else
            log_limited(f"internal {type(error).__name__}", f"internal error on "
                        f"{request.method} {request.rel_url.raw_path}: {error!r}")
            response = _message(500, f"linkinit proxy: internal error: {error}")
        if self.verbose:
            log(f"{request.method} {request.rel_url.raw_path} {response.status} "
                f"{(time.monotonic() - started) * 1000:.1f} ms (Engine "
                f"{waited[0] * 1000:.1f} ms) {_who(caller)}")
        return response

    def _refused(self, decision: policy.Decision, asked: policy.Request) -> web.Response:
        """The refusal; where the Engine is a swarm worker, a refused service or task list
        is its own 503 instead, so that linkinit says what to deploy (resolve.WORKER_HINT)."""
        not_manager = self.directory.scopes.not_manager
        if not_manager and decision.status == 404 and policy.about_swarm(asked):
            return _message(503, not_manager)
        return _refusal(decision)

    async def _caller(self, request: web.BaseRequest, scoped: bool) -> policy.Caller:
        """Who is calling, from the kernel: the process that opened the connection on the
        Unix socket (as proven at accept, ``connections``), the peer's and the arrival
        address on TCP."""
        transport = request.transport
        if transport is None:  # the caller hung up already
            return policy.Caller("")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family != socket.AF_UNIX:
            return await self.directory.callers.caller_at(
                transport.get_extra_info("peername"), transport.get_extra_info("sockname"),
                scoped)
        return await self.directory.callers.caller(self.connections.peer(transport), scoped)

    async def _forward(self, request: web.BaseRequest, *_: Any) -> web.StreamResponse:
        status, headers, body = await self._fetch(request)
        return web.Response(status=status, headers=headers, body=body)

    async def _ping(self, request: web.BaseRequest, *_: Any) -> web.StreamResponse:
        """The Engine's ``/_ping`` answer, asked at most once a second (in the background
        while one under 30 s old is served) as long as the event stream says the Engine is
        up: a hundred parents starting at once all ping, and a busy Engine is slow to say
        what it said a second ago."""
        if not self.directory.timeline.serving:
            return await self._forward(request)
        key = ("ping", request.method)  # the Engine's answer is one whatever the path says
        status, headers, body = await self.directory.kept.pings.get(
            key, alone(lambda: self._fetch(request)), keep=lambda answer: answer[0] == 200)
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
        if status == 404 or (status in (400, 500) and b"multiple ids" in body.lower()):
            # worded as a refusal; "Multiple IDs found with provided prefix" would tell that
            # another container's ID starts like one the caller may see
            return _refusal(policy.not_visible(caller, decision.ref))
        if status == 200:
            try:
                found = str(json.loads(body).get("Id", ""))
            except (ValueError, AttributeError):
                found = ""
            if not policy.sees_id(caller, found):  # the name now belongs to someone else
                return _refusal(policy.not_visible(caller, decision.ref))
            body = redaction.container_body(caller.env, found, body)
        return web.Response(status=status, headers=headers, body=body)

    async def _kept_inspect(self, request: web.BaseRequest, caller: policy.Caller,
                            ref: str) -> Optional[web.Response]:
        """The Engine's answer the directory keeps (or fetches once for every caller asking
        now) for a container the caller names by full ID or name; None: ask the Engine as
        asked (a prefix, a query, or the event stream trailing)."""
        named = policy.named_exactly(caller, ref)
        if named is None or request.query or not self.directory.timeline.serving:
            return None
        found = await self.directory.kept.inspected(named.id, running=named.id == caller.id)
        if found is None:
            return None
        return web.Response(status=200, headers=found.headers,
                            body=redaction.container_body(caller.env, named.id, found.body))

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
                            body=redaction.service_body(caller.env, found, body))

    async def _list(self, request: web.BaseRequest, caller: policy.Caller,
                    _: policy.Decision) -> web.StreamResponse:
        return await self._filtered(
            request, lambda items: policy.filter_containers(caller, items), "container list")

    async def _tasks(self, request: web.BaseRequest, caller: policy.Caller,
                     _: policy.Decision) -> web.StreamResponse:
        return await self._filtered(request, lambda items: redaction.tasks(
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
        key = caller.id or caller.address or "host"
        if self.max_streams and self._streams.get(key, 0) >= self.max_streams:
            return _too_many(request, "event streams", self.max_streams, "--max-event-streams")
        self._streams[key] = self._streams.get(key, 0) + 1
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
            self._streams[key] -= 1
            if not self._streams[key]:
                del self._streams[key]

    async def _stream(self, response: web.StreamResponse, subscriber: Subscriber,
                      caller: policy.Caller, filters: dict) -> None:
        generation = self.directory.scopes.generation
        while not subscriber.dropped:
            item = await subscriber.next()
            if item is None:
                return
            raw, event = item
            before = caller  # the event that changed the scope is judged by the old one too
            if generation != self.directory.scopes.generation and caller.view == policy.LINKS:
                generation = self.directory.scopes.generation  # a child may have appeared
                caller = await self.directory.scopes.rescoped(caller)
            if policy.event_visible(caller, event, filters) or (
                    before is not caller and policy.event_visible(before, event, filters)):
                await response.write(raw + b"\n")  # sent at once: no buffering


def _who(caller: policy.Caller) -> str:
    """``web.1.x7k (10.0.1.5:41234)``, ``webapp (pid 4242)``; "host" for a process outside
    any container, "nobody" for a TCP peer that matched nothing."""
    if caller.address:
        anonymous = "host" if caller.view == policy.ALL or "loopback" in caller.why else "nobody"
        return f"{caller.name or anonymous} ({caller.address})"
    return f"{caller.name or 'host'} (pid {caller.pid})"


def _too_many(request: web.BaseRequest, what: str, limit: int, flag: str) -> web.Response:
    """429 naming the limit; the connection is closed after it."""
    log_limited(f"too many {what}", f"refused {request.method} {request.rel_url.raw_path}: "
                f"{limit} {what} from one caller already")
    response = _message(429, f"linkinit proxy: this container holds {limit} {what} to the "
                             f"proxy already, the most one container may (linkinit proxy "
                             f"{flag} {limit}); close some first")
    response.force_close()
    return response


def _refusal(decision: policy.Decision) -> web.Response:
    return _message(decision.status, decision.message)


def _message(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)




class Server(web.Server):
    """aiohttp's low-level server, telling ``Connections`` of each accept and close."""

    def __init__(self, handler: Any, connections: Connections, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.peers = connections  # not ``connections``: aiohttp's own property

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.peers.accepted(transport)

    def connection_lost(self, handler: Any, exc: Optional[BaseException] = None) -> None:
        transport = self._connections.get(handler)
        if transport is not None:
            self.peers.lost(transport)
        super().connection_lost(handler, exc)
