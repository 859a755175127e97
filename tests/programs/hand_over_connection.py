"""Open a connection to the proxy from inside a container's cgroup, prove it is served, hand
it to the test over a Unix socket (SCM_RIGHTS) and exit: what an attacker keeps when the
process that connected is gone.

    hand_over_connection.py CGROUP_PROCS PROXY_SOCKET HANDOVER_FD

Prints nothing; exits 0 once the connection is handed over, 1 (with the reason) if not.
"""

from __future__ import annotations

import os
import socket
import sys


def main(argv: list[str]) -> int:
    procs, proxy, handover = argv[0], argv[1], int(argv[2])
    with open(procs, "w") as file:  # join the container's cgroup: the proxy reads it
        file.write(str(os.getpid()))
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(10)
    connection.connect(proxy)
    connection.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    head = connection.recv(65536)
    if not head.startswith(b"HTTP/1.1 200"):
        print(f"the proxy did not serve the first request: {head[:200]!r}", file=sys.stderr)
        return 1
    socket.send_fds(socket.socket(fileno=handover), [b"x"], [connection.fileno()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
