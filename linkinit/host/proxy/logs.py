"""The proxy's log: one line per event on stderr, each starting ``linkinit proxy:``."""

from __future__ import annotations

import logging
import sys


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
    logger = logging.getLogger("aiohttp")
    logger.handlers[:] = [handler]
    logger.propagate = False
