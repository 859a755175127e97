"""Protocol probes: does the child answer its own protocol, not only accept a connection?

``wait=redis|postgres|mysql|http[:PATH[:STATUS]]``. Each probe sends the few bytes that make
the server say whether it serves (a PING, a StartupMessage, nothing for MySQL's greeting, a
GET) and reads the one answer that tells: no client library, no credentials. Reading and
judging are apart: ``classify`` takes the bytes an answer began with and says ready or not,
and what the child said, so the rules are tested without a server.

Imported only when a link declares one of these modes (readiness.py): the start path of the
other modes never loads it. Standard library only, and ``_socket`` rather than ``socket.py``
(``engine.py`` says why).
"""

from __future__ import annotations

import _socket
import time
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional

TRY_SECONDS = 1.0  # one try: connect, send, and the first answer, at most this long
MAX_ANSWER = 8192  # bytes read at most: the part of an answer that decides is short
# The well-known port of each protocol, asked when the child exposes no TCP port and the
# link names none (link.<alias>.port).
DEFAULT_PORTS = {"redis": 6379, "postgres": 5432, "mysql": 3306, "http": 80}
# Redis errors that mean "up, but not serving yet": the dataset loads, a script runs, a
# replica has lost its primary. Any other error reply (NOAUTH, WRONGPASS, ...) is a server
# that serves: it would answer a client that logs in.
REDIS_NOT_READY = ("LOADING", "BUSY", "MASTERDOWN")
# PostgreSQL SQLSTATEs that mean "not yet": cannot connect now (starting up, shutting down,
# in recovery with hot_standby off), too many connections. Any other error (28P01 wrong
# password, 28000 no pg_hba entry, 3D000 no such database) comes from a server that serves.
POSTGRES_NOT_READY = ("57P03", "53300")
# MariaDB/MySQL error packets sent instead of the greeting that still prove a serving
# server: 1130, this host is not in its grants (a server that has started and checks them).
MYSQL_SERVING_ERRORS = (1130,)
POSTGRES_LOGGED_IN = b"R\x00\x00\x00\x08\x00\x00\x00\x00"  # AuthenticationOk (trust)
POSTGRES_TERMINATE = b"X\x00\x00\x00\x04"


class Answer(namedtuple("Answer", "ready said output", defaults=("",))):
    """One try's outcome. ready: bool; said: what the child answered, for progress lines
    (``the database system is starting up (57P03)``, ``connection refused``); output: more
    that the timeout line shows but progress lines leave out, since it may change at every
    try (``exec:``'s last line of output)."""

    __slots__ = ()


def kind_of(wait: str) -> str:
    """``http:/health:204`` -> ``http``; ``redis`` -> ``redis``."""
    return wait.partition(":")[0]


def is_protocol(wait: str) -> bool:
    return kind_of(wait) in DEFAULT_PORTS


def http_target(wait: str) -> tuple[str, Optional[int]]:
    """``http:/health:204`` -> ``("/health", 204)``; ``http`` or ``http:/`` -> ``("/", None)``
    (the stored form comes from ``declare.parse_wait``)."""
    rest = wait.partition(":")[2] or "/"
    head, colon, tail = rest.rpartition(":")
    if colon and tail.isdigit():
        return head or "/", int(tail)
    return rest, None


# -- what each protocol sends, and when enough of the answer has come ----------------------


def request(wait: str, address: str, port: int) -> bytes:
    """The bytes a probe sends first (MySQL: none, the server speaks first)."""
    kind = kind_of(wait)
    if kind == "redis":
        return b"*1\r\n$4\r\nPING\r\n"
    if kind == "postgres":
        # StartupMessage, protocol 3.0. The server's first answer says whether it serves
        # before it checks a password; ``postgres`` (the role every cluster starts with, and
        # by default its database) keeps the server's log quiet where a made-up role would
        # log "role does not exist" at every try.
        body = b"\x00\x03\x00\x00user\x00postgres\x00\x00"
        return (len(body) + 4).to_bytes(4, "big") + body
    if kind == "http":
        path = http_target(wait)[0]
        host = f"[{address}]" if ":" in address else address
        return (f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: linkinit\r\n"
                "Connection: close\r\n\r\n").encode()
    return b""


def complete(kind: str, data: bytes) -> bool:
    """Whether ``data`` holds the whole of the part of the answer that decides."""
    if kind == "redis":
        return b"\r\n" in data
    if kind == "http":
        return b"\n" in data
    if kind == "postgres":
        return len(data) >= 5 and len(data) >= 1 + int.from_bytes(data[1:5], "big")
    return len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:3], "little")


# -- judging an answer (pure) ---------------------------------------------------------------


def classify(wait: str, data: bytes) -> Answer:
    """Ready or not, from the bytes the child's answer began with (maybe cut short)."""
    kind = kind_of(wait)
    if not data:
        return Answer(False, "closed the connection without answering")
    if kind == "redis":
        return redis_answer(data)
    if kind == "postgres":
        return postgres_answer(data)
    if kind == "mysql":
        return mysql_answer(data)
    return http_answer(data, http_target(wait)[1])


