"""Follow a container's events on an Engine API socket; at the first ACTION event, inspect
it and print its State as one JSON line, as a parent woken by a child's event does.

    inspect_after_event.py SOCKET CONTAINER ACTION SECONDS

Exits 1 if no ACTION event came within SECONDS. Standard library only: it runs inside the
test containers.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse

from engine_request import UnixConnection


def main(argv: list[str]) -> int:
    path, container, action, seconds = argv[0], argv[1], argv[2], float(argv[3])
    filters = urllib.parse.quote(json.dumps({"container": [container]}))
    events = UnixConnection(path, timeout=seconds)
    events.request("GET", f"/events?filters={filters}")
    response = events.getresponse()
    print("following", flush=True)  # the stream is open: the caller may now act
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = response.readline()
        if not line:
            break
        if line.strip() and json.loads(line).get("Action") == action:
            inspect = UnixConnection(path, timeout=10)
            inspect.request("GET", f"/containers/{container}/json")
            print(json.dumps(json.loads(inspect.getresponse().read())["State"]))
            return 0
    print(f"no {action} event for {container} within {seconds} s")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
