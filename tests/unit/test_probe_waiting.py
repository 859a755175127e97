"""Probes are asked where the port probe was: after the child runs (and is healthy), then
again at the port probe's pace, without inspecting again; what the child said is the state.

Driven by the fake clock and scripted Engine of test_waiter; the child's answers are
scripted too (an ``ask`` that replays them), so no socket is opened.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import pytest

from linkinit.engine.kinds import HealthchecksOnDemand
from linkinit.errors import NotReady
from linkinit.init.probes import Answer
from linkinit.init.readiness import NOT_SERVING, READY, Observation, observe, probe_port
from linkinit.init.waiter import PORT_PROBE_DELAYS, Waiter
from linkinit.model.declare import LinkSpec
from tests.unit.test_podman_differences import ID, FakeClock, FakePodman, with_healthcheck
from tests.unit.test_waiter import PARENT, Clock, Timeline, child

STARTING = Answer(False, "the database system is starting up (57P03)")
SERVING = Answer(True, "asks for authentication")


class Replies:
    """An ``ask`` that gives the scripted answers in turn (the last repeats), and records
    each spec's wait, the address and port it would have asked, and when."""

    def __init__(self, clock: Clock, answers: List[Answer]) -> None:
        self.clock = clock
        self.answers = answers
        self.asked: List[Tuple[float, str, str, Optional[int]]] = []

    def __call__(self, spec: LinkSpec, seen: Observation) -> Answer:
        self.asked.append((self.clock.now, spec.wait, seen.address,
                           probe_port(spec, seen.container or {})))
        return self.answers[min(len(self.asked) - 1, len(self.answers) - 1)]


def waiter_for(spec: LinkSpec, script: dict, answers: List[Answer], timeout: float = 60.0):
    clock = Clock()
    timeline = Timeline(clock, script)
    replies = Replies(clock, answers)
    lines: List[str] = []
    waiter = Waiter([spec], PARENT, timeline.find, timeout, lines.append,
                    wake_source=timeline.wake_source, clock=clock, ask=replies)
    return waiter, timeline, replies, lines


def pg(wait: str = "postgres", port: Optional[int] = None) -> LinkSpec:
    return LinkSpec("db", "db1", wait, False, "label link.db", port=port)


def test_a_starting_postgres_is_asked_again_until_it_serves_and_each_answer_is_shown():
    """57P03 three times, then an authentication request: ready, two progress lines."""
    waiter, timeline, replies, lines = waiter_for(
        pg(), {"db1": [(0.0, child())]}, [STARTING, STARTING, STARTING, SERVING])
    [(_, seen)] = waiter.run()
    assert seen.ready and seen.state == "postgres: ready"
    assert lines == [
        "waiting for db (db1): postgres: the database system is starting up (57P03)",
        "waiting for db (db1): postgres: the database system is starting up (57P03) -> "
        "postgres: ready",
    ]
    assert len(timeline.finds) == 1, "a probe that says 'not yet' needs no new inspect"
    assert timeline.pauses == [PORT_PROBE_DELAYS[0], PORT_PROBE_DELAYS[1], PORT_PROBE_DELAYS[1]]
    assert [(wait, address) for _, wait, address, _ in replies.asked] == [
        ("postgres", "172.18.0.2")] * 4


def test_a_child_that_never_serves_times_out_with_75_naming_what_it_said():
    waiter, _, _, _ = waiter_for(
        pg("redis"), {"db1": [(0.0, child())]},
        [Answer(False, "not a Redis answer: 'HTTP/1.0 400 Bad Request..'")], timeout=2)
    with pytest.raises(NotReady) as raised:
        waiter.run()
    assert str(raised.value) == (
        "db (db1) not ready after 2s (wait=redis): redis: not a Redis answer: 'HTTP/1.0 400 "
        "Bad Request..'; last seen: 172.18.0.2:6379 answered: not a Redis answer: "
        "'HTTP/1.0 400 Bad Request..'")
    assert raised.value.exit_status == 75


@pytest.mark.parametrize("document", [child("created"), child("running", "starting"),
                                      child("exited"), None])
def test_a_child_is_never_asked_before_it_runs_and_is_healthy(document):
    """The Engine's word comes first: no probe of a child that is absent, down or starting."""
    clock = Clock()
    replies = Replies(clock, [SERVING])
    seen = observe(pg(), PARENT, document, ask=replies)
    assert not seen.ready
    assert replies.asked == []


def test_started_healthy_then_asked():
    """Created, then running but starting its healthcheck, then healthy: asked from then."""
    script = {"db1": [(0.0, child("created")), (1.0, child("running", "starting")),
                      (2.0, child("running", "healthy"))]}
    waiter, _, replies, lines = waiter_for(pg(), script, [STARTING, SERVING])
    waiter.run()
    assert replies.asked[0][0] == 2.0
    assert lines[-1].endswith("-> postgres: ready")


@pytest.mark.parametrize(
    ("wait", "port", "exposed", "asked"),
    [
        pytest.param("postgres", None, ["5432/tcp"], 5432, id="the-exposed-port"),
        pytest.param("postgres", 5433, ["5432/tcp"], 5433, id="the-port-label-wins"),
        pytest.param("postgres", None, [], 5432, id="postgres-default"),
        pytest.param("redis", None, [], 6379, id="redis-default"),
        pytest.param("mysql", None, ["53/udp"], 3306, id="mysql-default-udp-ignored"),
        pytest.param("http:/", None, [], 80, id="http-default"),
        pytest.param("http:/", None, ["8080/tcp", "9000/tcp"], 8080, id="http-lowest-tcp"),
    ],
)
def test_which_port_a_probe_asks(wait, port, exposed, asked):
    document = child()
    document["Config"]["ExposedPorts"] = {p: {} for p in exposed}
    assert probe_port(pg(wait, port), document) == asked


def test_listening_with_a_port_label_probes_that_port():
    calls = []
    seen = observe(pg("listening", 8443), PARENT, child(),
                   probe=lambda address, port: calls.append((address, port)) or True)
    assert seen.ready and calls == [("172.18.0.2", 8443)]


def test_an_exec_probe_names_its_command_and_last_line_in_the_detail_only():
    """Progress lines show the status (stable from try to try), the timeout its output."""
    clock = Clock()
    seen = observe(pg("exec:pg_isready"), PARENT, child(),
                   ask=Replies(clock, [Answer(False, "exited 1", "rejecting connections")]))
    assert (seen.phase, seen.state, seen.detail) == (
        NOT_SERVING, "exec: exited 1", "'pg_isready' answered: exited 1: rejecting connections")


def test_a_serving_answer_is_ready_with_what_it_said():
    seen = observe(pg(), PARENT, child(), ask=Replies(Clock(), [SERVING]))
    assert (seen.phase, seen.state, seen.detail) == (
        READY, "postgres: ready", "172.18.0.2:6379 answered: asks for authentication")


@pytest.mark.parametrize("wait", ["redis", "postgres", "mysql", "http:/health", "exec:true"])
def test_on_podman_a_probed_child_gets_its_healthcheck_run_as_listening_does(wait):
    """Probes wait for health first, so where nothing runs the checks, linkinit runs them."""
    podman = FakePodman(passes=True)
    HealthchecksOnDemand(podman, FakeClock()).checked(wait, with_healthcheck("starting"))
    assert podman.runs == [ID]
