"""One upstream request per question at a time, for the proxy.

When a hundred parents start at once they ask the same things together: the Engine's
``/_ping``, the same child's inspect document. The first asker's request goes to the Engine;
the others wait for its answer instead of sending their own, so a storm of parents costs the
Engine one request per distinct question, not one per parent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Hashable, Optional


class Flights:
    """Requests in flight by key; askers of a key already in flight share its answer (or its
    error). ``on_wait`` gets the seconds each asker waited, so a shared wait is counted as
    waiting for the Engine, not as the proxy's own time."""

    def __init__(self, on_wait: Optional[Callable[[float], None]] = None) -> None:
        self._running: dict[Hashable, asyncio.Future] = {}
        self._on_wait = on_wait

    def __len__(self) -> int:
        return len(self._running)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._running

    def start(self, key: Hashable, ask: Callable[[], Awaitable[Any]]) -> asyncio.Future:
        """The flight for ``key``: the one in the air, else ``ask`` sent now."""
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(ask())
            self._running[key] = running
            running.add_done_callback(lambda done: self._landed(key, done))
        return running

    async def run(self, key: Hashable, ask: Callable[[], Awaitable[Any]]) -> Any:
        running = self.start(key, ask)
        started = time.monotonic()
        try:
            return await asyncio.shield(running)  # an asker hanging up cancels only itself
        finally:
            if self._on_wait is not None:
                self._on_wait(time.monotonic() - started)

    def _landed(self, key: Hashable, done: asyncio.Future) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every asker may have hung up


class Remembered:
    """A few answers kept (the Engine's ``/_ping``), asked once per key whatever the number
    of askers (``Flights``). An answer younger than ``seconds`` is served as is; one younger
    than ``stale_seconds`` is served too, while a fresh one is asked for in the background
    (the askers never wait for a busy Engine to say what it said a second ago)."""

    def __init__(self, seconds: float, flights: Flights, stale_seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.stale_seconds = max(stale_seconds, seconds)
        self._flights = flights
        self._kept: dict[Hashable, tuple[float, Any]] = {}

    async def get(self, key: Hashable, ask: Callable[[], Awaitable[Any]],
                  keep: Callable[[Any], bool]) -> Any:
        """The answer kept for ``key`` if fresh enough, else ``ask``'s (kept if ``keep``
        says so)."""
        kept = self._kept.get(key)
        age = time.monotonic() - kept[0] if kept is not None else float("inf")
        if kept is not None and age < self.stale_seconds:
            if age >= self.seconds and key not in self._flights:
                self._refresh(key, ask, keep)
            return kept[1]
        asked_at = time.monotonic()
        answer = await self._flights.run(key, ask)
        self._keep(key, asked_at, answer, keep)
        return answer

    def _refresh(self, key: Hashable, ask: Callable[[], Awaitable[Any]],
                 keep: Callable[[Any], bool]) -> None:
        """Ask again in the background; an Engine away leaves the kept answer to age out
        (the next asker after that waits and hears why)."""
        asked_at = time.monotonic()

        def landed(done: asyncio.Future) -> None:
            if not done.cancelled() and done.exception() is None:
                self._keep(key, asked_at, done.result(), keep)

        self._flights.start(key, ask).add_done_callback(landed)

    def _keep(self, key: Hashable, asked_at: float, answer: Any,
              keep: Callable[[Any], bool]) -> None:
        if keep(answer):
            self._kept[key] = (asked_at, answer)
        else:
            self._kept.pop(key, None)

    def forget(self) -> None:
        self._kept.clear()
