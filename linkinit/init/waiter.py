"""Waiting until every child is ready: a small object with its state in plain sight.

Each round the ``Waiter`` looks at the children not ready yet, decides (all ready, time
out, or go on), and pauses until an Engine event, the next port probe or the deadline. What
it must remember between rounds is in its attributes, named: what each child looked like,
whether the documents are stale, how far each backoff has gone. Time and wake-ups come from
a clock and a wake source passed in, so unit tests drive it with fakes; the real wake source
follows the Engine's event stream, so readiness is noticed when it happens.
"""

from __future__ import annotations

import time

from linkinit.engine.kinds import DOCKER
from linkinit.errors import EngineError, EngineUnreachable, NotReady
from linkinit.init.readiness import (
    MISSING,
    PROBING,
    Observation,
    answerer,
    check_port,
    observe,
    port_open,
)
from linkinit.model import swarm

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

    from linkinit.engine.client import Engine
    from linkinit.init.readiness import AskChild, Probe
    from linkinit.model.declare import LinkSpec

    Report = Callable[[str], None]
    Find = Callable[[LinkSpec], Optional[dict]]

# Pauses while the Engine does not answer (each retry takes the next, the last repeats).
ENGINE_RETRY_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
# Pauses while a running child's port is closed: a refused connect costs next to nothing
# (~0.1 ms, no Engine request: the child's document is reused until an event says it
# changed), so probe every 20 ms and notice the port ~10 ms after it opens, on average.
# A protocol probe or an ``exec:`` command that says "not yet" is tried again the same way.
PORT_PROBE_DELAYS = (0.01, 0.02)
# Pauses while a swarm service has no task ready: the Engine sends no task events
# (swarm.py), so its tasks are asked for again, one request per look.
SERVICE_POLL_DELAYS = (0.1, 0.2, 0.5, 1.0)


