"""The one Engine API client of linkinit: the start path, ``ls``, ``guard`` and the proxy.

It speaks HTTP/1.0 over the Engine's socket on a plain ``socket``: the container runs this
on every start, and the docker SDK costs ~130 ms of imports (requests, urllib3), even
``http.client`` ~35 ms and h11 ~60 ms here (bench/README.md). That is affordable because the
other end is the Engine (or linkinit's own proxy), not a stranger: the reader is strict, and
anything it does not expect is an ``EngineProtocolError``, never a guess.

What every request gets:

- a versioned path (``/v1.41/containers/...``): the version is the Engine's own from
  ``/_ping``, capped at the newest one whose answers linkinit knows, so their shape does not
  change under it with the daemon's default;
- a deadline for the whole request, not per ``recv``: a hung Engine cannot stretch
  ``--timeout``;
- bodies read by ``Content-Length``, ``Transfer-Encoding: chunked`` or to the close, with a
  size limit; event lines with a length limit;
- an error type per cause (``errors.py``): unreachable or 5xx (retryable), 404 (absent),
  an ambiguous ID prefix (64), any other refusal (69, named).

Retries live in the callers (``resolve``); this module only reports what happened.
"""

from __future__ import annotations

import _socket  # socket.py's C core: socket.py itself costs ~5 ms of imports (selectors)
import os
import time

from linkinit import fastjson as json  # not json: it imports re (~4 ms of every start)
from linkinit.engine import kinds as engines
from linkinit.engine.address import DEFAULT_HOST, PROXY_SOCKET, UnsupportedHost, parse_host
from linkinit.engine.transport import (
    BODY_LIMIT,
    HEADER_LIMIT,
    Reader,
    Response,
    error_message,
    query,
    quote,
    why,
)
from linkinit.errors import (
    AmbiguousReference,
    EngineBusy,
    EngineError,
    EngineProtocolError,
    EngineRefused,
    EngineUnreachable,
    NotFound,
    NotSwarmManager,
)
from linkinit.model import swarm

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Iterator, Mapping, Optional

# Docker 20.10 speaks 1.41, Podman 4.3's compat API 1.41, Docker 29 refuses below 1.44.
MIN_API_VERSION = (1, 41)
MAX_API_VERSION = (1, 47)  # the newest whose answers linkinit has been checked against
REQUEST_TIMEOUT = 10.0  # seconds for one whole request (the event stream excepted)


def parse_version(text: str) -> Optional[tuple[int, int]]:
    major, _, minor = text.strip().partition(".")
    if major.isdigit() and minor.isdigit():
        return int(major), int(minor)
    return None


def negotiated(server: Optional[tuple[int, int]]) -> tuple[int, int]:
    """The API version to ask for: the Engine's own, capped at the newest linkinit knows."""
    if server is None:
        return MIN_API_VERSION
    return min(server, MAX_API_VERSION)


def not_found_says_more(message: str, reference: str) -> bool:
    """Whether a 404's message says more than that nothing answers to ``reference``: the
    Engine's own is ``No such container: <ref>`` (Podman's ends ``: no such container``);
    ``linkinit proxy`` adds why it does not show the container."""
    lowered = message.strip().lower()
    plain = (f"no such container: {reference}".lower(), "")
    return lowered not in plain and not lowered.endswith(": no such container")


