"""Protocol probes beside the usual waiters, in one run: who starts COMMAND when the child
really serves, and what a probe costs when the child is ready already.

    .venv/bin/python bench/readiness_probes.py [--reps 5] [--runs 30] [--worktree]

The image is scripts/build-probe-servers' (Debian's PostgreSQL, Redis, their clients) with
linkinit from wheels of the committed HEAD (``--worktree``: the files as they are).

1. Readiness: a child that listens before it serves -- PostgreSQL as a standby with
   hot_standby off (57P03) promoted on cue; Redis loading a dataset (-LOADING) after a cue.
   The moment it really serves is the server's own log line (PostgreSQL: "database system is
   ready to accept connections", epoch ms; Redis: "Ready to accept connections", ms). The
   cue comes once the waiter says it waits, plus a random 0.2-1.2 s; the figure is COMMAND's
   first instruction (``date +%s%N``) minus that moment: negative means COMMAND started
   before the child served. Waiters: linkinit ``wait=postgres|redis``, linkinit
   ``wait=listening``, Debian's wait-for-it (the bash script; PyPI's ``wait-for-it`` is
   a Python program with the same port check), and the ``until pg_isready`` / ``until
   redis-cli ping`` loops with ``sleep 1``.
2. Cost on a ready child: in one parent container, ``linkinit --config F -- true`` with F
   declaring the link ``wait=listening``, ``redis`` or ``postgres``, interleaved ``runs``
   times (wall time of each start); then one probe try beside one port probe on the same
   child, ``runs`` x 10 interleaved in one process, and ``linkinit.init.probes``' import time.

Everything it makes is labelled ``linkinit.bench=1`` and removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from linkbench import build_wheels, source_tree

ROOT = Path(__file__).resolve().parents[1]
TOKEN = uuid.uuid4().hex[:8]
IMAGE = f"linkinit-bench-probes:{TOKEN}"
LABEL = ["--label", "linkinit.bench=1", "--label", f"linkinit.bench.run={TOKEN}"]
PG = "/usr/lib/postgresql/15/bin"
STAMP = "date +%s%N"
PG_STANDBY = (
    f"mkdir -p /tmp/pg && chown postgres /tmp/pg && su postgres -c '{PG}/initdb -D /tmp/pg "
    "-A trust -U postgres' >/dev/null && printf \"listen_addresses='*'\\nhot_standby=off\\n"
    "log_line_prefix='%%n '\\n\" >>/tmp/pg/postgresql.conf && echo 'host all all 0.0.0.0/0 "
    "trust' >>/tmp/pg/pg_hba.conf && touch /tmp/pg/standby.signal && "
    f"exec su postgres -c '{PG}/postgres -D /tmp/pg'"
)
PG_PROMOTE = ["su", "postgres", "-c", f"{PG}/pg_ctl -D /tmp/pg promote"]
# Redis with a dataset of a million keys, loaded after the cue: it listens at once and
# answers -LOADING until the dataset is in memory.
REDIS_LOADING = (
    "cd /tmp && redis-server --daemonize yes --save '' --enable-debug-command yes "
    "--logfile /tmp/prep.log && until redis-cli ping >/dev/null 2>&1; do sleep 0.05; done && "
    "redis-cli debug populate 1000000 >/dev/null && redis-cli save >/dev/null && "
    "redis-cli shutdown nosave >/dev/null; until [ -f /tmp/go ]; do sleep 0.01; done; "
    "exec redis-server --protected-mode no --dir /tmp --dbfilename dump.rdb"
)
WAITERS = {
    "postgres": [
        ("linkinit wait=postgres", "linkinit"), ("linkinit wait=listening", "linkinit"),
        ("wait-for-it (Debian)", "wait-for-it -t 60 {ip}:5432"),
        ("until pg_isready; sleep 1", "echo waiting >&2; until pg_isready -q -h {ip}; do "
                                      "sleep 1; done"),
    ],
    "redis": [
        ("linkinit wait=redis", "linkinit"), ("linkinit wait=listening", "linkinit"),
        ("wait-for-it (Debian)", "wait-for-it -t 60 {ip}:6379"),
        ("until redis-cli ping; sleep 1", "echo waiting >&2; until redis-cli -h {ip} ping "
                                          ">&2; do sleep 1; done"),
    ],
}


def docker(*args: str, timeout: float = 300, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True,
                          timeout=timeout).stdout.strip()


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def build_image(worktree: bool) -> str:
    servers = subprocess.run([str(ROOT / "scripts" / "build-probe-servers")], check=True,
                             capture_output=True, text=True, timeout=900).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="linkinit-bench-probes-") as scratch:
        source = source_tree(worktree, Path(scratch))
        build_wheels(source, Path(scratch) / "wheels")
        (Path(scratch) / "Dockerfile").write_text(
            f"FROM {servers}\nCOPY wheels/ /tmp/wheels/\n"
            "RUN PIP_BREAK_SYSTEM_PACKAGES=1 pip install -q --no-cache-dir --no-index "
            "--find-links /tmp/wheels linkinit && rm -rf /tmp/wheels\n")
        docker("build", "-q", *LABEL, "-t", IMAGE, scratch, timeout=600)
    return servers


def run(name: str, command: str, *extra: str) -> str:
    return docker("run", "-d", *LABEL, "--name", name, *extra, IMAGE, "sh", "-c", command)


def logs(name: str, stdout: bool = True) -> str:
    done = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60)
    return done.stdout if stdout else done.stderr


def bounded(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"never: {what}")
        time.sleep(0.02)


def serving_moment(server: str, child: str) -> int:
    """The child's own log line saying it serves, in ns since the epoch (0: not yet)."""
    text = logs(child, stdout=False) + logs(child)
    if server == "postgres":
        match = re.search(r"^(\d+)\.(\d+) .*ready to accept connections", text, re.M)
        if match:
            return int(match.group(1)) * 10**9 + int(match.group(2)) * 10**6
    else:
        match = re.search(r"(\d\d \w{3} \d{4} \d\d:\d\d:\d\d)\.(\d+) \* Ready to accept", text)
        if match:
            moment = calendar.timegm(time.strptime(match.group(1), "%d %b %Y %H:%M:%S"))
            return moment * 10**9 + int(match.group(2)) * 10**6
    return 0


