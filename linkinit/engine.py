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
import json
import os
import time

from . import engines, swarm
from .errors import (
    AmbiguousReference,
    EngineBusy,
    EngineError,
    EngineProtocolError,
    EngineRefused,
    EngineUnreachable,
    NotFound,
    NotSwarmManager,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Iterator, Mapping, Optional

DEFAULT_HOST = "unix:///var/run/docker.sock"
PROXY_SOCKET = "/run/linkinit/engine.sock"  # where parents mount ``linkinit proxy``
MOUNT_HINT = engines.DOCKER.mount_hint
# Docker 20.10 speaks 1.41, Podman 4.3's compat API 1.41, Docker 29 refuses below 1.44.
MIN_API_VERSION = (1, 41)
MAX_API_VERSION = (1, 47)  # the newest whose answers linkinit has been checked against
REQUEST_TIMEOUT = 10.0  # seconds for one whole request (the event stream excepted)
HEADER_LIMIT = 64 * 1024  # one status or header line
BODY_LIMIT = 64 * 1024 * 1024  # one JSON answer (a list of a few thousand containers fits)
EVENT_LIMIT = 1024 * 1024  # one event of the stream
_RECV = 65536


class _Reader:
    """Buffered reads off the socket, each bounded by the request's deadline (monotonic
    seconds; None: wait as long as it takes, for the event stream)."""

    def __init__(self, sock: _socket.socket, deadline: Optional[float]) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.closed = False

    def _fill(self) -> bool:
        """Read more; False at the end of the stream."""
        if self.closed:
            return False
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
        data = self.sock.recv(_RECV)
        if not data:
            self.closed = True
            return False
        self.buffer += data
        return True

    def readline(self, limit: int) -> bytes:
        """One line with its ``\\n`` (b"" at the end); longer than ``limit`` is an error."""
        while True:
            end = self.buffer.find(b"\n", 0, limit + 1)
            if end >= 0:
                line, self.buffer = self.buffer[:end + 1], self.buffer[end + 1:]
                return line
            if len(self.buffer) > limit:
                raise EngineProtocolError(f"a line of the answer is longer than {limit} bytes")
            if not self._fill():
                line, self.buffer = self.buffer, b""
                return line

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or fewer where the stream ends first."""
        while len(self.buffer) < size and self._fill():
            pass
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_some(self) -> bytes:
        """What is buffered, or the next piece off the socket (b"" at the end)."""
        if not self.buffer:
            self._fill()
        data, self.buffer = self.buffer, b""
        return data


class Response:
    """One answer: status, the headers that frame the body, and the body as pieces."""

    def __init__(self, reader: _Reader) -> None:
        self._reader = reader
        line = reader.readline(HEADER_LIMIT)
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            if not line:
                raise _BrokenOff("the connection closed before an answer")
            raise EngineProtocolError(f"not an HTTP status line: {line[:80]!r}")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = self._read_headers()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length", "")
        if length and not length.isdigit():
            raise EngineProtocolError(f"bad Content-Length {length!r}")
        self.length: Optional[int] = int(length) if length and not self.chunked else None

    def _read_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        while True:
            line = self._reader.readline(HEADER_LIMIT)
            if not line.endswith(b"\n"):
                raise _BrokenOff("the answer's headers ended early")
            if line in (b"\r\n", b"\n"):
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise EngineProtocolError(f"not an HTTP header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()

    def pieces(self) -> Iterator[bytes]:
        """The body as it arrives, its framing removed."""
        if self.chunked:
            yield from self._chunks()
        elif self.length is not None:
            body = self._reader.read(self.length)
            if len(body) < self.length:
                raise _BrokenOff(f"the answer broke off after {len(body)} of {self.length} bytes")
            yield body
        else:
            while True:
                piece = self._reader.read_some()
                if not piece:
                    return
                yield piece

    def _chunks(self) -> Iterator[bytes]:
        while True:
            line = self._reader.readline(HEADER_LIMIT)
            if not line.endswith(b"\n"):
                raise _BrokenOff("the chunked answer broke off")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise EngineProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                self._skip_trailers()
                return
            data = self._reader.read(size)
            if len(data) < size or self._reader.readline(2) not in (b"\r\n", b"\n"):
                raise _BrokenOff("the chunked answer broke off inside a chunk")
            yield data

    def _skip_trailers(self) -> None:
        while self._reader.readline(HEADER_LIMIT) not in (b"\r\n", b"\n", b""):
            pass

    def body(self, limit: int = BODY_LIMIT) -> bytes:
        data = b""
        for piece in self.pieces():
            data += piece
            if len(data) > limit:
                raise EngineProtocolError(f"the answer is larger than {limit} bytes")
        return data

    def lines(self, limit: int = EVENT_LIMIT) -> Iterator[bytes]:
        """The body split into lines (the event stream), each at most ``limit`` bytes."""
        pending = b""
        for piece in self.pieces():
            pending += piece
            *complete, pending = pending.split(b"\n")
            if len(pending) > limit or any(len(line) > limit for line in complete):
                raise EngineProtocolError(f"an event is longer than {limit} bytes")
            yield from complete
        if pending.strip():
            raise _BrokenOff("the stream ended inside a line")

    @property
    def sock(self) -> _socket.socket:
        return self._reader.sock

    def close(self) -> None:
        self._reader.closed = True
        self._reader.sock.close()


class _BrokenOff(OSError):
    """The connection ended in the middle of an answer (an Engine going away)."""


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
        self.requests = 0
        # Why an inspect found nothing, by reference, where the answer said more than the
        # Engine's own "No such container" (the proxy's reason: it does not trust files...).
        self.refusals: dict[str, str] = {}
        self._socket_path: Optional[str] = None
        self._address: Optional[tuple[str, int]] = None
        if host.startswith("unix:///") and not any(c in host for c in "?#;"):
            self._socket_path = host[len("unix://"):]  # what urlparse gives, ~5 ms cheaper
            return
        import urllib.parse  # only for the rarer forms (tcp://, unix://host/...)

        parsed = urllib.parse.urlparse(host)
        if parsed.scheme == "unix":
            self._socket_path = parsed.path
        elif parsed.scheme in ("tcp", "http"):
            self._address = (parsed.hostname or "localhost", parsed.port or 2375)
        else:
            raise EngineRefused(
                f"DOCKER_HOST={host} is not supported: use unix:///path or tcp://host:port"
            )

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
        url = self._path(path, versioned) + ("?" + _query(params) if params else "")
        what = f"GET {url.split('?', 1)[0]}"
        deadline = self._deadline(None)
        sock: Optional[_socket.socket] = None
        self.requests += 1
        try:
            sock = self._connect(deadline)
            sock.sendall(f"GET {url} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            reader = _Reader(sock, deadline)
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
                f"cannot reach the Docker Engine at {self.host} ({what}): {_why(error)}"
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
        message = _error_message(body) or response.reason or "no message"
        status = response.status
        if engines.is_ambiguous(status, message):
            return AmbiguousReference(message, status)
        if status == 404:
            return NotFound(message, status)
        if status == 503:
            role = swarm.manager_refusal(status, message)
            if role is not None:
                return NotSwarmManager(
                    f"the Docker Engine at {self.host} cannot answer for swarm services "
                    f"({what}): {message}", status, role)
        if status >= 500:
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
                f"the Docker Engine at {self.host} broke off an answer: {_why(error)}"
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
            document = self.get(f"/containers/{_quote(reference)}/json")
        except NotFound as error:
            if not_found_says_more(error.message, reference):
                self.refusals[reference] = error.message
            return None
        self.refusals.pop(reference, None)
        return engines.docker_shaped(self.kind, document)

    def run_healthcheck(self, container_id: str) -> None:
        """Run a container's HEALTHCHECK now: Podman's own API, for engines that do not run
        checks by themselves (engines.HealthchecksOnDemand). A GET, as every request here."""
        path = engines.LIBPOD_HEALTHCHECK.format(_quote(container_id))
        self._body(self.request(path, versioned=False))

    def inspect_network(self, reference: str) -> Optional[dict]:
        try:
            return self.get(f"/networks/{_quote(reference)}")
        except NotFound:
            return None

    def inspect_service(self, reference: str) -> Optional[dict]:
        """A swarm service by name, ID or unique ID prefix, or None; a manager only
        (``NotSwarmManager`` elsewhere)."""
        try:
            return self.get(f"/services/{_quote(reference)}")
        except NotFound:
            return None

    def list_tasks(self, filters: Mapping[str, list]) -> list[dict]:
        """Swarm tasks (a manager only), e.g. ``{"service": [id]}``: history included."""
        return self.get("/tasks", {"filters": json.dumps(filters)})

    def inspect_image(self, reference: str) -> Optional[dict]:
        try:
            path = _quote(reference).replace("%2F", "/").replace("%3A", ":").replace("%40", "@")
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
            raise EngineUnreachable(f"the Engine's event stream broke: {_why(error)}") from None
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


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str) -> str:
    """Percent-encode all but unreserved bytes, as urllib.parse.quote(safe="") does.

    urllib.parse costs ~5 ms of imports inside the container, on every start.
    """
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def _query(params: Mapping[str, Any]) -> str:
    return "&".join(f"{_quote(str(key))}={_quote(str(value))}" for key, value in params.items())


def _why(error: OSError) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return error.strerror or str(error) or type(error).__name__


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()[:200]
