"""A child that becomes ready on cue: once FILE exists, listen on PORT and print the time.

The bench creates FILE (docker exec) once the waiter in the parent is known to be waiting;
the printed realtime nanoseconds are the moment the port accepts connections: the start of
the readiness latency the benchmark measures.
"""

import os
import socket
import sys
import time

cue, port = sys.argv[1], int(sys.argv[2])
give_up = time.monotonic() + 120
while not os.path.exists(cue) and time.monotonic() < give_up:
    time.sleep(0.002)
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen(128)
print(time.time_ns(), flush=True)
deadline = time.monotonic() + 300
server.settimeout(1.0)
while time.monotonic() < deadline:
    try:
        connection, _ = server.accept()
        connection.close()
    except OSError:
        continue