def one(server: str, waiter: str, command: str) -> float:
    """ms from the child serving to COMMAND's first instruction (negative: before)."""
    child, parent = f"lb-pr-{TOKEN}-c{uuid.uuid4().hex[:4]}", f"lb-pr-{TOKEN}-p"
    try:
        if server == "postgres":
            run(child, PG_STANDBY, "--expose", "5432")
            port, cue = 5432, PG_PROMOTE
            bounded(lambda: "entering standby mode" in logs(child, stdout=False), 60, "standby")
        else:
            run(child, REDIS_LOADING, "--expose", "6379")
            port, cue = 6379, ["touch", "/tmp/go"]
            bounded(lambda: "DB saved" in docker("exec", child, "cat", "/tmp/prep.log",
                                                 check=False), 120, "dataset saved")
        ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", child)
        if command == "linkinit":
            wait = waiter.rpartition("=")[2]
            docker("run", "-d", *LABEL, "--name", parent, "-v",
                   "/var/run/docker.sock:/var/run/docker.sock:ro", "--label", f"link.c={child}",
                   "--label", f"link.c.wait={wait}", "--label", f"link.c.port={port}",
                   "--entrypoint", "linkinit", IMAGE, "--timeout", "120", "--", "sh", "-c",
                   STAMP)
        else:
            run(parent, command.format(ip=ip) + f"; {STAMP}")
        bounded(lambda: "waiting" in logs(parent, stdout=False) or logs(parent).strip() != "",
                60, f"{waiter} waiting")
        time.sleep(random.uniform(0.2, 1.2))  # the cue at a random phase of a 1 s loop
        docker("exec", child, *cue)
        docker("wait", parent, timeout=180)
        started = int(next(line for line in logs(parent).split() if line.isdigit()))
        # a waiter that started COMMAND early leaves the child still on its way: wait for it
        for _ in range(600):
            moment = serving_moment(server, child)
            if moment:
                return (started - moment) / 1e6
            time.sleep(0.1)
        raise RuntimeError(f"the {server} child never said it serves")
    finally:
        subprocess.run(["docker", "rm", "-f", parent, child], capture_output=True, timeout=60)


COST = r"""
import json, subprocess, sys, time
runs, modes = int(sys.argv[1]), sys.argv[2:]
times = {mode: [] for mode in modes}
for _ in range(runs):
    for mode in modes:
        began = time.perf_counter()
        subprocess.run(["linkinit", "--config", "/tmp/%s.yaml" % mode, "--", "true"],
                       check=True, stderr=subprocess.DEVNULL)
        times[mode].append((time.perf_counter() - began) * 1000)
print(json.dumps(times))
"""


