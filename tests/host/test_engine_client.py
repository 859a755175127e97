"""The Engine client against a fake Engine on a Unix socket: framing, deadlines, errors.

Each case scripts the bytes the Engine sends; the real Engine is exercised end to end in
tests/e2e. What is checked here is what a real Engine rarely does on demand: chunk, break
off, hang, trickle, or answer with an error.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkinit.engine.client import MAX_API_VERSION, Engine
from linkinit.errors import (
    EX_UNAVAILABLE,
    EX_USAGE,
    AmbiguousReference,
    EngineBusy,
    EngineProtocolError,
    EngineRefused,
    EngineUnreachable,
    NotSwarmManager,
)
from linkinit.model import swarm
from tests.support.fake_engine import CLOSE, FakeEngine, Step, chunked, http, json_answer, ping

DOC = {"Id": "c" * 64, "Name": "/db1", "Config": {"Env": ["A=1"]}}


def serving(*answers: List[Step], api: str = "1.41") -> Iterator[FakeEngine]:
    """A fake Engine that answers /_ping, then each other request with the next answer."""
    queue = list(answers)

    def answer(line: str) -> List[Step]:
        if line.startswith("GET /_ping"):
            return [ping(api)]
        return queue.pop(0) if queue else [http(500, b'{"message": "no answer scripted"}')]

    engine = FakeEngine(answer)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeEngine]:
    yield from serving(*request.param)


def scripted(*answers: List[Step]):
    return pytest.mark.parametrize("fake", [answers], indirect=True)


# -- answers read right ---------------------------------------------------------------------


@scripted([json_answer(DOC)])
def test_a_json_answer_with_content_length_is_read(fake: FakeEngine) -> None:
    """Content-Length framing: the document comes back as sent."""
    assert Engine(fake.host).inspect_container("db1") == DOC


@scripted([http(200, chunked(json.dumps(DOC).encode(), (5, 1, 30)),
                ["Transfer-Encoding: chunked"], length=False)])
def test_a_chunked_answer_is_read(fake: FakeEngine) -> None:
    """A proxy or another engine may chunk even an HTTP/1.0 answer: it is decoded."""
    assert Engine(fake.host).inspect_container("db1") == DOC


@scripted([http(200, json.dumps(DOC).encode(), length=False), CLOSE])
def test_an_answer_without_length_ends_at_the_close(fake: FakeEngine) -> None:
    """HTTP/1.0 without Content-Length: the body is everything until the connection closes."""
    assert Engine(fake.host).inspect_container("db1") == DOC


@given(body=st.binary(max_size=300), sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6))
@settings(max_examples=40, deadline=None)
def test_property_chunked_bodies_decode_to_what_was_sent(body: bytes, sizes: List[int]) -> None:
    """Whatever the chunk sizes, the decoded body is the body."""
    document = {"blob": body.hex()}
    raw = json.dumps(document).encode()
    for fake in serving([http(200, chunked(raw, sizes), ["Transfer-Encoding: chunked"],
                              length=False)]):
        assert Engine(fake.host).get("/x") == document


# -- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "path"),
    [("1.41", "/v1.41/"), ("1.43", "/v1.43/"), ("1.99", "/v{}.{}/".format(*MAX_API_VERSION)),
     ("", "/v1.41/")],
    ids=["docker-20.10", "older-than-the-cap", "newer-than-the-cap", "no-version-header"],
)
def test_paths_carry_the_engines_version_capped_at_what_linkinit_knows(server: str,
                                                                        path: str) -> None:
    """The version comes from /_ping, so answers keep the shape linkinit was checked on."""
    for fake in serving([json_answer(DOC)], api=server):
        Engine(fake.host).inspect_container("db1")
        assert fake.requests[0].startswith("GET /_ping ")
        assert fake.requests[1].startswith(f"GET {path}containers/db1/json ")


# -- errors, each its own type ------------------------------------------------------------------


@scripted([json_answer({"message": "No such container: db1"}, status=404)])
def test_a_404_is_an_absent_container(fake: FakeEngine) -> None:
    assert Engine(fake.host).inspect_container("db1") is None


@scripted([json_answer({"message": "multiple IDs found with provided prefix: c"}, status=400)])
def test_an_ambiguous_prefix_is_a_usage_error(fake: FakeEngine) -> None:
    """The Engine's "multiple IDs" answer is the user's to settle: 64, not retried."""
    with pytest.raises(AmbiguousReference) as caught:
        Engine(fake.host).inspect_container("c")
    assert caught.value.exit_status == EX_USAGE and not caught.value.retryable
    assert "multiple IDs" in str(caught.value)


@scripted([json_answer({"message": "linkinit proxy: exec is not allowed"}, status=403)])
def test_a_refusal_names_the_request_and_the_engines_message(fake: FakeEngine) -> None:
    """403 (a proxy's refusal): not retried, 69, and the message says what was refused."""
    with pytest.raises(EngineRefused) as caught:
        Engine(fake.host).get("/containers/db1/json")
    error = caught.value
    assert (error.exit_status, error.http_status, error.retryable) == (EX_UNAVAILABLE, 403, False)
    assert "refused GET /v1.41/containers/db1/json (403): linkinit proxy: exec is not allowed" \
        in str(error)


@scripted([json_answer({"message": "database is locked"}, status=500)])
def test_a_5xx_is_retryable(fake: FakeEngine) -> None:
    """A fault on the Engine's side may pass: retryable, 69 once retries run out."""
    with pytest.raises(EngineBusy) as caught:
        Engine(fake.host).inspect_container("db1")
    assert caught.value.retryable and caught.value.http_status == 500
    assert "database is locked" in str(caught.value)


WORKER_503 = ("This node is not a swarm manager. Worker nodes can't be used to view or modify "
              "cluster state. Please run this command on a manager node or promote the "
              "current node to a manager.")


@scripted([json_answer({"message": WORKER_503}, status=503)])
def test_a_workers_503_for_services_is_not_retried_and_says_why(fake: FakeEngine) -> None:
    """Asking a worker again will not make it a manager: 69 at once, with the role."""
    with pytest.raises(NotSwarmManager) as caught:
        Engine(fake.host).inspect_service("db")
    error = caught.value
    assert (error.retryable, error.http_status, error.role) == (False, 503, swarm.WORKER)
    assert "cannot answer for swarm services (GET /v1.41/services/db)" in str(error)


@scripted([json_answer({"message": "service db not found"}, status=404)],
          [json_answer([{"ID": "t1"}])])
def test_a_missing_service_is_none_and_tasks_are_asked_with_their_filter(
        fake: FakeEngine) -> None:
    engine = Engine(fake.host)
    assert engine.inspect_service("db") is None
    assert engine.list_tasks({"service": ["svc1"]}) == [{"ID": "t1"}]
    assert fake.requests[-1].startswith(
        "GET /v1.41/tasks?filters=%7B%22service%22%3A%20%5B%22svc1%22%5D%7D ")


@scripted([http(200, b"", ["Content-Length: 100"], length=False) + b'{"Id": "c', CLOSE])
def test_a_short_body_is_an_unreachable_engine(fake: FakeEngine) -> None:
    """An answer that breaks off (an Engine going away) is retryable, never half-parsed."""
    with pytest.raises(EngineUnreachable) as caught:
        Engine(fake.host).inspect_container("db1")
    assert "broke off" in str(caught.value) and caught.value.retryable


@scripted([b"SSH-2.0-OpenSSH_9.2\r\n", CLOSE])
def test_something_that_is_not_http_is_a_protocol_error(fake: FakeEngine) -> None:
    """Not HTTP: named, 69, and not retried as if the Engine were starting."""
    with pytest.raises(EngineProtocolError) as caught:
        Engine(fake.host).inspect_container("db1")
    assert "not an HTTP status line" in str(caught.value) and not caught.value.retryable


@scripted([http(200, b"", ["Transfer-Encoding: chunked"], length=False) + b"zz\r\nabc", CLOSE])
def test_broken_chunk_framing_is_a_protocol_error(fake: FakeEngine) -> None:
    with pytest.raises(EngineProtocolError, match="bad chunk size"):
        Engine(fake.host).get("/x")


def test_no_engine_at_all_is_unreachable(tmp_path) -> None:
    """A socket path where nothing listens: unreachable (69), with the host named."""
    with pytest.raises(EngineUnreachable) as caught:
        Engine(f"unix://{tmp_path}/none.sock").inspect_container("db1")
    assert f"unix://{tmp_path}/none.sock" in str(caught.value)
    assert caught.value.exit_status == EX_UNAVAILABLE


# -- deadlines --------------------------------------------------------------------------------


@scripted([30.0])
def test_an_engine_that_hangs_fails_at_the_request_deadline(fake: FakeEngine) -> None:
    """Accepts, then says nothing: the request ends at its deadline, as unreachable."""
    started = time.monotonic()
    with pytest.raises(EngineUnreachable, match="no answer in time"):
        Engine(fake.host, timeout=0.3).inspect_container("db1")
    assert time.monotonic() - started < 2.0


@scripted([[*(b for byte in json_answer(DOC) for b in (bytes([byte]), 0.05))]][0])
def test_a_trickling_answer_cannot_outlive_the_deadline(fake: FakeEngine) -> None:
    """One byte every 50 ms never trips a per-recv timeout; the request's deadline holds."""
    started = time.monotonic()
    with pytest.raises(EngineUnreachable):
        Engine(fake.host, timeout=0.5).inspect_container("db1")
    assert time.monotonic() - started < 2.0


@scripted([30.0])
def test_the_overall_deadline_shortens_each_request(fake: FakeEngine) -> None:
    """``Engine.deadline`` (linkinit's --timeout) caps every request, whatever its own."""
    engine = Engine(fake.host, timeout=10)
    engine.ping()
    engine.deadline = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(EngineUnreachable):
        engine.inspect_container("db1")
    assert time.monotonic() - started < 2.0


# -- the event stream ---------------------------------------------------------------------------

EVENT = {"Type": "container", "Action": "start", "Actor": {"ID": "c" * 64}}


def event_lines(*events: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


@scripted([http(200, b"", ["Transfer-Encoding: chunked"], length=False)
           + chunked(event_lines(EVENT, EVENT), (13, 50)), CLOSE])
def test_events_are_read_across_chunk_boundaries(fake: FakeEngine) -> None:
    assert list(Engine(fake.host).events({"type": ["container"]})) == [EVENT, EVENT]


@scripted([http(200, b"", length=False) + event_lines(EVENT) + b'{"Type": "conta', CLOSE])
def test_a_stream_that_breaks_inside_an_event_is_unreachable(fake: FakeEngine) -> None:
    """Events before the break arrive; the break itself is retryable (reconnect)."""
    seen = []
    with pytest.raises(EngineUnreachable, match="event stream broke"):
        for event in Engine(fake.host).events({}):
            seen.append(event)
    assert seen == [EVENT]


@scripted([http(200, b"", length=False) + b"x" * (2 * 1024 * 1024), CLOSE])
def test_an_event_longer_than_the_limit_is_refused(fake: FakeEngine) -> None:
    """The reader never buffers an unbounded line."""
    with pytest.raises(EngineProtocolError, match="longer than"):
        list(Engine(fake.host).events({}))


@scripted([http(200, b"", length=False) + event_lines(EVENT), 30.0])
def test_closing_a_stream_wakes_the_thread_reading_it(fake: FakeEngine) -> None:
    """guard stops its reader thread by closing the stream from the main thread."""
    stream = Engine(fake.host).event_stream({})
    seen: list = []
    first = threading.Event()  # the handshake: the reader has an event and reads on

    def read() -> None:
        for event in stream:
            seen.append(event)
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(5), "the first event never came"
    stream.close()
    reader.join(5)
    assert not reader.is_alive() and seen == [EVENT]


@scripted([http(200, b"", length=False) + event_lines(EVENT), 0.3, event_lines(EVENT), CLOSE])
def test_a_quiet_event_stream_is_not_cut_by_the_request_deadline(fake: FakeEngine) -> None:
    """Events come when they come: only connecting and the head are bounded."""
    assert list(Engine(fake.host, timeout=0.1).events({})) == [EVENT, EVENT]
