"""What the proxy keeps of the Engine's answers, and when a kept answer is still true.

``Timeline`` numbers the Engine's events and remembers, per container ID or name, the last
event about it: an answer fetched before an event that touched it is not kept. Without an
event stream nothing is kept (``caching``), and while the stream trails the Engine nothing
kept is served (``serving``). ``Kept`` holds the Engine's inspect answers, per container and
API version (their shape differs by it), each asked for once however many callers ask at
once (``Flights``), and the Engine's ``/_ping`` answers.
"""

from __future__ import annotations

import collections
import json
import time
from typing import Optional, Sequence

from linkinit.engine.transport import quote
from linkinit.host.proxy.flights import Flights, Remembered
from linkinit.host.proxy.upstream import Upstream, alone, api_version

_DOCUMENTS = 1024  # containers whose inspect answers are kept (the least used go first) ...
_KEPT_BYTES = 64 << 20  # ... and bytes of them
_PING_SECONDS = 1.0  # a /_ping answer is served as is for this long, then asked again
_PING_STALE_SECONDS = 30.0  # ... in the background, while the event stream stays up
_BEHIND_SECONDS = 0.5  # an event this late: the event stream trails the Engine
_TOUCHED = 65536  # names and IDs remembered with their last event's sequence


class Inspected(collections.namedtuple("Inspected", "document headers body")):
    """The Engine's 200 answer to an inspect: parsed, and as it came (served again as is)."""

    __slots__ = ()


class Timeline:
    """The events seen, numbered: which answers may be kept, and whether kept ones may be
    served."""

    def __init__(self) -> None:
        self.sequence = 0  # events seen
        self.topology = 0  # sequence of the last create/destroy/rename/(dis)connect
        self.caching = False
        self.behind_until = 0.0  # monotonic time until which the event stream trails
        self._touched: dict[str, int] = {}  # ID or name -> sequence of the last event on it
        self._floor = 0  # every key counts as touched at this sequence (a reset, a pruning)

    def reset(self, caching: bool) -> None:
        """Everything may have changed (the stream reconnected, or lost an event): nothing
        fetched before now is kept."""
        self.sequence += 1
        self.topology = self.sequence
        self._floor = self.sequence
        self._touched.clear()
        self.caching = caching

    def saw(self, keys: set[str], topology: bool) -> None:
        """An event about ``keys``; ``topology``: it may change what a name resolves to."""
        self.sequence += 1
        if len(self._touched) >= _TOUCHED:  # bounded: forget the keys, not their meaning
            self._touched.clear()
            self._floor = self.sequence
        for key in keys:
            self._touched[key] = self.sequence
        if topology:
            self.topology = self.sequence

    def touched(self, key: str) -> int:
        return max(self._touched.get(key, 0), self._floor)

    def fresh(self, began: int, keys: Sequence[str]) -> bool:
        """Whether an answer fetched from sequence ``began`` on may be kept."""
        return self.caching and all(self.touched(key) < began for key in keys)

    def arrived(self, when: float) -> None:
        """An event dated ``when`` (Unix time) arrived now: a late one means the stream
        trails the Engine, and kept answers wait until it catches up."""
        if time.time() - when > _BEHIND_SECONDS:
            self.behind_until = time.monotonic() + 2 * _BEHIND_SECONDS

    @property
    def serving(self) -> bool:
        """Whether kept answers may be served to callers: the event stream is up and does
        not trail the Engine (a caller's own ``since`` then covers any event the proxy has
        yet to see)."""
        return self.caching and time.monotonic() >= self.behind_until


class Kept:
    """The Engine's inspect answers (per container ID, per API version) and its /_ping
    answers, kept while no event touches them."""

    def __init__(self, upstream: Upstream, timeline: Timeline, flights: Flights) -> None:
        self.upstream = upstream
        self.timeline = timeline
        self.flights = flights
        # ID -> API version -> answer, least recently used first
        self._inspected: collections.OrderedDict[str, dict[str, Inspected]] = \
            collections.OrderedDict()
        self._bytes = 0  # the kept answers' bodies
        # the Engine's /_ping answers: a stream (re)connecting forgets them (a new Engine)
        self.pings = Remembered(_PING_SECONDS, flights, _PING_STALE_SECONDS)

    def clear(self) -> None:
        self._inspected.clear()
        self._bytes = 0
        self.pings.forget()

    def forget(self, keys: set[str]) -> None:
        for key in keys:
            versions = self._inspected.pop(key, None) or {}
            self._bytes -= sum(len(answer.body) for answer in versions.values())

    async def document(self, container_id: str) -> Optional[dict]:
        """The document the proxy itself reads (who calls, what it may see): in the
        Engine's own API version, whatever version the caller asked for."""
        found = await self.inspected(container_id, version="")
        return found.document if found is not None else None

    async def inspected(self, container_id: str, running: bool = False,
                        version: Optional[str] = None) -> Optional[Inspected]:
        """The Engine's answer to inspecting ``container_id`` (a full ID or a name) in the
        current request's API version (canonical, ``server.canonical_version``), kept while
        no event touches it; None if the Engine knows no such container. ``running``: a
        kept answer saying it is not running is asked again (the container asking about
        itself runs; its start event may be late)."""
        version = api_version.get() if version is None else version
        kept = self._inspected.get(container_id, {}).get(version)
        if kept is not None and (not running or _running(kept.document)):
            self._inspected.move_to_end(container_id)
            return kept
        return await self.flights.run(
            ("inspect", version, container_id, self.timeline.touched(container_id)),
            alone(lambda: self._inspect(container_id, version)))

    async def _inspect(self, container_id: str, version: str) -> Optional[Inspected]:
        began = self.timeline.sequence + 1
        status, headers, body = await self.upstream.fetch(
            "GET", f"{version}/containers/{quote(container_id)}/json")
        try:
            document = json.loads(body) if status == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return None
        found = Inspected(document, headers, body)
        found_id = str(document.get("Id"))
        if self.timeline.fresh(began, [container_id, found_id]):
            self._keep(found_id, version, found)
        return found

    def _keep(self, container_id: str, version: str, found: Inspected) -> None:
        """Kept, within ``_DOCUMENTS`` containers and ``_KEPT_BYTES`` bytes: the least
        recently used go first."""
        versions = self._inspected.setdefault(container_id, {})
        if version in versions:
            self._bytes -= len(versions[version].body)
        versions[version] = found
        self._bytes += len(found.body)
        self._inspected.move_to_end(container_id)
        while self._inspected and (len(self._inspected) > _DOCUMENTS
                                   or self._bytes > _KEPT_BYTES):
            _, evicted = self._inspected.popitem(last=False)
            self._bytes -= sum(len(answer.body) for answer in evicted.values())


def _running(document: dict) -> bool:
    return bool((document.get("State") or {}).get("Running"))
