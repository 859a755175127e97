"""The one event stream: a single upstream ``/events`` fanned out to every caller.

It is fanned out line by line, unbuffered, and doubles as the invalidation feed of what the
proxy keeps (``Directory.saw``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Optional

import aiohttp

from ... import engines
from .directory import Directory
from .logs import log
from .upstream import Unavailable, Upstream, quote

_REPLAY = 1024  # events kept for a caller's ``since`` (the Engine keeps 256)
_QUEUE = 1024  # events queued for one slow caller before it is dropped


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
        path = f"/events?since={self._since:.9f}&filters={quote(filters)}"
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
        self.directory.timeline.arrived(when)
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
