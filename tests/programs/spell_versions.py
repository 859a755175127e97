"""Ask an Engine API socket one thing under many spellings of its API version, pipelined on
one connection, as an attacker filling a cache would.

    spell_versions.py SOCKET VERSION PATH COUNT

VERSION is MAJOR.MINOR (1.41); request i spells it with leading zeros (/v001.0041/...) that
the Engine reads as the same number. Prints one JSON line: the count of answers by status.
Standard library only: it runs inside the test containers.
"""

from __future__ import annotations

import json
import socket
import sys

BATCH = 100


def spelled(version: str, i: int) -> str:
    major, minor = version.split(".")
    return "/v" + "0" * (i % 181) + major + "." + "0" * (i // 181) + minor


def read_answer(reader: socket.SocketIO, buffer: bytearray) -> int:
    """One answer's status, its body consumed (Content-Length framing)."""
    while b"\r\n\r\n" not in buffer:
        chunk = reader.read(65536)
        if not chunk:
            raise ConnectionError("closed mid-answer")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines
                   if line.lower().startswith("content-length:")), 0)
    while len(rest) < length:
        chunk = reader.read(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    buffer[:] = rest[length:]
    return int(lines[0].split()[1])


def main(argv: list[str]) -> int:
    path, version, target, count = argv[0], argv[1], argv[2], int(argv[3])
    counts: dict[str, int] = {}
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(30)
    connection.connect(path)
    reader = socket.SocketIO(connection, "rb")
    buffer = bytearray()
    for start in range(0, count, BATCH):
        batch = range(start, min(start + BATCH, count))
        connection.sendall(b"".join(
            f"GET {spelled(version, i)}{target} HTTP/1.1\r\nHost: docker\r\n\r\n".encode()
            for i in batch))
        for _ in batch:
            status = str(read_answer(reader, buffer))
            counts[status] = counts.get(status, 0) + 1
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