class Engine:
    """One Engine (or linkinit proxy) on a Unix socket or TCP address."""

    def __init__(self, host: str = DEFAULT_HOST, timeout: float = REQUEST_TIMEOUT) -> None:
        self.host = host
        self.timeout = timeout
        self.deadline: Optional[float] = None  # no request outlives it (monotonic seconds)
        self.api_version: Optional[tuple[int, int]] = None  # set by the first ping
        self.kind = engines.DOCKER  # which engine answers (engines.py), set by the first ping
        self.swarm_role: Optional[str] = None  # swarm.WORKER or NOT_IN_SWARM once a 503 said
        try:
            where = parse_host(host)
        except UnsupportedHost as error:
            raise EngineRefused(str(error)) from None
        # Why an inspect found nothing, by reference, where the answer said more than the
        # Engine's own "No such container" (the proxy's reason: it does not trust files...).
        self.refusals: dict[str, str] = {}
        self._socket_path: Optional[str] = where.socket_path
        self._address: Optional[tuple[str, int]] = where.tcp

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], in_container: bool = False) -> Engine:
        """DOCKER_HOST if set, else (``in_container``: linkinit's start path) the proxy's
        socket if its directory is mounted, else the Engine's. The host tools never take the
        proxy's: it serves containers."""
        host = environ.get("DOCKER_HOST")
        if not host:
            proxied = in_container and os.path.isdir(os.path.dirname(PROXY_SOCKET))
            host = "unix://" + PROXY_SOCKET if proxied else DEFAULT_HOST
        return cls(host)

    @property
    def socket_path(self) -> Optional[str]:
        return self._socket_path

    def socket_missing(self) -> bool:
        """A Unix socket path that does not exist will not appear later: it was not mounted.
        The proxy's socket is the exception: a restarting proxy recreates it in its mounted
        directory."""
        return (self._socket_path is not None and self._socket_path != PROXY_SOCKET
                and not os.path.exists(self._socket_path))

    # -- the funnel every request goes through ------------------------------------------

    def _deadline(self, timeout: Optional[float]) -> float:
        deadline = time.monotonic() + (timeout or self.timeout)
        return deadline if self.deadline is None else min(deadline, self.deadline)

    def _connect(self, deadline: float) -> _socket.socket:
        left = max(deadline - time.monotonic(), 0.001)
        if self._address is not None:
            import socket  # TCP (DOCKER_HOST=tcp://, the swarm proxy): a name to resolve

            return socket.create_connection(self._address, timeout=left)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(left)
        try:
            sock.connect(str(self._socket_path))
        except OSError:
            sock.close()
            raise
        return sock

    def _path(self, path: str, versioned: bool) -> str:
        if not versioned:
            return path
        major, minor = self.api_version or negotiated(None)
        return f"/v{major}.{minor}{path}"

    def request(
        self,
        path: str,
        params: Optional[Mapping[str, Any]] = None,
        stream: bool = False,
        versioned: bool = True,
    ) -> Response:
        """Send a GET and read the answer's head; an error status becomes its error type.

        ``stream``: the body may take forever (events): only connecting and the head are
        bounded by the deadline.
        """
        if versioned and self.api_version is None:
            self.ping()
        url = self._path(path, versioned) + ("?" + query(params) if params else "")
        what = f"GET {url.split('?', 1)[0]}"
        deadline = self._deadline(None)
        sock: Optional[_socket.socket] = None
        try:
            sock = self._connect(deadline)
            sock.sendall(f"GET {url} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            reader = Reader(sock, deadline)
            response = Response(reader)
            if stream:  # events come when they come
                reader.deadline = None
                sock.settimeout(None)
        except EngineError:
            if sock is not None:
                sock.close()
            raise
        except OSError as error:
            if sock is not None:
                sock.close()
            raise EngineUnreachable(
                f"cannot reach the Docker Engine at {self.host} ({what}): {why(error)}"
            ) from None
        if response.status >= 400:
            raise self._error(response, what)
        return response

    def _error(self, response: Response, what: str) -> EngineError:
        try:
            body = response.body(HEADER_LIMIT)
        except (OSError, EngineError):
            body = b""
        finally:
            response.close()
        message = error_message(body) or response.reason or "no message"
        status = response.status
        kind = engines.answer_kind(status, message)
        if kind == engines.AMBIGUOUS:
            return AmbiguousReference(message, status)
        if kind == engines.MISSING:
            return NotFound(message, status)
        if kind == engines.NOT_MANAGER:
            return NotSwarmManager(
                f"the Docker Engine at {self.host} cannot answer for swarm services "
                f"({what}): {message}", status, swarm.manager_refusal(status, message) or "")
        if kind == engines.UNAVAILABLE:
            return EngineBusy(
                f"the Docker Engine at {self.host} failed {what} ({status}): {message}", status
            )
        return EngineRefused(
            f"the Docker Engine at {self.host} refused {what} ({status}): {message}", status
        )

    def _body(self, response: Response, limit: int = BODY_LIMIT) -> bytes:
        """The whole body; an answer that breaks off is an unreachable Engine."""
        try:
            return response.body(limit)
        except OSError as error:
            raise EngineUnreachable(
                f"the Docker Engine at {self.host} broke off an answer: {why(error)}"
            ) from None
        finally:
            response.close()

    # -- the questions linkinit asks -----------------------------------------------------

    def get(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        body = self._body(self.request(path, params))
        try:
            return json.loads(body)
        except ValueError as error:
            raise EngineProtocolError(
                f"the Docker Engine at {self.host} sent JSON that does not parse: {error}"
            ) from None

    def ping(self) -> None:
        """``/_ping``: is the Engine up, and which API version does it speak."""
        response = self.request("/_ping", versioned=False)
        self._body(response, HEADER_LIMIT)
        server = parse_version(response.headers.get("api-version", ""))
        self.api_version = negotiated(server)
        self.kind = engines.kind_from_headers(response.headers)

    def inspect_container(self, reference: str) -> Optional[dict]:
        """The container's inspect document, or None when no container answers to it.

        An ID prefix of several containers raises ``AmbiguousReference``.
        """
        try:
            document = self.get(f"/containers/{quote(reference)}/json")
        except NotFound as error:
            if not_found_says_more(error.message, reference):
                self.refusals[reference] = error.message
            return None
        self.refusals.pop(reference, None)
        return engines.docker_shaped(self.kind, document)

    def run_healthcheck(self, container_id: str) -> None:
        """Run a container's HEALTHCHECK now: Podman's own API, for engines that do not run
        checks by themselves (engines.HealthchecksOnDemand). A GET, as every request here."""
        path = engines.LIBPOD_HEALTHCHECK.format(quote(container_id))
        self._body(self.request(path, versioned=False))

    def inspect_network(self, reference: str) -> Optional[dict]:
        try:
            return self.get(f"/networks/{quote(reference)}")
        except NotFound:
            return None

    def inspect_service(self, reference: str) -> Optional[dict]:
        """A swarm service by name, ID or unique ID prefix, or None; a manager only
        (``NotSwarmManager`` elsewhere)."""
        try:
            return self.get(f"/services/{quote(reference)}")
        except NotFound:
            return None

    def list_tasks(self, filters: Mapping[str, list]) -> list[dict]:
        """Swarm tasks (a manager only), e.g. ``{"service": [id]}``: history included."""
        return self.get("/tasks", {"filters": json.dumps(filters)})

    def inspect_image(self, reference: str) -> Optional[dict]:
        try:
            path = quote(reference).replace("%2F", "/").replace("%3A", ":").replace("%40", "@")
            return self.get(f"/images/{path}/json")
        except NotFound:
            return None

    def list_containers(self, filters: Optional[Mapping[str, list]] = None) -> list[dict]:
        """Every container (stopped ones too), as the list API summarises them."""
        params = {"all": "1"}
        if filters:
            params["filters"] = json.dumps(filters)
        return self.get("/containers/json", params)

    def inspect_all(self) -> list[dict]:
        """Inspect documents of every container; one removed since the list is skipped."""
        documents = []
        for summary in self.list_containers():
            document = self.inspect_container(summary["Id"])
            if document is not None:
                documents.append(document)
        return documents

    def event_stream(
        self, filters: Mapping[str, list], since: Optional[float] = None
    ) -> EventStream:
        """Subscribe to the event stream; iterate it, and ``close`` it from any thread."""
        params: dict[str, str] = {"filters": json.dumps(filters)}
        if since is not None:
            params["since"] = f"{since:.9f}"
        return EventStream(self.request("/events", params, stream=True))

    def events(self, filters: Mapping[str, list], since: Optional[float] = None) -> Iterator[dict]:
        """Follow the event stream until it ends (returns) or breaks (EngineUnreachable)."""
        yield from self.event_stream(filters, since)


class EventStream:
    """The Engine's events as dicts, one per line, each line at most EVENT_LIMIT bytes."""

    def __init__(self, response: Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[dict]:
        try:
            for line in self._response.lines():
                if line.strip():
                    yield json.loads(line)
        except ValueError as error:
            raise EngineProtocolError(f"the Engine's event stream sent bad JSON: {error}") from None
        except OSError as error:
            raise EngineUnreachable(f"the Engine's event stream broke: {why(error)}") from None
        finally:
            self._response.close()

    def close(self) -> None:
        """End the stream from any thread: the one reading it sees the end at once and
        closes the socket itself (closing it here could pull the descriptor from under a
        ``recv`` in progress)."""
        try:  # noqa: SIM105 (contextlib is one more import on the start path)
            self._response.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: nothing to wake
