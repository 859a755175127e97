"""The proxy's log: one line per event on stderr, each starting ``linkinit proxy:``.

A line that repeats (the same refusal to one caller, a failed accept when out of file
descriptors) is written at most once per ``REPEAT_SECONDS`` per kind, with the count of
those left out since: a flood of attempts cannot fill the disk with the log.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Optional

REPEAT_SECONDS = 10.0
_KINDS = 4096  # kinds of line remembered (then forgotten all at once)


def log(message: str) -> None:
    print(f"linkinit proxy: {message}", file=sys.stderr, flush=True)


class _OneLine(logging.Formatter):
    """aiohttp's own reports (a malformed request, say) as one line each, no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        detail = " ".join(str(error).split()) if error else ""
        return f"linkinit proxy: {record.getMessage().strip()}" + (f": {detail}" if detail else "")


def quiet_aiohttp() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler.addFilter(_Repeats())
    logger = logging.getLogger("aiohttp")
    logger.handlers[:] = [handler]
    logger.propagate = False


class Limiter:
    """Which repeated lines to write: the first of a kind in each window, with the count of
    those left out since the last one written."""

    def __init__(self, seconds: float = REPEAT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # kind -> (written at, left out)

    def admit(self, kind: str) -> Optional[int]:
        """None: leave this line out (it is counted); else how many of its kind were."""
        now = self.clock()
        written, left_out = self._windows.get(kind, (float("-inf"), 0))
        if now - written < self.seconds:
            self._windows[kind] = (written, left_out + 1)
            return None
        if len(self._windows) >= _KINDS:
            self._windows.clear()
        self._windows[kind] = (now, 0)
        return left_out


_LIMITER = Limiter()


def log_limited(kind: str, message: str, limiter: Limiter = _LIMITER) -> None:
    """``message``, unless a line of its ``kind`` was written in the last seconds."""
    left_out = limiter.admit(kind)
    if left_out is None:
        return
    log(message + (f" ({left_out} more like it left out)" if left_out else ""))


class _Repeats(logging.Filter):
    """aiohttp's own reports, limited like ``log_limited``."""

    def filter(self, record: logging.LogRecord) -> bool:
        left_out = _LIMITER.admit(f"aiohttp {record.msg}")
        if left_out:
            record.msg = f"{record.msg} ({left_out} more like it left out)"
        return left_out is not None


def loop_exception(_: Any, context: dict) -> None:
    """asyncio's reports (a failed accept: EMFILE) as one limited line, no traceback."""
    error = context.get("exception")
    detail = f": {error}" if error else ""
    log_limited(f"asyncio {context.get('message')}", f"{context.get('message')}{detail}")
