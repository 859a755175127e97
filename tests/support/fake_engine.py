"""A fake Engine on a Unix socket, for the Engine client's own tests (never for end to end).

Each connection's request is read up to its blank line and recorded; ``answer(request)``
returns the steps to play back: ``bytes`` are sent, a ``float`` is a pause in seconds, and
``CLOSE`` ends the connection at once. The server thread is bounded: a connection that
waits for its client longer than ``linger`` seconds is closed.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from typing import Callable, List, Sequence, Union

Step = Union[bytes, float, None]
CLOSE = None


def http(status: int, body: bytes = b"", headers: Sequence[str] = (), length: bool = True,
         reason: str = "X") -> bytes:
    """One HTTP/1.0 answer as bytes."""
    lines = [f"HTTP/1.0 {status} {reason}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_answer(document: object, status: int = 200, api: str = "1.41") -> bytes:
    return http(status, json.dumps(document).encode(),
                ["Content-Type: application/json", f"Api-Version: {api}"])


def chunked(body: bytes, sizes: Sequence[int] = (7,)) -> bytes:
    """``body`` in chunks of the given sizes (the last size repeats), then the last chunk."""
    out, index, step = b"", 0, 0
    while index < len(body):
        size = max(sizes[min(step, len(sizes) - 1)], 1)
        piece = body[index:index + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        index, step = index + size, step + 1
    return out + b"0\r\n\r\n"


def ping(api: str = "1.41") -> bytes:
    return http(200, b"OK", [f"Api-Version: {api}"])


class FakeEngine:
    """The server: ``path`` is its socket, ``requests`` the request lines it received."""

    def __init__(self, answer: Callable[[str], List[Step]], linger: float = 10.0) -> None:
        self._dir = tempfile.mkdtemp(prefix="linkinit-fake-engine-")
        self.path = os.path.join(self._dir, "engine.sock")
        self.host = f"unix://{self.path}"
        self.answer = answer
        self.linger = linger
        self.requests: List[str] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(16)
        self._server.settimeout(0.1)
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.linger)
        with conn:
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(4096)
                    if not piece:
                        return
                    data += piece
            except OSError:
                return
            line = data.split(b"\r\n", 1)[0].decode()
            self.requests.append(line)
            self._play(conn, self.answer(line))

    def _play(self, conn: socket.socket, steps: List[Step]) -> None:
        for step in steps:
            if self._stop.is_set() or step is CLOSE:
                return
            if isinstance(step, float):
                self._stop.wait(step)
                continue
            try:
                conn.sendall(step)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        deadline = time.monotonic() + 5
        for thread in [self._accepting, *self._threads]:
            thread.join(max(deadline - time.monotonic(), 0))
        for name in os.listdir(self._dir):
            os.unlink(os.path.join(self._dir, name))
        os.rmdir(self._dir)