TRY = r"""
import json, subprocess, sys, time
from linkinit.init.probes import ask
from linkinit.init.readiness import port_open
runs, targets = int(sys.argv[1]), json.loads(sys.argv[2])
times = {}
for _ in range(runs):
    for name, (wait, address, port) in targets.items():
        began = time.perf_counter()
        ok = port_open(address, port) if wait == "listening" else ask(wait, address, port).ready
        times.setdefault(name, []).append((time.perf_counter() - began) * 1000)
        assert ok, name
imports = []
for _ in range(5):
    # what the probe adds to a resolver that has loaded readiness already: the module's own
    # import time (self, not cumulative), after the resolver's modules
    text = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import linkinit.init.resolve, linkinit.init.probes"],
                          capture_output=True, text=True).stderr
    imports.append(int(next(line.split(":", 1)[1].split("|")[0] for line in text.splitlines()
                            if line.rstrip().endswith("linkinit.init.probes"))) / 1000)
times["import linkinit.init.probes (self)"] = imports
print(json.dumps(times))
"""


def tries(parent: str, redis_ip: str, pg_ip: str, runs: int) -> dict:
    """One try of each probe beside one port probe, on the same ready children, interleaved
    in one process: the probe's own cost, free of the start's noise; and its import."""
    targets = {"port probe, redis": ("listening", redis_ip, 6379),
               "redis probe": ("redis", redis_ip, 6379),
               "port probe, postgres": ("listening", pg_ip, 5432),
               "postgres probe": ("postgres", pg_ip, 5432)}
    return json.loads(docker("exec", parent, "python3", "-c", TRY, str(runs),
                             json.dumps(targets), timeout=600))


def cost(runs: int) -> dict:
    """Wall time of ``linkinit -- true`` with one ready link, per wait mode, interleaved."""
    redis, pg, parent = (f"lb-pr-{TOKEN}-{n}" for n in ("redis", "pg", "cost"))
    modes = {"listening-redis": ("redis", "listening"), "redis": ("redis", "redis"),
             "listening-pg": ("pg", "listening"), "postgres": ("pg", "postgres")}
    try:
        run(redis, "exec redis-server --protected-mode no --save ''", "--expose", "6379")
        run(pg, PG_STANDBY.replace("touch /tmp/pg/standby.signal && ", ""), "--expose", "5432")
        docker("run", "-d", *LABEL, "--name", parent, "-v",
               "/var/run/docker.sock:/var/run/docker.sock:ro", "--entrypoint", "sleep", IMAGE,
               "infinity")
        for mode, (child, wait) in modes.items():
            name = redis if child == "redis" else pg
            text = f"links:\n  c: {{container: {name}, wait: {wait}}}\n"
            docker("exec", parent, "sh", "-c", f"printf '%s' '{text}' > /tmp/{mode}.yaml")
        bounded(lambda: subprocess.run(["docker", "exec", parent, "linkinit", "--config",
                                        "/tmp/postgres.yaml", "--timeout", "1", "--", "true"],
                                       capture_output=True, timeout=30).returncode == 0,
                60, "postgres serving")
        starts = json.loads(docker("exec", parent, "python3", "-c", COST, str(runs), *modes,
                                   timeout=1200))
        ips = [docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name)
               for name in (redis, pg)]
        return {**starts, **tries(parent, *ips, runs * 10)}
    finally:
        subprocess.run(["docker", "rm", "-f", parent, redis, pg], capture_output=True,
                       timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--worktree", action="store_true")
    options = parser.parse_args()
    began = time.monotonic()
    log("building the image")
    try:
        build_image(options.worktree)
        rows: dict[str, list[float]] = {}
        for rep in range(options.reps):
            for server, waiters in WAITERS.items():
                for waiter, command in waiters:
                    rows.setdefault(f"{server}: {waiter}", []).append(one(server, waiter,
                                                                          command))
            log(f"readiness: repetition {rep + 1}/{options.reps}")
        costs = cost(options.runs)
    finally:
        subprocess.run(["docker", "rm", "-f", *docker("ps", "-aq", "--filter",
                                                      f"label=linkinit.bench.run={TOKEN}",
                                                      check=False).split()],
                       capture_output=True, timeout=120)
        subprocess.run(["docker", "rmi", IMAGE], capture_output=True, timeout=120)
    print(f"child really serving -> COMMAND starts (ms; {options.reps} runs; negative: "
          "COMMAND started before the child served)")
    for name, values in rows.items():
        print(f"  {name:<45} median {statistics.median(values):8.0f}   "
              f"min {min(values):8.0f}   max {max(values):8.0f}")
    print(f"linkinit -- true with one ready link, by wait mode (ms, {options.runs} "
          "interleaved), then one try of each probe beside a port probe (x10) and the "
          "probes' import")
    for mode, values in costs.items():
        values = sorted(values)
        print(f"  {mode:<30} median {statistics.median(values):6.2f}   "
              f"lower quartile {values[len(values) // 4]:6.2f}")
    print(f"({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
