"""The proxy's event stream cut into lines (``host/proxy/events.py``): any event size the
Engine sends, in any chunking, comes out whole; a line over the limit is counted as skipped,
never kept; and a hub whose task ends is started again by the watchdog."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given
from hypothesis import strategies as st

from linkinit.host.proxy import events
from linkinit.host.proxy.events import Lines

LINE = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\n", b"x").strip() or b"e")


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.lists(LINE, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_lines_come_out_whole_however_the_stream_is_chunked(lines: list[bytes],
                                                            cuts: list[int]) -> None:
    splitter = Lines(limit=64)
    data = b"".join(line + b"\n" for line in lines)
    out = [line for chunk in chunked(data, cuts) for line in splitter.feed(chunk)]
    assert out == lines and splitter.skipped == 0


@given(st.lists(st.tuples(LINE, st.booleans()), max_size=20),
       st.lists(st.integers(min_value=0), max_size=30))
def test_a_line_over_the_limit_is_skipped_and_counted(lines: list[tuple[bytes, bool]],
                                                      cuts: list[int]) -> None:
    splitter = Lines(limit=64)
    body = [line * 100 if big else line for line, big in lines]  # 100+ bytes: over 64
    data = b"".join(line + b"\n" for line in body)
    out = [line for chunk in chunked(data, cuts) for line in splitter.feed(chunk)]
    assert out == [line for line in body if len(line) <= 64]
    assert splitter.skipped == sum(1 for line in body if len(line) > 64)


def test_a_megabyte_event_is_taken_whole() -> None:
    """The attack's 1 MB label: aiohttp's line reader gave up at 512 KiB."""
    event = b'{"Type":"container","Actor":{"Attributes":{"big":"' + b"x" * (1 << 20) + b'"}}}'
    splitter = Lines()
    out = [line for i in range(0, len(event) + 1, 65536)
           for line in splitter.feed((event + b"\n")[i:i + 65536])]
    assert out == [event]


def test_carriage_returns_and_blank_lines_are_not_events() -> None:
    splitter = Lines()
    assert splitter.feed(b'{"a":1}\r\n\n  \n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n") == [b'{"b":2}']


class DyingHub:
    """A hub whose task ends at once, twice, then runs until cancelled."""

    def __init__(self) -> None:
        self.runs = 0
        self.restarts = 0
        self.running = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= 2:
            raise RuntimeError("a bug")
        self.running.set()
        await asyncio.Event().wait()

    def restarted(self) -> None:
        self.restarts += 1


def test_the_watchdog_starts_a_hub_that_ended_again() -> None:
    async def scenario() -> DyingHub:
        hub = DyingHub()
        watching = asyncio.ensure_future(events.watchdog(hub, seconds=0.01))  # type: ignore[arg-type]
        await asyncio.wait_for(hub.running.wait(), 10)
        watching.cancel()
        return hub

    hub = asyncio.run(scenario())
    assert hub.runs == 3 and hub.restarts == 2
