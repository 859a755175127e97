"""Ask an Engine API socket one thing and print what came back, as one JSON line.

    engine_request.py SOCKET METHOD PATH [--stream SECONDS]

Prints {"status": N, "body": <JSON or text>}; with --stream, the body is the list of event
lines read within SECONDS (then the connection is dropped). Standard library only: it runs
inside the test containers, as a parent's application would.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def stream(response: http.client.HTTPResponse, seconds: float) -> list:
    lines = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = response.readline()
        except TimeoutError:
            break  # quiet for the whole window: done (a timed-out socket reads no more)
        if not line:
            break
        if line.strip():
            lines.append(json.loads(line))
    return lines


def main(argv: list[str]) -> int:
    path, method, target = argv[:3]
    seconds = float(argv[4]) if len(argv) > 4 and argv[3] == "--stream" else 0.0
    connection = UnixConnection(path, timeout=10)  # for the answer's head, whatever follows
    connection.request(method, target, body=b"{}" if method == "POST" else None,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    if seconds and response.status == 200:
        connection.sock.settimeout(seconds)  # then the stream's quiet window
        body: object = stream(response, seconds)
    else:
        raw = response.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
    print(json.dumps({"status": response.status, "body": body}))
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
