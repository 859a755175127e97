"""The wait loop, driven by a fake clock and a scripted Engine: every branch, no socket.

A ``Timeline`` says what the Engine answers for each child from which (fake) second on;
its wake source sleeps the fake clock until the next change, as the Engine's event stream
would wake the real waiter. Probes are scripted the same way.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import pytest

from linkinit.errors import EngineRefused, EngineUnreachable, NotReady
from linkinit.init.readiness import PORT_CLOSED, READY
from linkinit.init.waiter import ENGINE_RETRY_DELAYS, PORT_PROBE_DELAYS, Waiter
from linkinit.model.declare import LinkSpec

PARENT = {"Id": "p" * 64, "Name": "/webapp",
          "NetworkSettings": {"Networks": {"demo": {"IPAddress": "172.18.0.3"}}}}


def child(status: str = "running", health: Optional[str] = None) -> dict:
    state: dict = {"Status": status, "Running": status == "running", "ExitCode": 0}
    if health:
        state["Health"] = {"Status": health, "Log": []}
    return {"Id": "c" * 64, "Name": "/db1", "State": state,
            "Config": {"ExposedPorts": {"6379/tcp": {}}},
            "NetworkSettings": {"Networks": {"demo": {"IPAddress": "172.18.0.2"}}}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


class Timeline:
    """What ``find`` answers from which time on, per child; an Exception is raised."""

    def __init__(self, clock: Clock, script: Dict[str, List[Tuple[float, object]]]) -> None:
        self.clock = clock
        self.script = script
        self.finds: List[Tuple[float, str]] = []
        self.pauses: List[float] = []
        self.wakes_made = 0

    def at(self, child_name: str) -> object:
        current = None
        for start, answer in self.script.get(child_name, []):
            if self.clock.now >= start:
                current = answer
        return current

    def find(self, spec: LinkSpec) -> Optional[dict]:
        self.finds.append((self.clock.now, spec.child))
        answer = self.at(spec.child)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    def wake_source(self, since: float, matters: object = None) -> Timeline:
        self.wakes_made += 1
        return self

    def wait(self, timeout: float) -> bool:
        """Sleep the fake clock until the next scripted change (an event) or the timeout."""
        self.pauses.append(round(timeout, 3))
        now = self.clock.now
        changes = [t for steps in self.script.values() for t, _ in steps if t > now]
        nearest = min(changes, default=None)
        if nearest is not None and nearest <= now + timeout:
            self.clock.now = nearest
            return True
        self.clock.now += timeout
        return False


def make(specs: List[LinkSpec], script: Dict[str, List[Tuple[float, object]]],
         timeout: float = 60.0, probe: Callable[[str, int], bool] = lambda a, p: True,
         ) -> Tuple[Waiter, Timeline, List[str]]:
    clock = Clock()
    timeline = Timeline(clock, script)
    lines: List[str] = []
    waiter = Waiter(specs, PARENT, timeline.find, timeout, lines.append,
                    wake_source=timeline.wake_source, probe=probe, clock=clock)
    return waiter, timeline, lines


def spec(wait: str = "listening", optional: bool = False, child_name: str = "db1",
         alias: str = "redis") -> LinkSpec:
    return LinkSpec(alias, child_name, wait, optional, f"label link.{alias}")


def test_children_ready_at_the_first_look_need_no_event_stream_and_say_nothing() -> None:
    waiter, timeline, lines = make([spec()], {"db1": [(0, child())]})
    ready = waiter.run()
    assert [(s.alias, seen.phase) for s, seen in ready] == [("redis", READY)]
    assert timeline.wakes_made == 0 and lines == [] and len(timeline.finds) == 1


def test_a_child_that_appears_later_is_noticed_at_its_event() -> None:
    """Missing at first, started at t=5: one progress line per change, done at t=5."""
    waiter, timeline, lines = make([spec()], {"db1": [(5, child())]})
    waiter.run()
    assert lines == ["waiting for redis (db1): missing",
                     "waiting for redis (db1): missing -> listening"]
    assert timeline.clock.now == 5
    assert timeline.wakes_made == 1


def test_a_child_never_ready_times_out_at_the_deadline_with_its_last_state() -> None:
    waiter, timeline, _ = make([spec("healthy")], {"db1": [(0, child(health="starting"))]},
                               timeout=10)
    with pytest.raises(NotReady) as caught:
        waiter.run()
    assert str(caught.value) == ("redis (db1) not ready after 10s (wait=healthy): starting; "
                                 "last seen: health starting")
    assert timeline.clock.now == 10
    assert len(timeline.finds) == 2  # the first look and the one at the deadline


def test_a_closed_port_is_probed_again_without_inspecting_again() -> None:
    """No event: the document holds, only the port can change; probes back off to 20 ms."""
    answers = iter([False, False, False, False, True])
    waiter, timeline, lines = make([spec()], {"db1": [(0, child())]},
                                   probe=lambda address, port: next(answers))
    waiter.run()
    assert len(timeline.finds) == 1
    assert timeline.pauses == [0.01, 0.02, 0.02, 0.02] == [
        *PORT_PROBE_DELAYS, *[PORT_PROBE_DELAYS[-1]] * (4 - len(PORT_PROBE_DELAYS))]
    assert lines == ["waiting for redis (db1): port 6379 closed",
                     "waiting for redis (db1): port 6379 closed -> listening"]


def test_an_event_while_the_port_is_closed_makes_the_next_look_inspect_again() -> None:
    """The child restarted (an event): its old document no longer holds."""
    probes: List[Tuple[str, int]] = []

    def probe(address: str, port: int) -> bool:
        probes.append((address, port))
        return len(probes) > 1

    restarted = child()
    restarted["NetworkSettings"]["Networks"]["demo"]["IPAddress"] = "172.18.0.9"
    waiter, timeline, _ = make([spec()], {"db1": [(0, child()), (0.005, restarted)]},
                               probe=probe)
    ready = waiter.run()
    assert len(timeline.finds) == 2
    assert probes == [("172.18.0.2", 6379), ("172.18.0.9", 6379)]
    assert ready[0][1].address == "172.18.0.9"


def test_an_engine_that_fails_at_first_is_retried_with_backoff() -> None:
    down = EngineUnreachable("cannot reach the Docker Engine")
    waiter, timeline, _ = make([spec()], {"db1": [(0, down), (0.1, child())]})
    waiter.run()
    assert timeline.pauses[:3] == list(ENGINE_RETRY_DELAYS[:3])


def test_an_engine_that_never_answers_is_unreachable_after_the_timeout() -> None:
    down = EngineUnreachable("cannot reach the Docker Engine")
    waiter, _, _ = make([spec()], {"db1": [(0, down)]}, timeout=3)
    with pytest.raises(EngineUnreachable, match=r"retried until the timeout"):
        waiter.run()


def test_a_refusal_is_not_retried() -> None:
    refused = EngineRefused("the Docker Engine refused GET /v1.41/containers/db1/json (403)")
    waiter, timeline, _ = make([spec()], {"db1": [(0, refused)]})
    with pytest.raises(EngineRefused):
        waiter.run()
    assert timeline.pauses == []


def test_an_optional_child_absent_at_the_first_look_is_skipped() -> None:
    waiter, _, lines = make([spec(optional=True), spec(child_name="db2", alias="cache")],
                            {"db2": [(0, child())]})
    ready = waiter.run()
    assert [s.alias for s, _ in ready] == ["cache"]
    assert lines == ["waiting for redis (db1): missing",
                     "redis (db1) is optional and absent: skipped"]


def test_an_optional_child_that_exists_is_waited_for() -> None:
    waiter, _, _ = make([spec(optional=True)], {"db1": [(0, child("created")), (2, child())]})
    assert [s.alias for s, _ in waiter.run()] == ["redis"]


def test_wait_none_does_not_wait_and_prints_no_waiting_line() -> None:
    """``wait=none``: resolve once; a child not running is 75 at once, with no progress."""
    waiter, timeline, lines = make([spec("none")], {"db1": [(0, child("exited"))]})
    with pytest.raises(NotReady, match=r"redis \(db1\) not ready after 0s \(wait=none\)"):
        waiter.run()
    assert lines == [] and timeline.pauses == []


def test_each_child_is_reported_on_its_own_and_ready_ones_are_not_looked_at_again() -> None:
    waiter, timeline, lines = make(
        [spec(), spec(child_name="db2", alias="cache")],
        {"db1": [(0, child())], "db2": [(0, child("created")), (3, child())]},
    )
    waiter.run()
    assert [name for _, name in timeline.finds] == ["db1", "db2", "db2"]
    assert lines == ["waiting for cache (db2): created",
                     "waiting for cache (db2): created -> listening"]


def test_a_closed_port_phase_is_what_the_waiter_acts_on() -> None:
    """The phase constant, not the words of the state, drives probing."""
    waiter, _, _ = make([spec()], {"db1": [(0, child())]}, probe=lambda a, p: False, timeout=1)
    with pytest.raises(NotReady):
        waiter.run()
    assert waiter.seen["redis"].phase == PORT_CLOSED


def event(action: str, actor: str, kind: str = "container") -> dict:
    return {"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": {}}}


def test_only_events_that_may_change_an_unready_child_wake_the_waiter() -> None:
    """A hundred parents starting at once must not each inspect again at every start."""
    waiter, _, _ = make([spec(), spec(child_name="db2", alias="cache")],
                        {"db1": [(0, child("created"))]})
    waiter.look()  # db1 found (not running), db2 missing
    assert waiter.matters(event("start", "c" * 64))  # about db1
    assert waiter.matters(event("create", "x" * 64))  # may be db2
    assert waiter.matters(event("update", "svc1", kind="service"))
    assert not waiter.matters(event("start", "x" * 64))  # another container starting
    assert not waiter.matters(event("die", "x" * 64))


def test_once_every_child_is_found_a_creation_elsewhere_wakes_no_one() -> None:
    waiter, _, _ = make([spec()], {"db1": [(0, child("created"))]})
    waiter.look()
    assert not waiter.matters(event("create", "x" * 64))
    assert waiter.matters(event("destroy", "c" * 64))


REFUSAL = ("No such container: db1 (this container sees only itself and the children it "
           "links; links declared only in a YAML file inside the container are not proof)")


def test_a_refusal_reason_is_in_the_waiting_line_and_the_timeout_line() -> None:
    """An absent child the Engine (the proxy) said why it does not show: the reason is on
    the first waiting line, and the timeout line gives it once."""
    clock = Clock()
    timeline = Timeline(clock, {"db1": []})
    lines: List[str] = []
    waiter = Waiter([spec()], PARENT, timeline.find, 10, lines.append,
                    wake_source=timeline.wake_source, clock=clock,
                    absent_reason=lambda s: REFUSAL if s.child == "db1" else "")
    with pytest.raises(NotReady) as caught:
        waiter.run()
    assert lines == [f"waiting for redis (db1): missing: {REFUSAL}"]
    assert str(caught.value) == (
        f"redis (db1) not ready after 10s (wait=listening): missing: {REFUSAL}")


def test_without_a_reason_a_missing_child_reads_as_before() -> None:
    waiter, _, lines = make([spec()], {"db1": []}, timeout=10)
    with pytest.raises(NotReady) as caught:
        waiter.run()
    assert lines == ["waiting for redis (db1): missing"]
    assert str(caught.value).endswith(": missing; last seen: no container answers to this name")
