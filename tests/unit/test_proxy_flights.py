"""One upstream request per question at a time (``linkinit.host.proxy.flights``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from linkinit.host.proxy.flights import Flights, Remembered


class Engine:
    """Answers when told to; counts the questions."""

    def __init__(self) -> None:
        self.asked = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def answer(self) -> str:
        self.asked += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return f"answer {self.asked}"


async def turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def test_askers_of_one_key_share_one_request_and_its_answer() -> None:
    async def scene() -> list[Any]:
        engine, flights = Engine(), Flights()
        asking = [asyncio.ensure_future(flights.run("k", engine.answer)) for _ in range(50)]
        await turns()
        engine.release.set()
        return [engine.asked, *await asyncio.gather(*asking)]

    asked, *answers = asyncio.run(scene())
    assert asked == 1
    assert set(answers) == {"answer 1"}


def test_different_keys_are_asked_separately_and_a_landed_key_is_asked_again() -> None:
    async def scene() -> int:
        engine, flights = Engine(), Flights()
        engine.release.set()
        await asyncio.gather(flights.run("a", engine.answer), flights.run("b", engine.answer))
        await flights.run("a", engine.answer)
        assert len(flights) == 0
        return engine.asked

    assert asyncio.run(scene()) == 3


def test_every_asker_gets_the_error() -> None:
    async def scene() -> list[Any]:
        engine, flights = Engine(), Flights()
        engine.error = OSError("the Engine went away")
        asking = [asyncio.ensure_future(flights.run("k", engine.answer)) for _ in range(3)]
        await turns()
        engine.release.set()
        return await asyncio.gather(*asking, return_exceptions=True)

    assert [str(error) for error in asyncio.run(scene())] == ["the Engine went away"] * 3


def test_an_asker_hanging_up_leaves_the_others_their_answer() -> None:
    async def scene() -> str:
        engine, flights = Engine(), Flights()
        first = asyncio.ensure_future(flights.run("k", engine.answer))
        second = asyncio.ensure_future(flights.run("k", engine.answer))
        await turns()
        first.cancel()
        await turns()
        engine.release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(scene()) == "answer 1"


def test_each_askers_wait_is_counted() -> None:
    waits: list[float] = []

    async def scene() -> None:
        engine, flights = Engine(), Flights(on_wait=waits.append)
        asking = [asyncio.ensure_future(flights.run("k", engine.answer)) for _ in range(4)]
        await asyncio.sleep(0.05)
        engine.release.set()
        await asyncio.gather(*asking)

    asyncio.run(scene())
    assert len(waits) == 4
    assert min(waits) >= 0.04


def test_a_remembered_answer_is_served_for_its_seconds_only_if_worth_keeping() -> None:
    async def scene(seconds: float, keep: bool) -> int:
        engine = Engine()
        engine.release.set()
        remembered = Remembered(seconds, Flights())
        for _ in range(3):
            await remembered.get("ping", engine.answer, keep=lambda answer: keep)
        return engine.asked

    assert asyncio.run(scene(60, keep=True)) == 1
    assert asyncio.run(scene(60, keep=False)) == 3
    assert asyncio.run(scene(0, keep=True)) == 3


def test_a_stale_answer_is_served_while_one_new_request_asks_again() -> None:
    async def scene() -> tuple[list[str], int, str]:
        engine = Engine()
        engine.release.set()
        remembered = Remembered(0, Flights(), stale_seconds=60)

        async def get() -> str:
            return await remembered.get("ping", engine.answer, keep=lambda answer: True)

        first = await get()
        served = [await get() for _ in range(5)]  # stale: served, one refresh in flight
        await turns()
        return [first, *served], engine.asked, await get()

    served, asked, after = asyncio.run(scene())
    assert served == ["answer 1"] * 6
    assert asked == 2
    assert after == "answer 2"
