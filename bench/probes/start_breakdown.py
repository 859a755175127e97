"""Inside one parent container: where ``linkinit -- true`` and ``--print-env`` spend their time.

Usage (the parent has the Engine socket, one ready link by label, strace at /opt/strace):
    start_breakdown.py RUNS TRACED_RUNS
Prints one JSON object: the floors (interpreter starts, tini, one Engine request's round trip),
the untraced totals (wall and CPU, interleaved), and per variant the phases of ``TRACED_RUNS``
runs under ``strace -f -ttt -T`` (only execve, clone, connect, sendto, recvfrom and exit_group
are stopped for, through seccomp, so the tracing adds little). Standard library only: it runs
in the bench image's Python, not linkinit's.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time

PYTHON = ["linkinit"]
BUNDLE = ["/opt/linkinit/linkinit"]
VARIANTS = {
    "linkinit -- true": [*PYTHON, "--", "true"],
    "linkinit --print-env": [*PYTHON, "--print-env"],
    "bundle -- true": [*BUNDLE, "--", "true"],
    "bundle --print-env": [*BUNDLE, "--print-env"],
}
FLOORS = {
    "python3 -I -S -c pass": ["python3", "-I", "-S", "-c", "pass"],
    "python3 -c pass": ["python3", "-c", "pass"],
    "tini -s -- true": ["tini", "-s", "--", "true"],
}
STRACE = ["/lib64/ld-linux-x86-64.so.2", "--library-path", "/opt/strace", "/opt/strace/strace",
          "-f", "-ttt", "-T", "-s", "80", "--seccomp-bpf", "-e", "signal=none",
          "-e", "trace=execve,clone,clone3,vfork,connect,sendto,recvfrom,exit_group"]
_LINE = re.compile(r"^(\d+)\s+([0-9.]+) (?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")
_DURATION = re.compile(r"<([0-9.]+)>$")
_EXITED = re.compile(r"^\d+\s+([0-9.]+) \+\+\+ exited")
_REQUEST = re.compile(r'"GET (/\S*?)(?:\?\S*)? HTTP')


def run(argv: list[str]) -> tuple[float, float]:
    """(wall ms, CPU ms of the process and everything it waited for); output to /dev/null."""
    null = os.open("/dev/null", os.O_WRONLY)
    began = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
    _, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - began) * 1000
    os.close(null)
    if status:
        raise SystemExit(f"start_breakdown: {argv} exited with wait status {status}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, dict[str, list[float]]]:
    """Each command once per round, in turn, ``runs`` rounds: drift hits every one alike."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            wall, cpu = run(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {"wall": walls, "cpu": cpus}


def round_trips(runs: int) -> dict[str, list[float]]:
    """One request on a fresh connection, as linkinit makes each: connect, send, read to the
    close (HTTP/1.0), in ms; ``/_ping`` and an inspect of this container."""
    me = os.environ["LINKINIT_CONTAINER"]
    paths = {"ping": "/_ping", "inspect": f"/v1.41/containers/{me}/json"}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(runs):
        for name, path in paths.items():
            began = time.perf_counter()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect("/var/run/docker.sock")
                sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
                while sock.recv(65536):
                    pass
            times[name].append((time.perf_counter() - began) * 1000)
    return times


# -- one traced start --------------------------------------------------------------------------


def events(trace: str) -> list[dict]:
    """strace's lines as events: pid, time (s), call, the rest of the line; a call that was
    interrupted by another process's line is one event at its start, with its end time."""
    found: list[dict] = []
    open_calls: dict[int, dict] = {}
    for line in trace.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        pid, stamp, resumed, call, rest = match.groups()
        event = {"pid": int(pid), "t": float(stamp), "call": resumed or call, "rest": rest}
        if resumed:
            begun = open_calls.pop(int(pid), None)
            if begun is not None:
                begun["end"] = float(stamp)
                begun["rest"] += rest
            continue
        duration = _DURATION.search(rest)
        event["end"] = event["t"] + float(duration.group(1)) if duration else event["t"]
        if "<unfinished ...>" in rest:
            open_calls[int(pid)] = event
        found.append(event)
    return found


