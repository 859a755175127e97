"""A dockerize-style waiter for health: ask the Engine once a second, then exec COMMAND.

Usage: poll_health.py CONTAINER -- COMMAND...; polls /containers/CONTAINER/json over the
mounted socket at most 60 times, 1 s apart, until State.Health.Status is "healthy".
"""

import http.client
import json
import os
import socket
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect("/var/run/docker.sock")


def health(container: str) -> str:
    connection = UnixConnection("localhost", timeout=5)
    try:
        connection.request("GET", f"/containers/{container}/json")
        document = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return ((document.get("State") or {}).get("Health") or {}).get("Status", "")


container, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
print(f"poll_health: waiting for {container}", file=sys.stderr, flush=True)
for _ in range(60):
    if health(container) == "healthy":
        os.execvp(command[0], command)
    time.sleep(1)
sys.exit(75)
