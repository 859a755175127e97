"""Open many event streams to an Engine API socket from one container, as an attacker would,
and hold them open.

    open_event_streams.py SOCKET COUNT RELEASE_FILE

Prints one JSON line: how many streams were answered with each status, and one message of
each refused status; then holds every open connection until RELEASE_FILE exists (at most
120 s). Standard library only: it runs inside the test containers.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time


def open_stream(path: str) -> tuple[str, str, socket.socket]:
    """(status, message of a refusal, the connection) for one GET /events."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(10)
    try:
        connection.connect(path)
        connection.sendall(b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError as error:
        connection.close()
        return type(error).__name__, "", connection
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "none"
    body = answer.partition(b"\r\n\r\n")[2]
    return status, body.decode(errors="replace"), connection


def main(argv: list[str]) -> int:
    path, count, release = argv[0], int(argv[1]), argv[2]
    counts: dict[str, int] = {}
    messages: dict[str, str] = {}
    held = []
    for _ in range(count):
        status, body, connection = open_stream(path)
        counts[status] = counts.get(status, 0) + 1
        if status != "200" and body:
            messages.setdefault(status, body)
        held.append(connection)
    print(json.dumps({"counts": counts, "messages": messages}), flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
