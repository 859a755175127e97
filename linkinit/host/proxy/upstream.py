"""The proxy's Engine client: the Engine's API through aiohttp, on a Unix socket or TCP.

Every request the proxy makes to the Engine goes through ``Upstream``; the time it takes is
counted against the request being served (``engine_wait``), so the log can tell the proxy's
own share from the Engine's.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from typing import Any, Awaitable, Callable, Optional

import aiohttp
from yarl import URL

from linkinit.engine.address import DEFAULT_HOST, UnsupportedHost, parse_host
from linkinit.engine.transport import query
from linkinit.errors import UsageError

DEFAULT_UPSTREAM = DEFAULT_HOST
_BASE = "http://docker"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date",
               "server", "upgrade"}

# Seconds one request spent waiting for the Engine (a one-element list per request).
engine_wait: contextvars.ContextVar[Optional[list[float]]] = contextvars.ContextVar(
    "engine_wait", default=None)
# The API version the request asked for ("/v1.47", "" for none): inspect answers differ by it.
api_version: contextvars.ContextVar[str] = contextvars.ContextVar("api_version", default="")


def count_wait(seconds: float) -> None:
    waited = engine_wait.get()
    if waited is not None:
        waited[0] += seconds


def alone(ask: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``ask`` as a shared flight: its Engine time is counted by each asker's wait
    (``Flights(on_wait=count_wait)``), not also by the asker that happened to start it."""
    async def flight() -> Any:
        engine_wait.set(None)  # the flight's task has its own context: askers keep theirs
        return await ask()
    return flight


class Unavailable(Exception):
    """The Engine did not answer: 503 to the caller, who retries."""


class Upstream:
    """The Engine's API through aiohttp's client, on a Unix socket or plain TCP."""

    def __init__(self, host: str) -> None:
        self.host = host
        try:
            where = parse_host(host)
        except UnsupportedHost as error:
            raise UsageError(str(error)) from None
        self.path: Optional[str] = where.socket_path
        self.base = _BASE if where.socket_path else "http://{}:{}".format(*where.tcp)
        self.session: Optional[aiohttp.ClientSession] = None

    async def open(self) -> None:
        connector = (aiohttp.UnixConnector(path=self.path, limit=64) if self.path
                     else aiohttp.TCPConnector(limit=64))
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def url(self, raw_path_qs: str) -> URL:
        return URL(self.base + raw_path_qs, encoded=True)

    def request(self, method: str, raw_path_qs: str, timeout: Optional[float] = 30) -> Any:
        """An aiohttp request context; ``timeout=None`` for streams that last."""
        assert self.session is not None
        return self.session.request(
            method, self.url(raw_path_qs),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=5, sock_connect=5),
        )

    async def fetch(self, method: str, raw_path_qs: str) -> tuple[int, dict, bytes]:
        """One whole answer: status, end-to-end headers, body. The time it took is added to
        the request's Engine time (``engine_wait``), so the log can tell the proxy's own
        share from the Engine's."""
        started = time.monotonic()
        try:
            async with self.request(method, raw_path_qs) as response:
                body = await response.read()
                headers = {k: v for k, v in response.headers.items()
                           if k.lower() not in _HOP_BY_HOP}
                return response.status, headers, body
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise Unavailable(f"the Docker Engine at {self.host} did not answer: "
                              f"{error or type(error).__name__}") from None
        finally:
            waited = engine_wait.get()
            if waited is not None:
                waited[0] += time.monotonic() - started

    async def get_json(self, path: str, params: Optional[dict] = None) -> tuple[int, Any]:
        status, _, body = await self.fetch("GET", path + ("?" + query(params) if params else ""))
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