def phases(trace: str) -> list[tuple[str, float]]:
    """The start's phases in order, in ms, from one trace."""
    calls = events(trace)
    root = calls[0]["pid"]
    exited = next(float(m.group(1)) for m in (_EXITED.match(line) for line in trace.splitlines())
                  if m and int(m.group(0).split()[0]) == root)
    mine = [e for e in calls if e["pid"] == root]
    forks = [e for e in mine if e["call"] in ("clone", "clone3", "vfork")]
    execs = [e for e in mine if e["call"] == "execve"]
    resolver = forks[0]["rest"].rsplit("=", 1)[-1].split()[0] if forks else ""
    child = [e for e in calls if str(e["pid"]) == resolver]
    out: list[tuple[str, float]] = []

    def add(name: str, start: float, end: float) -> None:
        out.append((name, max(end - start, 0.0) * 1000))

    began = execs[0]["t"]
    before = [e for e in execs if e["t"] < forks[0]["t"]]
    if len(before) > 1:  # the bundle's bootloader restarts itself once
        add("bootloader (its own exec)", began, before[-1]["t"])
        began = before[-1]["t"]
    add("interpreter start + imports, PID 1", began, forks[0]["t"])
    add("the resolver's fork (clone)", forks[0]["t"], forks[0]["end"])
    connects = [e for e in child if e["call"] == "connect"]
    add("resolver: imports and setup", forks[0]["end"], connects[0]["t"] if connects else
        forks[0]["end"])
    add_requests(child, add)
    child_exit = next(e["t"] for e in child if e["call"] == "exit_group")
    last = max((e["end"] for e in child if e["call"] in ("recvfrom", "connect")),
               default=forks[0]["end"])
    add("resolver: the wait (port probe), /etc/hosts, its answer", last, child_exit)
    command = forks[1] if len(forks) > 1 else None
    slim = next((e for e in execs if e["t"] > child_exit), None)
    if command is None:
        add("PID 1: print the variables, exit", child_exit, exited)
        return out
    add("PID 1: take the answer, find COMMAND", child_exit, command["t"])
    spawned = [e for e in calls if e["pid"] != root and e["call"] == "execve"
               and e["t"] >= command["t"]]
    add("exec of COMMAND (fork + execve)", command["t"],
        spawned[0]["end"] if spawned else command["end"])
    if slim is not None:
        add("slim re-exec: watcher start, reap, exit", slim["t"], exited)
    elif spawned:
        add("PID 1 watches in place: COMMAND runs, reap, exit", spawned[0]["end"], exited)
    return out


def generic(path: str) -> str:
    """A request's path without its API version, containers named by role, not name."""
    path = re.sub(r"^/v1\.\d+", "", path)
    me = os.environ.get("LINKINIT_CONTAINER", "")
    return re.sub(r"^/containers/([^/]+)/",
                  lambda m: "/containers/{self}/" if m.group(1) == me else "/containers/{child}/",
                  path)


def add_requests(child: list[dict], add) -> None:  # type: ignore[no-untyped-def]
    """Each Engine request (connect to the socket .. the last read) and the port probe."""
    current = None
    for event in child:
        if event["call"] == "connect":
            if current is not None:
                add(current["name"], current["t"], current["last"])
            unix = "AF_UNIX" in event["rest"]
            current = {"t": event["t"], "last": event["end"],
                       "name": "Engine request" if unix else "port probe (connect)"}
        elif current is not None and event["call"] == "sendto":
            found = _REQUEST.search(event["rest"])
            if found:
                current["name"] = "Engine: GET " + generic(found.group(1))
            current["last"] = event["end"]
        elif current is not None and event["call"] == "recvfrom":
            current["last"] = event["end"]
    if current is not None:
        add(current["name"], current["t"], current["last"])


def traced(argv: list[str]) -> tuple[list[tuple[str, float]], float]:
    """One start under strace: its phases and the traced total (ms)."""
    with tempfile.NamedTemporaryFile("r", suffix=".trace") as out:
        null = os.open("/dev/null", os.O_WRONLY)
        pid = os.posix_spawnp(STRACE[0], [*STRACE, "-o", out.name, *argv], os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, null, 1),
                                            (os.POSIX_SPAWN_DUP2, null, 2)])
        os.waitpid(pid, 0)
        os.close(null)
        trace = out.read()
    found = phases(trace)
    return found, sum(ms for _, ms in found) if found else 0.0


def main(runs: int, traced_runs: int) -> None:
    result: dict = {"floors": interleaved(FLOORS, runs), "rtt": round_trips(runs),
                    "totals": interleaved(VARIANTS, runs), "phases": {}}
    for name, argv in VARIANTS.items():
        samples: dict[str, list[float]] = {}
        order: list[str] = []
        totals = []
        for _ in range(traced_runs):
            found, total = traced(argv)
            totals.append(total)
            for phase, ms in found:
                key = phase
                while key in order and len(samples[key]) > len(totals) - 1:
                    key += " "  # a second request of the same kind
                if key not in samples:
                    samples[key] = []
                    order.append(key)
                samples[key].append(ms)
        result["phases"][name] = {"order": order, "samples": samples,
                                  "traced total": statistics.median(totals)}
    print(json.dumps(result))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
