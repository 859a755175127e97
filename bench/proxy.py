"""A counting Unix-socket forwarder placed between a container and the Docker Engine.

Mounted into a container in place of /var/run/docker.sock, it forwards every byte both ways
and records each HTTP request line the container sends, so the benchmark can show how many
Engine requests linkinit makes (and which), independently of what linkinit says about itself.
It also times each request from its head to the first byte of the answer: the Engine's
latency as a caller on its socket sees it (linkinit speaks HTTP/1.0, one request per
connection).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from typing import Optional

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]$")
_CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.I | re.M)
_API_VERSION = re.compile(r"^/v\d+\.\d+(?=/)")
_HEADER_LIMIT = 1 << 16


def normalise(path: str) -> str:
    """``/v1.41/containers/db1/json?x`` -> ``/containers/{ref}/json``: one key per endpoint."""
    path = _API_VERSION.sub("", path.split("?", 1)[0])
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "containers" and parts[2] != "json":
        parts[2] = "{ref}"
    return "/".join(parts)


class CountingProxy:
    """Forward connections on ``path`` to ``upstream``, recording (time, method, path)."""

    def __init__(self, path: str, upstream: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.upstream = upstream
        self._lock = threading.Lock()
        self._log: list[tuple[float, str, str]] = []
        self._latencies: list[tuple[str, float]] = []
        self._server: Optional[socket.socket] = None

    def start(self) -> CountingProxy:
        if os.path.exists(self.path):
            os.unlink(self.path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.path)
        os.chmod(self.path, 0o660)
        server.listen(128)
        self._server = server
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if os.path.exists(self.path):
            os.unlink(self.path)

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._latencies.clear()

    def latencies(self) -> list[tuple[str, float]]:
        """(normalised path, seconds from the request's head to the answer's first byte) of
        each connection's first request since the last reset."""
        with self._lock:
            return list(self._latencies)

    def requests(self) -> list[tuple[float, str, str]]:
        """What was asked since the last reset: (monotonic time, method, normalised path)."""
        with self._lock:
            return list(self._log)

    def _accept(self) -> None:
        while self._server is not None:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.upstream)
        except OSError:
            client.close()
            upstream.close()
            return
        asked: list[tuple[float, str, str]] = []  # this connection's requests
        threading.Thread(target=self._pump, args=(upstream, client, False, asked),
                         daemon=True).start()
        self._pump(client, upstream, True, asked)

    def _pump(self, source: socket.socket, sink: socket.socket, count: bool,
              asked: list) -> None:
        pending = b""  # request bytes not yet parsed (count direction only)
        skip = 0  # body bytes of the current request still to pass
        answered = False
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if count:
                    pending, skip = self._parse(pending + data, skip, asked)
                elif not answered and asked:
                    answered = True
                    began, _, path = asked[0]
                    with self._lock:
                        self._latencies.append((path, time.monotonic() - began))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _parse(self, buffer: bytes, skip: int, asked: list) -> tuple[bytes, int]:
        """Record each complete request head in ``buffer``; skip bodies by Content-Length."""
        while buffer:
            if skip:
                taken = min(skip, len(buffer))
                buffer, skip = buffer[taken:], skip - taken
                continue
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return (buffer if len(buffer) < _HEADER_LIMIT else b""), 0
            head, buffer = buffer[:end], buffer[end + 4 :]
            line = head.split(b"\r\n", 1)[0]
            match = _REQUEST_LINE.match(line)
            if match:
                entry = (time.monotonic(), match.group(1).decode(),
                         normalise(match.group(2).decode(errors="replace")))
                asked.append(entry)
                with self._lock:
                    self._log.append(entry)
            length = _CONTENT_LENGTH.search(head)
            skip = int(length.group(1)) if length else 0
        return b"", skip
