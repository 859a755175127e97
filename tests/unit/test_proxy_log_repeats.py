"""The proxy's repeated log lines (``host/proxy/logs.py``): the first of a kind in each
window is written, with the count of those left out since; other kinds are not held up."""

from __future__ import annotations

from linkinit.host.proxy.logs import Limiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_line_is_written_once_per_window_with_the_count_left_out() -> None:
    clock = Clock()
    limiter = Limiter(seconds=10, clock=clock)
    assert limiter.admit("accept EMFILE") == 0
    assert [limiter.admit("accept EMFILE") for _ in range(5000)] == [None] * 5000
    clock.now += 10
    assert limiter.admit("accept EMFILE") == 5000
    assert limiter.admit("accept EMFILE") is None


def test_kinds_are_limited_apart() -> None:
    limiter = Limiter(seconds=10, clock=Clock())
    assert limiter.admit("refused a 403") == 0
    assert limiter.admit("refused b 403") == 0
    assert limiter.admit("refused a 403") is None