class SystemClock:
    """Real time: ``monotonic`` for deadlines, ``time`` for the Engine's ``since``."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


class Waiter:
    """Looks at ``specs`` until each is ready (or optional and absent), or time runs out.

    ``find`` returns a child's inspect document (None when absent) and may raise an
    ``EngineError``; retryable ones are tried again until the deadline, others end the wait.
    ``wake_source(since, matters)`` is called once, when the first pause is needed, and
    returns an object whose ``wait(seconds) -> bool`` sleeps until an event for which
    ``matters(event)`` is true (True) or the time is up (False). ``absent_reason(spec)`` says
    why an absent child was not shown, where the Engine said more than "not found" (the
    proxy's refusal): the waiting and timeout lines then carry it.
    """

    def __init__(
        self,
        specs: Sequence[LinkSpec],
        parent: Mapping[str, Any],
        find: Find,
        timeout: float,
        report: Report,
        wake_source: Callable[..., Any],
        probe: Probe = port_open,
        clock: Any = SystemClock,
        absent_reason: Optional[Callable[[LinkSpec], str]] = None,
        ask: Optional[AskChild] = None,
    ) -> None:
        self.specs = list(specs)
        self.parent = parent
        self.find = find
        self.report = report
        self.probe = probe
        self.ask = ask or answerer(parent)  # protocol probes and exec: (readiness.py)
        self.clock = clock
        self.started_at = clock.time()
        self.deadline = clock.monotonic() + timeout
        self._wake_source = wake_source
        self._absent_reason = absent_reason
        self.wake: Any = None  # made at the first pause: most starts find every child ready
        self.seen: dict[str, Observation] = {}
        self.looked_once = False  # after the first look, absent optional children are dropped
        self.stale = True  # documents must be inspected again (an event, or a first look)
        self.engine_error: Optional[EngineError] = None  # the last look's, if it failed
        self.engine_retries = 0
        self.port_probes = 0
        self.service_polls = 0
        self.polling = False  # the pause ends on a timer that must look again (a service)

    def run(self) -> list[tuple[LinkSpec, Observation]]:
        """Every spec with its ready observation; NotReady (75) or the Engine's error else."""
        while True:
            self.look()
            ready = self.outcome()
            if ready is not None:
                return ready
            self.pause()

    def unready(self) -> list[LinkSpec]:
        return [s for s in self.specs if not (s.alias in self.seen and self.seen[s.alias].ready)]

    def look(self) -> None:
        """One look at each child not ready yet; stops at the first retryable Engine error."""
        self.engine_error = None
        for spec in self.unready():
            try:
                now = self._look_at(spec)
            except EngineError as error:
                if not error.retryable:
                    raise
                self.engine_error = error
                return
            self._record(spec, now)
        if not self.looked_once:
            self._drop_absent_optional()
            self.looked_once = True

    def _look_at(self, spec: LinkSpec) -> Observation:
        before = self.seen.get(spec.alias)
        if not self.stale and before is not None and before.phase in PROBING:
            # nothing happened: only the port, or the child's answer, can change
            return check_port(before, self.probe, spec, self.ask)
        now = observe(spec, self.parent, self.find(spec), self.probe, self.ask)
        reason = self._absent_reason(spec) if self._absent_reason and now.phase == MISSING else ""
        if reason:
            return Observation(MISSING, f"missing: {reason}", "")  # the state says it all
        return now

    def _record(self, spec: LinkSpec, now: Observation) -> None:
        before = self.seen.get(spec.alias)
        self.seen[spec.alias] = now
        if spec.wait == "none" or (before is None and now.ready):
            return  # nothing to tell: not waited for, or ready at the first look
        if before is None:
            self.report(f"waiting for {spec.alias} ({spec.child}): {now.state}")
        elif before.state != now.state:
            self.report(f"waiting for {spec.alias} ({spec.child}): {before.state} -> {now.state}")

    def _drop_absent_optional(self) -> None:
        kept = []
        for spec in self.specs:
            seen = self.seen.get(spec.alias)
            if spec.optional and seen is not None and seen.container is None:
                self.report(f"{spec.alias} ({spec.child}) is optional and absent: skipped")
            else:
                kept.append(spec)
        self.specs = kept

    def outcome(self) -> Optional[list[tuple[LinkSpec, Observation]]]:
        """All ready: the result. Out of time (or ``wait=none`` not ready): raise. Else None."""
        unready = self.unready()
        remaining = self.deadline - self.clock.monotonic()
        if self.engine_error is not None:
            if remaining <= 0:
                raise EngineUnreachable(f"{self.engine_error} (retried until the timeout)")
            return None
        if not unready:
            return [(spec, self.seen[spec.alias]) for spec in self.specs]
        if remaining <= 0 or any(spec.wait == "none" for spec in unready):
            waited = self.clock.time() - self.started_at
            raise NotReady(not_ready_message(unready, self.seen, waited))
        return None

    def next_pause(self) -> float:
        """Until the deadline, or sooner: the next Engine retry, port probe or look at a
        service's tasks."""
        pause = max(self.deadline - self.clock.monotonic(), 0.0)
        self.polling = False
        if self.engine_error is not None:
            self.engine_retries += 1
            return min(pause, _step(ENGINE_RETRY_DELAYS, self.engine_retries - 1))
        unready = [self.seen[s.alias] for s in self.unready()]
        if any(seen.phase in PROBING for seen in unready):
            self.port_probes += 1
            return min(pause, _step(PORT_PROBE_DELAYS, self.port_probes - 1))
        if any(seen.container and swarm.is_service(seen.container) for seen in unready):
            self.polling = True
            self.service_polls += 1
            return min(pause, _step(SERVICE_POLL_DELAYS, self.service_polls - 1))
        return pause

    def matters(self, event: Mapping[str, Any]) -> bool:
        """Whether an Engine event may change how an unready child looks: one about a child
        found already, a service's (a service child has no container here), or, while a
        child is missing, a container created or renamed (it may be the one). Others on a
        busy host (a hundred parents starting at once) wake no one: each waiter would inspect
        again at every one of them."""
        if event.get("Type") == "service":
            return True
        actor = str((event.get("Actor") or {}).get("ID") or "")
        missing = False
        for spec in self.unready():
            seen = self.seen.get(spec.alias)
            if seen is None or seen.container is None:
                missing = True
            elif actor and actor == str(seen.container.get("Id") or ""):
                return True
        return missing and event.get("Action") in ("create", "rename")

    def pause(self) -> None:
        if self.wake is None:
            self.wake = self._wake_source(self.started_at - 1, self.matters)
        woken = self.wake.wait(self.next_pause())
        self.stale = woken or self.polling or self.engine_error is not None


def _step(delays: Sequence[float], taken: int) -> float:
    """The pause after ``taken`` earlier ones: the next of ``delays``, the last repeating."""
    return delays[min(taken, len(delays) - 1)]


def not_ready_message(
    unready: Iterable[LinkSpec], seen: Mapping[str, Observation], waited: float
) -> str:
    """One line per child: alias, child, time waited, wait mode, state and last detail."""
    return "\n".join(
        f"{s.alias} ({s.child}) not ready after {waited:.0f}s (wait={s.wait}): "
        f"{seen[s.alias].state}"
        + (f"; last seen: {seen[s.alias].detail}" if seen[s.alias].detail else "")
        for s in unready
    )


class EventWatcher:
    """Wakes the waiter when the Engine reports a container event (a daemon thread).

    Subscribed from a moment before the first look, so an event between a look and the
    next wait is never missed; after a broken stream it reconnects and wakes the waiter,
    which looks again at everything (the Engine's buffer may have dropped events).
    """

    def __init__(self, engine: Engine, since: float, containers: Sequence[str] = (),
                 matters: Optional[Callable[[Mapping[str, Any]], bool]] = None) -> None:
        self._engine = engine
        self._since = since
        self._matters = matters  # None: every event wakes
        # only these (names or IDs; a service's events match its name or ID too): another
        # container's events wake no one. The event types and names are the engine's own,
        # known after the first ping (_follow).
        self._filters: dict[str, list[str]] = {"container": list(containers)} if containers else {}
        import threading  # only a wait needs it: most starts find every child ready

        self._wake = threading.Event()
        threading.Thread(target=self._follow, name="linkinit-events", daemon=True).start()

    def _follow(self) -> None:
        delay = 0.05
        while True:
            try:
                if getattr(self._engine, "api_version", True) is None:
                    self._engine.ping()  # which engine: its events have their own names
                kind = getattr(self._engine, "kind", DOCKER)
                filters = dict(self._filters, event=list(kind.waking_events),
                               type=list(kind.event_types))
                for event in self._engine.events(filters, since=self._since):
                    delay = 0.05
                    if self._matters is None or self._matters(event):
                        self._wake.set()
            except EngineError:
                pass
            self._since = time.time() - 1
            self._wake.set()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def wait(self, timeout: float) -> bool:
        """Sleep until woken or ``timeout``; True if an event (or a reconnect) woke us."""
        woken = self._wake.wait(max(timeout, 0))
        self._wake.clear()
        return woken
