"""The one place that talks to the Docker Engine: inspect, list, events.

Inside the parent container this runs on every start, so it speaks the Engine's HTTP API
over the mounted socket with a few lines of HTTP/1.0 on a plain socket instead of importing
the docker SDK: the SDK costs ~130 ms of imports (requests, urllib3) before the first
request, more than linkinit's whole start-up budget (see README, "Why not the docker SDK in
the container"); even ``http.client`` costs ~35 ms here (it imports email and ssl), measured
by bench/run. The host-side tools (``ls``, ``guard``) use the SDK. Retries live in
``resolve``; this module only reports what happened, with an error type per cause.
"""

from __future__ import annotations

import json
import os
import socket

from .errors import EngineUnreachable, LinkinitError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Iterator, Mapping, Optional

DEFAULT_HOST = "unix:///var/run/docker.sock"
_LINE_LIMIT = 65536
MOUNT_HINT = "mount it with -v /var/run/docker.sock:/var/run/docker.sock"


class EngineError(LinkinitError):
    """The Engine answered, but with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status


class NotFound(EngineError):
    pass


class _Response:
    """One HTTP/1.0 answer read straight off the socket: status, headers, then the body.

    HTTP/1.0 because the Engine then neither chunks nor keeps the connection: a body ends
    at Content-Length or at close, and the event stream is plain lines.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._file = sock.makefile("rb")
        line = self._file.readline(_LINE_LIMIT)
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _ProtocolError(f"bad status line {line[:80]!r}")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.length: Optional[int] = None
        while True:
            header = self._file.readline(_LINE_LIMIT)
            if not header.endswith(b"\n"):
                raise _ProtocolError("the answer's headers ended early")
            if header in (b"\r\n", b"\n"):
                break
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                self.length = int(value.strip())

    def read(self) -> bytes:
        if self.length is None:
            return self._file.read()
        body = self._file.read(self.length)
        if len(body) < self.length:
            raise _ProtocolError(f"got {len(body)} of {self.length} bytes")
        return body

    def readline(self) -> bytes:
        return self._file.readline()

    def close(self) -> None:
        self._file.close()
        self.sock.close()


class _ProtocolError(OSError):
    """The Engine's answer was not the HTTP we expect."""


class Engine:
    """A minimal Engine API client: JSON requests and a line-delimited event stream."""

    def __init__(self, host: str = DEFAULT_HOST, timeout: float = 10.0) -> None:
        self.host = host
        self.timeout = timeout
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
            raise EngineUnreachable(
                f"DOCKER_HOST={host} is not supported: use unix:///path or tcp://host:port"
            )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Engine:
        return cls(environ.get("DOCKER_HOST") or DEFAULT_HOST)

    def socket_missing(self) -> bool:
        """A Unix socket path that does not exist will not appear later: it was not mounted."""
        return self._socket_path is not None and not os.path.exists(self._socket_path)

    def _connect(self, timeout: Optional[float]) -> socket.socket:
        if self._socket_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout or self.timeout)
            try:
                sock.connect(self._socket_path)
            except OSError:
                sock.close()
                raise
            return sock
        assert self._address is not None
        return socket.create_connection(self._address, timeout=timeout or self.timeout)

    def _request(
        self, path: str, params: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None
    ) -> _Response:
        url = path + ("?" + _query(params) if params else "")
        sock: Optional[socket.socket] = None
        try:
            sock = self._connect(timeout)
            sock.sendall(f"GET {url} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            response = _Response(sock)
        except OSError as error:
            if sock is not None:
                sock.close()
            raise EngineUnreachable(f"cannot reach the Docker Engine at {self.host}: "
                                    f"{error}") from None
        if response.status >= 400:
            try:
                body = response.read()
            except OSError:
                body = b""
            response.close()
            message = _error_message(body) or response.reason
            kind = NotFound if response.status == 404 else EngineError
            raise kind(response.status, message)
        return response

    def get(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        response = self._request(path, params)
        try:
            return json.loads(response.read())
        except (OSError, ValueError) as error:
            raise EngineUnreachable(
                f"the Docker Engine at {self.host} broke off an answer: {error}"
            ) from None
        finally:
            response.close()

    def ping(self) -> None:
        response = self._request("/_ping")
        try:
            response.read()
        except OSError as error:
            raise EngineUnreachable(
                f"the Docker Engine at {self.host} broke off an answer: {error}"
            ) from None
        finally:
            response.close()

    def inspect_container(self, reference: str) -> Optional[dict]:
        """The container's inspect document, or None when no container answers to it."""
        try:
            return self.get(f"/containers/{_quote(reference)}/json")
        except NotFound:
            return None

    def list_containers(self, filters: Optional[Mapping[str, list]] = None) -> list[dict]:
        params = {"all": "1"}
        if filters:
            params["filters"] = json.dumps(filters)
        return self.get("/containers/json", params)

    def events(self, filters: Mapping[str, list], since: Optional[float] = None) -> Iterator[dict]:
        """Follow the event stream until it ends or breaks (then EngineUnreachable)."""
        params: dict[str, str] = {"filters": json.dumps(filters)}
        if since is not None:
            params["since"] = f"{since:.9f}"
        response = self._request("/events", params, timeout=None)
        response.sock.settimeout(None)  # events come when they come
        try:
            while True:
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        except (OSError, ValueError) as error:
            raise EngineUnreachable(f"the Engine's event stream broke: {error}") from None
        finally:
            response.close()


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str) -> str:
    """Percent-encode all but unreserved bytes, as urllib.parse.quote(safe="") does.

    urllib.parse costs ~5 ms of imports inside the container, on every start.
    """
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def _query(params: Mapping[str, Any]) -> str:
    return "&".join(f"{_quote(str(key))}={_quote(str(value))}" for key, value in params.items())


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()
