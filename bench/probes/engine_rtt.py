"""The start path's Engine requests for one link, timed directly and through linkinit proxy.

Usage (inside a container with both /var/run/docker.sock and /run/linkinit mounted):
    engine_rtt.py SELF CHILD ROUNDS
Each round, in alternating order, a fresh client does what linkinit does at start with one
link: ping, inspect this container, inspect the child. Prints {"direct": [ms...],
"proxy": [ms...]} as one JSON line.
"""

import json
import sys
import time

from linkinit.engine.client import Engine

HOSTS = {"direct": "unix:///var/run/docker.sock", "proxy": "unix:///run/linkinit/engine.sock"}


def one_start(host: str, me: str, child: str) -> float:
    began = time.perf_counter()
    engine = Engine(host)
    engine.ping()
    for reference in (me, child):
        if engine.inspect_container(reference) is None:
            raise SystemExit(f"{host}: no container {reference}")
    return (time.perf_counter() - began) * 1000


def main(me: str, child: str, rounds: int) -> None:
    times: dict = {"direct": [], "proxy": []}
    for round_ in range(rounds):
        order = ["direct", "proxy"] if round_ % 2 == 0 else ["proxy", "direct"]
        for way in order:
            times[way].append(one_start(HOSTS[way], me, child))
    print(json.dumps(times))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
