"""What follow mode costs and how fast it follows, on real containers (``bench/run`` runs it).

- latency: from the child's ``start`` event in the Engine (it now has its new address) to
  COMMAND's HUP handler running (``/etc/hosts`` and the links file are rewritten before the
  signal is sent), over several moves of the child to a new address;
- memory: the container's resident memory beside the same container without follow mode
  (PID 1's VmRSS in both, plus the watcher's);
- Engine requests while nothing changes, counted by a forwarder on the socket over a window
  that holds one periodic resync.

Reuses linkbench's image, lab and counting proxy; every container and network is removed
at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from typing import Optional, Sequence

import docker
from linkbench import (
    LABELS,
    SOCKET,
    Lab,
    build_image,
    exec_out,
    interrupts_as_exceptions,
    log,
    median,
    p90,
)
from proxy import CountingProxy

TARGET_FOLLOW_MS = 100.0
TARGET_EXTRA_RSS_KB = 15 * 1024
RESYNC_WINDOW = 35.0  # seconds of quiet: the event stream plus one resync (every 30 s)
HUP_PRINTER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGHUP, lambda *_: print(time.time_ns(), flush=True))\n"
    "open('/tmp/up', 'w').close()\n"
    "while True: time.sleep(3600)\n"
)


class Moves:
    """A child on a network of its own, moved to a new address on demand."""

    def __init__(self, lab: Lab, network: str) -> None:
        self.lab, self.network = lab, network
        self.child = self._container(["nc", "-lk", "6379"], expose=[6379])
        lab.api.start(self.child)

    def _container(self, command: Sequence[str], expose: Sequence[int] = ()) -> str:
        api = self.lab.api
        created = api.create_container(
            "linkinit-bench:latest", list(command), entrypoint=[], labels=LABELS,
            ports=list(expose) or None,
            host_config=api.create_host_config(network_mode=self.network))
        self.lab.made.append(created["Id"])
        return str(created["Id"])

    def move(self) -> float:
        """Stop the child, park a filler on its address, start it: the start event's time."""
        self.lab.api.stop(self.child, timeout=1)
        filler = self._container(["sleep", "600"])
        self.lab.api.start(filler)
        since = time.time() - 1
        self.lab.api.start(self.child)
        for event in self.lab.api.events(since=since, until=time.time() + 1, decode=True,
                                         filters={"container": self.child, "event": "start"}):
            return int(event["timeNano"]) / 1e9
        raise RuntimeError("no start event for the child")


def parent(lab: Lab, network: str, child: str, command: Sequence[str], policy: str,
           socket_path: str = SOCKET) -> str:
    api = lab.api
    created = api.create_container(
        "linkinit-bench:latest", list(command), entrypoint=["linkinit", "--"],
        labels={**LABELS, "link.db": child, "linkinit.on-change": policy},
        host_config=api.create_host_config(
            network_mode=network, binds={socket_path: {"bind": SOCKET, "mode": "ro"}}))
    lab.made.append(created["Id"])
    api.start(created["Id"])
    deadline = time.monotonic() + 30
    while exec_out(lab, created["Id"], ["test", "-e", "/tmp/up"])[0] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the parent's COMMAND did not start")
        time.sleep(0.05)
    return str(created["Id"])


def hup_times(lab: Lab, cid: str) -> list[float]:
    out = lab.api.logs(cid, stdout=True, stderr=False).decode()
    return [int(line) / 1e9 for line in out.split() if line.isdigit()]


def measure_latency(lab: Lab, network: str, moves: int) -> list[float]:
    rig = Moves(lab, network)
    cid = parent(lab, network, rig.child, ["python3", "-c", HUP_PRINTER], "signal:HUP")
    latencies = []
    for number in range(moves):
        started = rig.move()
        deadline = time.monotonic() + 30
        while len(hup_times(lab, cid)) <= number:
            if time.monotonic() > deadline:
                raise RuntimeError("no HUP after the child moved")
            time.sleep(0.02)
        latencies.append((hup_times(lab, cid)[number] - started) * 1000)
        log(f"follow: move {number + 1}/{moves}: {latencies[-1]:.0f} ms")
    return latencies


