"""The one place that talks to the Docker Engine: inspect, list, events.

Inside the parent container this runs on every start, so it speaks the Engine's HTTP API
through ``http.client`` over the mounted socket instead of importing the docker SDK: the SDK
costs ~130 ms of imports (requests, urllib3) before the first request, more than linkinit's
whole start-up budget (see README, "Why not the docker SDK in the container"). The host-side
tools (``ls``, ``guard``) use the SDK. Retries live in ``resolve``; this module only reports
what happened, with an error type per cause.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from typing import Any, Iterator, Mapping, Optional

from .errors import EngineUnreachable, LinkinitError

DEFAULT_HOST = "unix:///var/run/docker.sock"
MOUNT_HINT = "mount it with -v /var/run/docker.sock:/var/run/docker.sock"


class EngineError(LinkinitError):
    """The Engine answered, but with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status


class NotFound(EngineError):
    pass


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: the Engine's usual listening place."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """A minimal Engine API client: JSON requests and a line-delimited event stream."""

    def __init__(self, host: str = DEFAULT_HOST, timeout: float = 10.0) -> None:
        self.host = host
        self.timeout = timeout
        parsed = urllib.parse.urlparse(host)
        if parsed.scheme == "unix":
            self._socket_path: Optional[str] = parsed.path
            self._address: Optional[tuple[str, int]] = None
        elif parsed.scheme in ("tcp", "http"):
            self._socket_path = None
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

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self._socket_path is not None:
            return _UnixConnection(self._socket_path, timeout or self.timeout)
        assert self._address is not None
        return http.client.HTTPConnection(*self._address, timeout=timeout or self.timeout)

    def _request(
        self, path: str, params: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        connection = self._connection(timeout)
        try:
            connection.request("GET", url, headers={"Host": "docker"})
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise EngineUnreachable(f"cannot reach the Docker Engine at {self.host}: "
                                    f"{error}") from None
        if response.status >= 400:
            body = response.read()
            connection.close()
            message = _error_message(body) or response.reason
            kind = NotFound if response.status == 404 else EngineError
            raise kind(response.status, message)
        return connection, response

    def get(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        connection, response = self._request(path, params)
        try:
            return json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise EngineUnreachable(
                f"the Docker Engine at {self.host} broke off an answer: {error}"
            ) from None
        finally:
            connection.close()

    def ping(self) -> None:
        connection, response = self._request("/_ping")
        response.read()
        connection.close()

    def inspect_container(self, reference: str) -> Optional[dict]:
        """The container's inspect document, or None when no container answers to it."""
        try:
            return self.get(f"/containers/{urllib.parse.quote(reference, safe='')}/json")
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
        connection, response = self._request("/events", params, timeout=None)
        connection.sock.settimeout(None)  # events come when they come
        try:
            while True:
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise EngineUnreachable(f"the Engine's event stream broke: {error}") from None
        finally:
            connection.close()


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()
