"""`linkinit health` against an Engine on a Unix socket: one request for every child, and an
answer within its own time budget when the Engine is slow.

A fake Engine, as for the client's own tests: what is checked is what health asks and how
long it waits, which a real Engine cannot be made to show (tests/e2e/test_health.py runs it
against the real one).
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from linkinit.init import health
from linkinit.model.container import Port
from linkinit.model.declare import LinkSpec
from linkinit.model.envvars import ResolvedLink
from tests.support.fake_engine import FakeEngine, Step, json_answer

SUMMARIES = [{"Id": "a" * 64, "State": "running", "Status": "Up 1 minute (healthy)"},
             {"Id": "b" * 64, "State": "running", "Status": "Up 1 minute"}]


def links() -> List[ResolvedLink]:
    return [ResolvedLink("db", "web", "127.0.0.1", (Port(6379, "tcp"),), (), "db1", "h", "a" * 64),
            ResolvedLink("cache", "web", "127.0.0.1", (), (), "c1", "h", "b" * 64)]


SPECS = [LinkSpec("db", "db1", "healthy"), LinkSpec("cache", "c1", "started")]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "health.json"


def run(state: Path) -> tuple[int, str, float]:
    out = io.StringIO()
    started = time.monotonic()
    status = health.main([], {"LINKINIT_HEALTH_FILE": str(state)}, out, io.StringIO())
    return status, out.getvalue(), time.monotonic() - started


def serve(answer_steps: List[Step]) -> Iterator[FakeEngine]:
    fake = FakeEngine(lambda line: answer_steps)
    yield fake
    fake.close()


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    yield from serve([json_answer(SUMMARIES)])


@pytest.fixture
def slow_engine() -> Iterator[FakeEngine]:
    yield from serve([5.0, json_answer(SUMMARIES)])


def test_one_request_for_every_child_with_the_version_the_start_negotiated(engine, state):
    """No /_ping, no inspect per child: one list filtered by the IDs COMMAND was given."""
    health.record(str(state), engine.host, SPECS, links(), (1, 41))
    assert run(state)[:2] == (0, "linkinit: healthy (db, cache)\n")
    assert len(engine.requests) == 1
    line = engine.requests[0]
    assert line.startswith("GET /v1.41/containers/json?all=1&filters=")
    assert all(child in line for child in ("a" * 64, "b" * 64))


def test_a_slow_engine_is_unhealthy_within_a_second(slow_engine, state):
    """An Engine that takes 5 s to answer: 1 within the check's budget, saying so."""
    health.record(str(state), slow_engine.host, SPECS, links(), (1, 41))
    status, out, took = run(state)
    assert status == 1
    assert out.startswith("linkinit: unhealthy: the Engine did not answer: ")
    assert took < 1.5, f"took {took:.2f} s"


def test_a_child_missing_from_the_answer_fails_naming_its_link(engine, state):
    """The control: a child the Engine does not list (removed, recreated) is a failing line."""
    gone = [*links(), ResolvedLink("q", "web", "127.0.0.1", (), (), "q1", "h", "c" * 64)]
    health.record(str(state), engine.host, [*SPECS, LinkSpec("q", "q1", "started")], gone,
                  (1, 41))
    assert run(state)[:2] == (1, "linkinit: unhealthy: q (q1): the container COMMAND was "
                                 "given is gone\n")