def _printable(data: bytes, limit: int = 60) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "." for c in text)


def redis_answer(data: bytes) -> Answer:
    line = data.split(b"\r\n", 1)[0]
    text = _printable(line[1:], 120)
    if line == b"+PONG":
        return Answer(True, "PONG")
    if line[:1] == b"-" and b"\r\n" in data:
        word = text.split(" ", 1)[0]
        return Answer(word not in REDIS_NOT_READY, text)
    return Answer(False, f"not a Redis answer: {_printable(data)!r}")


def postgres_answer(data: bytes) -> Answer:
    kind = data[:1]
    if kind == b"R" and complete("postgres", data):
        return Answer(True, "asks for authentication")
    if kind == b"E" and complete("postgres", data):
        fields = _postgres_fields(data[5:1 + int.from_bytes(data[1:5], "big")])
        code = fields.get("C", "?")
        message = fields.get("M", "")
        return Answer(code not in POSTGRES_NOT_READY, f"{message} ({code})")
    return Answer(False, f"not a PostgreSQL answer: {_printable(data)!r}")


def _postgres_fields(body: bytes) -> dict[str, str]:
    """An ErrorResponse's fields: a type byte, then a NUL-terminated string, until a NUL."""
    fields: dict[str, str] = {}
    for part in body.split(b"\x00"):
        if part:
            fields.setdefault(chr(part[0]), _printable(part[1:], 200))
    return fields


def mysql_answer(data: bytes) -> Answer:
    if not complete("mysql", data):
        return Answer(False, f"not a MySQL answer: {_printable(data)!r}")
    payload = data[4:4 + int.from_bytes(data[:3], "little")]
    if payload[:1] == b"\x0a" and b"\x00" in payload[1:]:
        version = _printable(payload[1:].split(b"\x00", 1)[0])
        return Answer(True, f"greeting from {version}")
    if payload[:1] == b"\xff" and len(payload) >= 3:
        code = int.from_bytes(payload[1:3], "little")
        message = payload[3:]
        if message[:1] == b"#":
            message = message[6:]  # '#' and a five-character SQLSTATE
        return Answer(code in MYSQL_SERVING_ERRORS, f"error {code}: {_printable(message, 120)}")
    return Answer(False, f"not a MySQL greeting: {_printable(data)!r}")


def http_answer(data: bytes, status: Optional[int] = None) -> Answer:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    parts = line.split(b" ", 2)
    if (b"\n" not in data or len(parts) < 2 or not parts[0].startswith(b"HTTP/")
            or not parts[1].isdigit()):
        return Answer(False, f"not an HTTP answer: {_printable(data)!r}")
    got = int(parts[1])
    ready = got == status if status is not None else 200 <= got < 400
    return Answer(ready, _printable(b" ".join(parts[1:]), 120))


# -- one try over TCP ------------------------------------------------------------------------


def ask(wait: str, address: str, port: int, timeout: float = TRY_SECONDS,
        clock: Callable[[], float] = time.monotonic) -> Answer:
    """Connect to ``address:port`` (an IP), send the probe's request, read until the answer
    decides, and judge it. Never raises: a refused, reset or silent connection is an Answer
    that is not ready."""
    kind = kind_of(wait)
    deadline = clock() + timeout
    sock = _socket.socket(_socket.AF_INET6 if ":" in address else _socket.AF_INET,
                          _socket.SOCK_STREAM)
    data = b""
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        payload = request(wait, address, port)
        if payload:
            sock.sendall(payload)
        data = _read(sock, kind, deadline, clock)
        if kind == "postgres" and data[:9] == POSTGRES_LOGGED_IN:
            sock.sendall(POSTGRES_TERMINATE)  # a goodbye, not a broken connection, in its log
    except ConnectionRefusedError:
        return Answer(False, "connection refused")
    except TimeoutError:
        if not data:
            return Answer(False, f"no answer within {timeout:g}s")
    except OSError as error:
        return Answer(False, error.strerror or type(error).__name__)
    finally:
        sock.close()
    return classify(wait, data)


def _read(sock: _socket.socket, kind: str, deadline: float,
          clock: Callable[[], float]) -> bytes:
    """Until the answer decides, the peer closes, MAX_ANSWER bytes or the deadline (then
    ``TimeoutError``, or what came so far when something came)."""
    data = b""
    while not complete(kind, data) and len(data) < MAX_ANSWER:
        remaining = deadline - clock()
        if remaining <= 0:
            if data:
                return data
            raise TimeoutError
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(MAX_ANSWER - len(data))
        except (TimeoutError, ConnectionResetError):
            if data:
                return data
            raise
        if not chunk:
            break
        data += chunk
    return data
