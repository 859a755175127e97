"""HTTP/1.0 over a plain socket, read strictly: what the Engine client sends and reads.

The start path cannot afford ``http.client`` (~35 ms of imports here) or h11 (~60 ms), and
the other end is the Engine or linkinit's own proxy, not a stranger: a status line and
headers with a length limit, bodies by ``Content-Length``, ``chunked`` or to the close with a
size limit, event lines with a length limit, all under one deadline. Anything unexpected is
an ``EngineProtocolError``, never a guess. The proxy, which does face strangers, parses with
aiohttp instead; it shares only ``quote`` and ``query`` from here.
"""

from __future__ import annotations

import _socket  # socket.py's C core: socket.py itself costs ~5 ms of imports (selectors)
import time

from linkinit import fastjson as json  # not json: it imports re (~4 ms of every start)
from linkinit.errors import EngineProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Iterator, Mapping, Optional

HEADER_LIMIT = 64 * 1024  # one status or header line
BODY_LIMIT = 64 * 1024 * 1024  # one JSON answer (a list of a few thousand containers fits)
EVENT_LIMIT = 1024 * 1024  # one event of the stream
_RECV = 65536


class Reader:
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

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        line = reader.readline(HEADER_LIMIT)
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            if not line:
                raise BrokenOff("the connection closed before an answer")
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
                raise BrokenOff("the answer's headers ended early")
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
                raise BrokenOff(f"the answer broke off after {len(body)} of {self.length} bytes")
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
                raise BrokenOff("the chunked answer broke off")
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
                raise BrokenOff("the chunked answer broke off inside a chunk")
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
            raise BrokenOff("the stream ended inside a line")

    @property
    def sock(self) -> _socket.socket:
        return self._reader.sock

    def close(self) -> None:
        self._reader.closed = True
        self._reader.sock.close()


class BrokenOff(OSError):
    """The connection ended in the middle of an answer (an Engine going away)."""


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str) -> str:
    """Percent-encode all but unreserved bytes, as urllib.parse.quote(safe="") does.

    urllib.parse costs ~5 ms of imports inside the container, on every start.
    """
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def query(params: Mapping[str, Any]) -> str:
    return "&".join(f"{quote(str(key))}={quote(str(value))}" for key, value in params.items())


def why(error: OSError) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return error.strerror or str(error) or type(error).__name__


def error_message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()[:200]