def rss_kb(lab: Lab, cid: str, pattern: str) -> int:
    """VmRSS of the processes whose command line contains ``pattern``, summed."""
    _, out = exec_out(lab, cid, ["sh", "-c", "for p in /proc/[0-9]*; do "
                                 "tr '\\0' ' ' < $p/cmdline; echo \" $(grep VmRSS $p/status)\"; "
                                 "done"])
    return sum(int(line.split("VmRSS:")[1].split()[0]) for line in out.splitlines()
               if pattern in line and "VmRSS:" in line)


def measure_memory(lab: Lab, network: str) -> dict[str, int]:
    rig = Moves(lab, network)
    sleeper = ["sh", "-c", "touch /tmp/up; exec sleep 600"]
    plain = parent(lab, network, rig.child, sleeper, "none")
    followed = parent(lab, network, rig.child, sleeper, "hosts")
    time.sleep(1)
    return {
        "pid1 without follow": rss_kb(lab, plain, "linkinit: supervising"),
        "pid1 with follow": rss_kb(lab, followed, "linkinit: supervising"),
        "watcher": rss_kb(lab, followed, "_follow"),
    }


def measure_idle_requests(lab: Lab, network: str, workdir: str) -> Counter:
    rig = Moves(lab, network)
    proxy = CountingProxy(os.path.join(workdir, "engine.sock")).start()
    try:
        parent(lab, network, rig.child, ["sh", "-c", "touch /tmp/up; exec sleep 600"],
               "hosts", socket_path=proxy.path)
        time.sleep(1)
        proxy.reset()
        time.sleep(RESYNC_WINDOW)
        return Counter(f"{method} {path}" for _, method, path in proxy.requests())
    finally:
        proxy.close()


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(latencies: list[float], memory: dict[str, int], idle: Counter) -> str:
    extra = memory["pid1 with follow"] - memory["pid1 without follow"] + memory["watcher"]
    fast = median(latencies) < TARGET_FOLLOW_MS
    lines = [
        "| follow mode | figure | target |",
        "| --- | ---: | ---: |",
        f"| child's new address -> hosts rewritten and HUP delivered (median / p90 of "
        f"{len(latencies)}) | {median(latencies):.0f} / {p90(latencies):.0f} ms | "
        f"< {TARGET_FOLLOW_MS:.0f} ms {verdict(fast)} |",
        f"| PID 1 VmRSS without / with follow mode | {memory['pid1 without follow'] / 1024:.1f} / "
        f"{memory['pid1 with follow'] / 1024:.1f} MB | |",
        f"| the watcher's VmRSS | {memory['watcher'] / 1024:.1f} MB | |",
        f"| extra resident memory of the container | {extra / 1024:.1f} MB | "
        f"< {TARGET_EXTRA_RSS_KB / 1024:.0f} MB {verdict(extra < TARGET_EXTRA_RSS_KB)} |",
        f"| Engine requests in {RESYNC_WINDOW:.0f} s with nothing changing | "
        f"{', '.join(f'{n} x {k}' for k, n in sorted(idle.items())) or 'none'} | "
        "the event stream + one resync |",
    ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/follow.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 moves instead of 10")
    parser.add_argument("--worktree", action="store_true",
                        help="measure the work tree as it is, not the committed HEAD")
    options = parser.parse_args(argv)
    client = docker.from_env(timeout=120)
    build_image(client, options.worktree)
    lab = Lab(client)
    workdir = tempfile.mkdtemp(prefix="linkinit-bench-follow-")
    network = client.networks.create(f"lb-follow-{uuid.uuid4().hex[:8]}", labels=LABELS)
    try:
        with interrupts_as_exceptions():
            latencies = measure_latency(lab, network.name, 3 if options.quick else 10)
            memory = measure_memory(lab, network.name)
            idle = measure_idle_requests(lab, network.name, workdir)
    finally:
        lab.remove_all()
        network.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(latencies, memory, idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
