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

from linkinit.engine import kinds as engines
from linkinit.engine.transport import quote
from linkinit.host.proxy.directory import Directory
from linkinit.host.proxy.logs import log
from linkinit.host.proxy.upstream import Unavailable, Upstream

_REPLAY = 1024  # events kept for a caller's ``since`` (the Engine keeps 256) ...
_REPLAY_BYTES = 16 << 20  # ... and at most this many bytes of them
_QUEUE = 1024  # events queued for one slow caller before it is dropped ...
_QUEUE_BYTES = 16 << 20  # ... or this many bytes
MAX_EVENT = 8 << 20  # a longer event line is skipped (and everything it may change forgotten)
_WATCH_SECONDS = 5.0  # how often the watchdog looks at the hub


class Lines:
    """The event stream's body cut into lines, whatever the size of its chunks; a line over
    ``limit`` bytes is not kept but counted (``skipped``), so memory stays bounded."""

    def __init__(self, limit: int = MAX_EVENT) -> None:
        self.limit = limit
        self.skipped = 0  # lines dropped for their size
        self._buffer = bytearray()
        self._oversized = False  # dropping the rest of an oversized line

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete lines ``chunk`` ends (without their newline; blank ones left out)."""
        lines: list[bytes] = []
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            self._add(piece)
            if self._oversized:
                self.skipped += 1
            elif self._buffer.strip():
                lines.append(bytes(self._buffer).rstrip(b"\r"))
            self._buffer.clear()
            self._oversized = False
        self._add(rest)
        return lines

    def _add(self, piece: bytes) -> None:
        if not self._oversized:
            self._buffer += piece
            if len(self._buffer) > self.limit:
                self._buffer.clear()
                self._oversized = True


class Subscriber:
    """One caller's event stream: a bounded queue the hub fills; None ends it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Optional[tuple[bytes, dict]]] = asyncio.Queue(_QUEUE)
        self.dropped = False
        self.queued_bytes = 0

    def offer(self, item: Optional[tuple[bytes, dict]]) -> None:
        size = len(item[0]) if item is not None else 0
        if item is not None and self.queued_bytes + size > _QUEUE_BYTES:
            self.dropped = True  # a caller that does not read: end its stream, not ours
            item = None
        try:
            self.queue.put_nowait(item)
            self.queued_bytes += size
        except asyncio.QueueFull:
            self.dropped = True

    async def next(self) -> Optional[tuple[bytes, dict]]:
        item = await self.queue.get()
        if item is not None:
            self.queued_bytes -= len(item[0])
        return item


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
        self._recent_bytes = 0
        self.connected = asyncio.Event()
        self.streams_opened = 0
        self.skipped = 0  # events too long to take
        self._since = time.time() - 5

    async def run(self) -> None:
        """Follow the Engine's events until cancelled: any failure is logged, forgets what
        is kept (``_disconnected``) and reconnects, with backoff."""
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
            except Exception as error:  # a bug or a surprise: never a silent, dead hub
                log(f"the event stream failed ({error!r}); forgetting what is kept and "
                    "reconnecting")
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
            lines = Lines()
            async for chunk in response.content.iter_any():
                for line in lines.feed(chunk):
                    self.publish(line, json.loads(line))
                if lines.skipped:
                    self._lost(lines.skipped)
                    lines.skipped = 0

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
        self._remember(when, raw, event)
        for subscriber in self.subscribers:
            subscriber.offer((raw, event))

    def _remember(self, when: float, raw: bytes, event: dict) -> None:
        """Kept for a later caller's ``since``: the last events, bounded in count and bytes."""
        if len(self.recent) == self.recent.maxlen:
            self._recent_bytes -= len(self.recent[0][1])
        self.recent.append((when, raw, event))
        self._recent_bytes += len(raw)
        while self._recent_bytes > _REPLAY_BYTES and self.recent:
            self._recent_bytes -= len(self.recent.popleft()[1])

    def _lost(self, count: int) -> None:
        """Events too long to take (``MAX_EVENT``): what they may have changed is unknown,
        so everything kept is forgotten and callers' streams end (they reconnect and look
        again)."""
        self.skipped += count
        log(f"skipped {count} event(s) over {MAX_EVENT >> 20} MiB from the Engine; "
            "forgetting what is kept and ending callers' event streams")
        self.directory.reset(caching=True)
        for subscriber in list(self.subscribers):
            subscriber.offer(None)

    def restarted(self) -> None:
        """The hub's task ended and is started again: callers look again."""
        self._disconnected()

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


async def watchdog(hub: EventHub, seconds: float = _WATCH_SECONDS) -> None:
    """Keep the hub running: it catches every failure itself, but a hub task that ended
    anyway (a bug) is logged, its kept answers forgotten, and started again."""
    task = asyncio.ensure_future(hub.run())
    try:
        while True:
            await asyncio.wait([task], timeout=seconds)
            if task.done():
                error = None if task.cancelled() else task.exception()
                log(f"the event stream's task ended ({error!r}); starting it again")
                hub.restarted()
                task = asyncio.ensure_future(hub.run())
    finally:
        task.cancel()
