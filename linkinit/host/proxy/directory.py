"""The proxy's memory, put together: callers, scopes and kept answers, told about events.

Each part keeps its own state and forgets its own part of an event: ``Timeline`` numbers
events, ``Kept`` drops the inspect answers of the containers an event names, ``Scopes`` the
resolutions a topology event may change, ``Callers`` the addresses and PID namespaces. The
directory also asks, at an event, what callers are about to ask (a prefetch).
"""

from __future__ import annotations

import asyncio
import contextlib

from linkinit.host.proxy.callers import Callers
from linkinit.host.proxy.flights import Flights
from linkinit.host.proxy.kept import Kept, Timeline
from linkinit.host.proxy.scopes import Scopes, keys_of, may_rename
from linkinit.host.proxy.upstream import Unavailable, Upstream, api_version, count_wait
from linkinit.model.declare import LABEL_PREFIX


class Directory:
    """Callers and their scopes, from the kernel and the Engine, kept while events flow."""

    def __init__(self, upstream: Upstream, allow_host: bool, trust_files: bool,
                 trust_image: bool = False) -> None:
        self.flights = Flights(on_wait=count_wait)
        self.timeline = Timeline()
        self.kept = Kept(upstream, self.timeline, self.flights)
        self.scopes = Scopes(upstream, self.timeline, self.kept, self.flights, trust_files,
                             trust_image)
        self.callers = Callers(upstream, self.timeline, self.kept, self.scopes, allow_host)
        self.version_hint = ""  # the API version callers last asked for (for prefetches)
        self._prefetches: set[asyncio.Task] = set()

    def reset(self, caching: bool) -> None:
        """The event stream (re)connected (``caching``) or broke: forget everything."""
        self.timeline.reset(caching)
        self.kept.clear()
        self.scopes.reset()
        self.callers.reset()

    def saw(self, event: dict) -> None:
        """An Engine event: each part forgets what it may have changed. A service event may
        change what a name resolves to (a service comes before an alias) and which task
        holds an address; a network event moves addresses."""
        keys = keys_of(event)
        topology = may_rename(event)
        self.timeline.saw(keys, topology)
        self.kept.forget(keys)
        self._prefetch_for(event, str(event.get("Action", "")))
        self.callers.saw(event)
        if topology:
            self.scopes.saw(keys)

    def _prefetch_for(self, event: dict, action: str) -> None:
        """What callers are about to ask, asked now: a parent that just started asks for its
        own document and its children within milliseconds; parents waiting for a child that
        did not exist inspect it as soon as its create event reaches them, and its start
        would make the Engine answer them only once it has started."""
        actor = event.get("Actor") or {}
        container_id = str(actor.get("ID") or "")
        if event.get("Type") != "container" or not container_id or not self.timeline.caching:
            return
        if action == "start" and _declares_links(event):
            self._prefetch(container_id, scope=True)
        elif action == "create" and (actor.get("Attributes") or {}).get("name") in \
                self.scopes.awaited():
            self._prefetch(container_id, scope=False)

    def _prefetch(self, container_id: str, scope: bool) -> None:
        async def fetch() -> None:
            api_version.set(self.version_hint)
            with contextlib.suppress(Unavailable):
                document = await self.kept.document(container_id)
                if document is not None and scope:
                    await self.scopes.scoped(document, 0)

        try:
            task = asyncio.get_running_loop().create_task(fetch())
        except RuntimeError:  # no loop: nothing to prefetch for
            return
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)


def _declares_links(event: dict) -> bool:
    """Whether a container event's labels (the Engine sends them as attributes) declare a
    link: the container is a parent, worth a prefetch."""
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    return event.get("Type") == "container" and any(
        str(key).startswith(LABEL_PREFIX) for key in attributes)
