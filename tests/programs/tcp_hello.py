#!/usr/bin/env python3
"""Cooperating TCP ends for network tests.

``tcp_hello.py serve PORT``: listen on every address and answer each connection with
``hello from <hostname>`` and a newline, then close it; runs until killed or terminated
(SIGTERM ends it also as a container's PID 1, so a service's task stops at once).

``tcp_hello.py ask HOST PORT [SECONDS]``: connect (each attempt at most one second, again
until SECONDS, 10 by default, have passed), print the answer and exit 0; exit 1 with the last
error on stderr when no connection was made in time.
"""

from __future__ import annotations

import signal
import socket
import sys
import time


def serve(port: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    greeting = f"hello from {socket.gethostname()}\n".encode()
    with socket.create_server(("", port)) as server:
        while True:
            connection, _ = server.accept()
            with connection:
                connection.sendall(greeting)


def ask(host: str, port: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=1) as connection:
                print(connection.makefile().readline().strip(), flush=True)
                return 0
        except OSError as error:
            if time.monotonic() >= deadline:
                print(f"tcp_hello: no answer from {host}:{port} in {seconds} s: {error}",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        sys.exit(ask(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4
                     else 10.0))
