"""What linkinit costs a container, beside tini, dumb-init and the usual waiters, in one run.

Run through ``bench/run`` (it starts Docker and builds the base image first). Every figure
comes from the same image, built here from wheels of this checkout, and from real containers
on the local Engine; every container made here is labelled ``linkinit.bench=1`` (and this
run's token) and removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import docker
from linkproxy import (
    TARGET_P99_MS,
    TARGET_PROXY_GAP_MS,
    TARGET_RSS_MB,
    ProxyRun,
    burst,
    direct_burst,
    round_trips,
)
from proxy import CountingProxy

ROOT = Path(__file__).resolve().parents[1]

BASE_IMAGE = os.environ.get("LINKINIT_BASE_IMAGE", "linkinit-base:bookworm")
# One tag per checkout: two clones benchmarking at once on one Engine must not run each
# other's image (the other's build replaces a shared tag mid-run).
BENCH_IMAGE = "linkinit-bench:" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
LABEL = "linkinit.bench"
RUN = uuid.uuid4().hex[:10]
LABELS = {LABEL: "1", f"{LABEL}.run": RUN}
SOCKET = "/var/run/docker.sock"
STAMP = ["date", "+%s%N"]  # COMMAND: its first instruction prints the realtime clock
CHILD_PORT = 6379
LATE_PORT = 7000

_DOCKERFILE = f"""\
FROM {BASE_IMAGE}
LABEL {LABEL}=1
COPY wheels/ /tmp/wheels/
RUN PIP_BREAK_SYSTEM_PACKAGES=1 pip install --no-cache-dir --no-index \\
        --find-links /tmp/wheels linkinit && rm -rf /tmp/wheels
COPY probes/ /opt/bench/
COPY bundle/ /opt/linkinit/
"""
BUNDLE = ["/opt/linkinit/linkinit", "--"]  # the self-contained bundle (scripts/build-bundle)

# -- targets ----------------------------------------------------------------------------------

TARGET_TINI_GAP_MS = 25.0  # issue 27: docker start -> COMMAND, 1 ready link, within tini + 25
TARGET_50_LINKS_MS = 1000.0
TARGET_RSS_KB = 10 * 1024
TARGET_READY_MS = 100.0


@dataclass
class Results:
    """Everything measured, kept for the table and written as JSON for the README."""

    startup: dict[str, list[float]] = field(default_factory=dict)
    rss_kb: dict[str, int] = field(default_factory=dict)
    pid1: dict[str, str] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    scaling: dict[str, dict[str, Any]] = field(default_factory=dict)
    readiness: dict[str, list[float]] = field(default_factory=dict)
    proxy: dict[str, Any] = field(default_factory=dict)
    sizes_kb: dict[str, int] = field(default_factory=dict)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile: with 10 samples, the 9th smallest."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- the Engine side -------------------------------------------------------------------------


class Lab:
    """Creates, runs and always removes this run's containers."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.api = client.api
        self.made: list[str] = []
        self._lock = threading.Lock()

    def create(
        self,
        command: Sequence[str],
        *,
        entrypoint: Optional[Sequence[str]] = None,
        labels: Optional[dict[str, str]] = None,
        socket_path: Optional[str] = None,
        expose: Sequence[int] = (),
        healthcheck: Optional[dict] = None,
        name: Optional[str] = None,
        binds: Optional[dict] = None,
    ) -> str:
        if socket_path:
            binds = {**(binds or {}), socket_path: {"bind": SOCKET, "mode": "ro"}}
        created = self.api.create_container(
            BENCH_IMAGE,
            list(command),
            entrypoint=list(entrypoint) if entrypoint is not None else [],
            name=name,
            labels={**(labels or {}), **LABELS},
            ports=list(expose) or None,
            healthcheck=healthcheck,
            host_config=self.api.create_host_config(binds=binds),
        )
        with self._lock:
            self.made.append(created["Id"])
        return str(created["Id"])

    def run_to_end(self, cid: str, timeout: float = 60) -> tuple[int, str, str]:
        """Start, wait (bounded), and return (exit status, stdout, stderr)."""
        self.api.start(cid)
        status = int(self.api.wait(cid, timeout=timeout)["StatusCode"])
        out = self.api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
        err = self.api.logs(cid, stdout=False, stderr=True).decode(errors="replace")
        return status, out, err

    def remove(self, ids: Sequence[str]) -> None:
        def drop(cid: str) -> None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.api.remove_container(cid, force=True)

        # 4 at a time: Debian's Engine 20.10 deadlocked in libnetwork (every request about a
        # network hanging) while 16 threads removed 450 containers
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(drop, ids))
        with self._lock:
            gone = set(ids)
            self.made = [cid for cid in self.made if cid not in gone]

    def remove_all(self) -> None:
        """Ours only: what we recorded, and whatever carries this run's token."""
        mine = self.api.containers(all=True, filters={"label": f"{LABEL}.run={RUN}"})
        self.remove(list(dict.fromkeys(self.made + [c["Id"] for c in mine])))

    def ip(self, cid: str) -> str:
        networks = self.api.inspect_container(cid)["NetworkSettings"]["Networks"]
        return str(next(n["IPAddress"] for n in networks.values() if n.get("IPAddress")))

    def parallel(self, count: int, make: Callable[[int], str], workers: int = 12) -> list[str]:
        """``make(i)`` for each i, ``workers`` at a time; an interrupt drops what has not begun."""
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        try:
            return list(pool.map(make, range(count)))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def build_wheels(source: Path, target: Path) -> Path:
    """linkinit and its dependencies as wheels (as tests/e2e/conftest.py): no index in images."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("linkinit-*.whl"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                    "-w", str(target), str(source)], check=True, timeout=600)
    return target


def source_tree(worktree: bool, scratch: Path) -> Path:
    """What to measure: the committed HEAD (default), or the work tree as it is.

    Others edit the same checkout; measuring HEAD keeps their uncommitted work out of the
    figures, and makes a run reproducible from its commit.
    """
    if worktree:
        return ROOT
    target = scratch / "src"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True,
                             capture_output=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    return target


def build_bundle(source: Path) -> Path:
    """The self-contained bundle of ``source`` with its own build command, freezing the
    Python it chooses as a user's build would (reused while the sources are unchanged)."""
    subprocess.run([str(source / "scripts" / "build-bundle")], check=True, timeout=900,
                   stdout=subprocess.DEVNULL)
    return source / "build" / "bundle" / "linkinit"


def build_image(client: docker.DockerClient, worktree: bool) -> str:
    """The bench image: the base plus linkinit from this checkout's wheels, offline, and the
    self-contained bundle of the same sources at /opt/linkinit.

    Returns the commit measured.
    """
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        raise SystemExit(f"bench: no base image {BASE_IMAGE}: run scripts/build-base") from None
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, timeout=10).stdout.strip()
    commit += " + work tree" if worktree else ""
    log(f"building wheels of {commit} and the bench image")
    with tempfile.TemporaryDirectory(prefix="linkinit-bench-") as context:
        source = source_tree(worktree, Path(context))
        wheels = build_wheels(source, ROOT / "build" / "bench-wheels")
        image = Path(context) / "image"
        image.mkdir()
        shutil.copytree(wheels, image / "wheels")
        shutil.copytree(build_bundle(source), image / "bundle", symlinks=True)
        shutil.copytree(ROOT / "bench" / "probes", image / "probes")
        (image / "Dockerfile").write_text(_DOCKERFILE)
        client.images.build(path=str(image), tag=BENCH_IMAGE, rm=True, forcerm=True)
    return commit


def wait_port(address: str, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{address}:{port} did not open within {timeout} s")


def start_children(lab: Lab, count: int) -> list[str]:
    """Ready children: redis-server listening on its exposed port; returns their names."""
    names = [f"lb-{RUN}-c{i}" for i in range(count)]

    def make(i: int) -> str:
        cid = lab.create(["redis-server", "--port", str(CHILD_PORT), "--save", "",
                          "--appendonly", "no", "--protected-mode", "no"],
                         name=names[i], expose=[CHILD_PORT])
        lab.api.start(cid)
        return cid

    for cid in lab.parallel(count, make):
        wait_port(lab.ip(cid), CHILD_PORT)
    return names


def link_labels(children: Sequence[str], count: int) -> dict[str, str]:
    return {f"link.c{i}": children[i] for i in range(count)}


# -- start-up --------------------------------------------------------------------------------


def first_stamp(out: str) -> int:
    for line in out.split():
        if line.isdigit():
            return int(line)
    raise RuntimeError(f"no timestamp in COMMAND's output: {out!r}")


def time_startup(lab: Lab, cid: str) -> float:
    """Milliseconds from just before the start call to COMMAND's first instruction."""
    before = time.time_ns()
    status, out, err = lab.run_to_end(cid)
    if status != 0:
        raise RuntimeError(f"container exited {status}: {err.strip()[-500:]}")
    return (first_stamp(out) - before) / 1e6


@dataclass(frozen=True)
class Variant:
    name: str
    entrypoint: Sequence[str]
    links: int = 0
    engine: bool = False
    proxy: bool = False  # the linkinit proxy's directory mounted instead of the socket


def startup_variants() -> list[Variant]:
    return [
        Variant("plain COMMAND", []),
        Variant("tini", ["tini", "--"]),
        Variant("dumb-init", ["dumb-init", "--"]),
        Variant("tini + socket mount", ["tini", "--"], 0, True),
        Variant("linkinit, 0 links", ["linkinit", "--"], 0, True),
        Variant("linkinit, 1 link", ["linkinit", "--"], 1, True),
        Variant("linkinit, 1 link, proxy", ["linkinit", "--"], 1, False, True),
        Variant("linkinit, 10 links", ["linkinit", "--"], 10, True),
        Variant("linkinit, 50 links", ["linkinit", "--"], 50, True),
        Variant("bundle, 0 links", BUNDLE, 0, True),
        Variant("bundle, 1 link", BUNDLE, 1, True),
    ]


def measure_startup(lab: Lab, children: Sequence[str], reps: int, results: Results,
                    proxy: Optional[ProxyRun] = None) -> None:
    """Each repetition runs every variant once, in a shuffled order, so drift hits all alike."""
    variants = [v for v in startup_variants() if proxy is not None or not v.proxy]
    for rep in range(reps):
        order = variants[:]
        random.shuffle(order)
        done = []
        for variant in order:
            cid = lab.create(STAMP, entrypoint=variant.entrypoint,
                             labels=link_labels(children, variant.links),
                             socket_path=SOCKET if variant.engine else None,
                             binds=proxy.binds if variant.proxy and proxy else None)
            results.startup.setdefault(variant.name, []).append(time_startup(lab, cid))
            done.append(cid)
        lab.remove(done)
        log(f"start-up: repetition {rep + 1}/{reps}")


# -- resident memory of PID 1 ------------------------------------------------------------------


def exec_out(lab: Lab, cid: str, command: Sequence[str]) -> tuple[int, str]:
    exec_id = lab.api.exec_create(cid, list(command))["Id"]
    out = lab.api.exec_start(exec_id).decode(errors="replace")
    return int(lab.api.exec_inspect(exec_id)["ExitCode"]), out


def measure_rss(lab: Lab, children: Sequence[str], reps: int, results: Results) -> None:
    """VmRSS of PID 1 while COMMAND (a shell that sleeps) runs; the median of ``reps``."""
    inits = [v for v in startup_variants()
             if v.entrypoint and v.links in (0, 1) and v.name != "tini + socket mount"]
    command = ["sh", "-c", "touch /tmp/up; exec sleep 120"]
    samples: dict[str, list[int]] = {}
    for _ in range(reps):
        for variant in inits:
            cid = lab.create(command, entrypoint=variant.entrypoint,
                             labels=link_labels(children, variant.links),
                             socket_path=SOCKET if variant.engine else None)
            lab.api.start(cid)
            try:
                deadline = time.monotonic() + 20
                while exec_out(lab, cid, ["test", "-e", "/tmp/up"])[0] != 0:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{variant.name}: COMMAND did not start")
                    time.sleep(0.05)
                time.sleep(0.2)
                _, status = exec_out(lab, cid, ["cat", "/proc/1/status"])
                _, cmdline = exec_out(lab, cid, ["cat", "/proc/1/cmdline"])
            finally:
                lab.remove([cid])
            rss = next(int(line.split()[1]) for line in status.splitlines()
                       if line.startswith("VmRSS:"))
            samples.setdefault(variant.name, []).append(rss)
            results.pid1[variant.name] = cmdline.replace("\0", " ").strip()
    results.rss_kb = {name: int(median(values)) for name, values in samples.items()}


# -- what each route adds to an image ---------------------------------------------------------

# Paths in the bench image, in kB on disk (du): tini (Debian's, dynamically linked, and its
# static build, the one that drops into any image) and dumb-init, the bundle, and the Python
# route (Debian's python3 with its standard library and pip, plus linkinit and its
# dependencies in dist-packages).
SIZES = {
    "tini": ["/usr/bin/tini"],
    "tini-static": ["/usr/bin/tini-static"],
    "dumb-init": ["/usr/bin/dumb-init"],
    "bundle (/opt/linkinit)": ["/opt/linkinit"],
    "Python route: python3 + stdlib + pip": [
        "/usr/bin/python3.11", "/usr/lib/python3.11", "/usr/lib/python3", "/usr/bin/pip3"],
    "Python route: linkinit + dependencies": ["/usr/local/lib/python3.11/dist-packages"],
}


def measure_sizes(lab: Lab, results: Results) -> None:
    for name, paths in SIZES.items():
        cid = lab.create(["du", "-skc", *paths])
        try:
            status, out, err = lab.run_to_end(cid)
        finally:
            lab.remove([cid])
        if status != 0:
            raise RuntimeError(f"du {paths}: {err.strip()}")
        results.sizes_kb[name] = int(out.split()[-2])


# -- Engine requests and idle containers ------------------------------------------------------


def count_requests(lab: Lab, proxy: CountingProxy, labels: dict[str, str]) -> list[str]:
    """Run linkinit once through the counting proxy; the requests it made, in order."""
    proxy.reset()
    cid = lab.create(STAMP, entrypoint=["linkinit", "--"], labels=labels,
                     socket_path=proxy.path)
    try:
        status, _, err = lab.run_to_end(cid)
    finally:
        lab.remove([cid])
    if status != 0:
        raise RuntimeError(f"linkinit through the proxy exited {status}: {err[-500:]}")
    return [f"{method} {path}" for _, method, path in proxy.requests()]


def add_idle(lab: Lab, count: int, already: int) -> list[str]:
    """``count`` more idle (running ``sleep``) containers, created and started in parallel."""

    def make(i: int) -> str:
        cid = lab.create(["sleep", "600"], name=f"lb-{RUN}-idle{already + i}")
        lab.api.start(cid)
        return cid

    return lab.parallel(count, make, workers=16)


def measure_scaling(
    lab: Lab, proxy: CountingProxy, children: Sequence[str], levels: Sequence[int], reps: int,
    results: Results,
) -> None:
    """Requests per link and resolution time as the host fills with unrelated containers."""
    idle = 0
    for level in levels:
        add_idle(lab, level - idle, idle)
        idle = level
        total = len(lab.api.containers(all=True))
        row: dict[str, Any] = {"containers on host": total}
        for links in (0, 1, 10):
            requests = count_requests(lab, proxy, link_labels(children, links))
            row[f"requests, {links} links"] = len(requests)
            row[f"kinds, {links} links"] = dict(Counter(requests))
        for key, entrypoint, links in (("tini", ["tini", "--"], 0),
                                       ("1 links", ["linkinit", "--"], 1),
                                       ("10 links", ["linkinit", "--"], 10)):
            times = []
            for _ in range(reps):
                cid = lab.create(STAMP, entrypoint=entrypoint,
                                 labels=link_labels(children, links), socket_path=SOCKET)
                times.append(time_startup(lab, cid))
                lab.remove([cid])
            row[f"start-up ms, {key}"] = median(times)
        results.scaling[str(level)] = row
        log(f"idle containers: {level} done ({total} on the host)")


# -- readiness latency -------------------------------------------------------------------------


def health_time(lab: Lab, cid: str, since: float) -> int:
    """When the Engine reported the child healthy (its event's timeNano)."""
    events = lab.api.events(since=int(since), until=int(time.time()) + 1, decode=True,
                            filters={"type": "container", "container": cid})
    for event in events:
        if str(event.get("Action", event.get("status", ""))) == "health_status: healthy":
            return int(event["timeNano"])
    raise RuntimeError("no health_status: healthy event for the child")


def wait_for_log(lab: Lab, cid: str, text: str, timeout: float = 30) -> None:
    """Until the container's stderr shows ``text`` (the waiter is waiting), bounded."""
    deadline = time.monotonic() + timeout
    while text not in lab.api.logs(cid, stdout=False, stderr=True).decode(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the waiter never said {text!r}")
        time.sleep(0.02)


def one_readiness(lab: Lab, tool: str, mode: str) -> float:
    """ms from a child becoming ready to the parent COMMAND's start.

    The child becomes ready on cue, and the cue comes only once the waiter says it is
    waiting, plus a random 0.2-1.2 s (so a 1 s polling loop is caught at a random phase):
    the figure is the waiter's reaction, never its own start-up.
    """
    name = f"lb-{RUN}-late{uuid.uuid4().hex[:6]}"
    if mode == "port":
        child = lab.create(["python3", "/opt/bench/listen_later.py", "/tmp/go", str(LATE_PORT)],
                           name=name, expose=[LATE_PORT])
        cue = ["touch", "/tmp/go"]
    else:
        healthcheck = {"test": ["CMD", "test", "-f", "/tmp/healthy"], "interval": 100_000_000,
                       "timeout": 1_000_000_000, "retries": 1000}
        child = lab.create(["sleep", "300"], name=name, healthcheck=healthcheck)
        cue = ["touch", "/tmp/healthy"]
    since = time.time()
    made = [child]
    try:
        lab.api.start(child)
        ip = lab.ip(child)
        if tool == "linkinit":
            labels = {"link.c": name} if mode == "port" else {"link.c": name,
                                                              "link.c.wait": "healthy"}
            parent = lab.create(STAMP, entrypoint=["linkinit", "--"], labels=labels,
                                socket_path=SOCKET)
            waiting = "waiting for c"
        elif tool == "wait-for-it":
            parent = lab.create(["wait-for-it", f"{ip}:{LATE_PORT}", "-t", "30", "--", *STAMP])
            waiting = "waiting"
        elif mode == "port":
            parent = lab.create(["sh", "/opt/bench/poll_port.sh", ip, str(LATE_PORT), *STAMP])
            waiting = "poll_port: waiting"
        else:
            parent = lab.create(["python3", "/opt/bench/poll_health.py", name, "--", *STAMP],
                                socket_path=SOCKET)
            waiting = "poll_health: waiting"
        made.append(parent)
        lab.api.start(parent)
        wait_for_log(lab, parent, waiting)
        time.sleep(random.uniform(0.2, 1.2))
        code, out = exec_out(lab, child, cue)
        if code != 0:
            raise RuntimeError(f"cue failed: {out}")
        status = int(lab.api.wait(parent, timeout=60)["StatusCode"])
        out = lab.api.logs(parent, stdout=True, stderr=False).decode(errors="replace")
        if status != 0:
            err = lab.api.logs(parent, stdout=False, stderr=True).decode(errors="replace")
            raise RuntimeError(f"{tool} ({mode}) exited {status}: {err[-500:]}")
        started = first_stamp(out)
        if mode == "port":
            ready = first_stamp(lab.api.logs(child, stdout=True, stderr=False).decode())
        else:
            ready = health_time(lab, child, since)
        return (started - ready) / 1e6
    finally:
        lab.remove(made)


READINESS = [
    ("linkinit", "port"), ("wait-for-it", "port"), ("poll 1 s", "port"),
    ("linkinit", "health"), ("poll 1 s", "health"),
]


def measure_readiness(lab: Lab, reps: int, results: Results) -> None:
    for rep in range(reps):
        for tool, mode in READINESS:
            key = f"{tool} ({mode})"
            results.readiness.setdefault(key, []).append(one_readiness(lab, tool, mode))
        log(f"readiness: repetition {rep + 1}/{reps}")


# -- through linkinit proxy --------------------------------------------------------------------


def measure_proxy(lab: Lab, run: ProxyRun, counting: CountingProxy, parents: int,
                  results: Results) -> None:
    """A burst of parents through the proxy, waiting on a child that comes a second late."""
    count = [0]

    def late_child(create: bool) -> str:
        name = f"lb-{RUN}-late{count[0]}"
        if create:
            cid = lab.create(["sleep", "600"], name=name, expose=[CHILD_PORT])
            lab.api.start(cid)
            count[0] += 1
        return name

    log("proxy: the start path's requests, direct and through the proxy")
    trips = round_trips(lab, run, f"lb-{RUN}-c0")
    log(f"proxy: {parents} parents at once")
    through = burst(lab, run, STAMP, parents, late_child)
    log(f"proxy: the same {parents} parents on the Engine's socket")
    results.proxy = {**through, **direct_burst(lab, counting, STAMP, parents, late_child),
                     **{f"start requests {k}": v for k, v in trips.items()}}


# -- the table ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def report(results: Results, levels: Sequence[int]) -> str:
    lines: list[str] = []
    add = lines.append
    tini = median(results.startup["tini"])
    n = len(results.startup["tini"])
    add(f"Start-up: docker start -> COMMAND's first instruction (ms, {n} runs each)")
    add(f"  {'variant':<22}{'median':>9}{'p90':>9}{'x tini':>9}  target")
    for variant in startup_variants():
        values = results.startup.get(variant.name)
        if not values:
            continue
        target = ""
        if variant.proxy:
            gap = median(values) - median(results.startup["linkinit, 1 link"])
            target = f"<= direct socket + {TARGET_PROXY_GAP_MS:.0f} ms ({gap:+.0f}): " \
                     f"{verdict(gap <= TARGET_PROXY_GAP_MS)}"
        elif variant.links == 1 and variant.engine:
            gap = median(values) - tini
            mounted = median(values) - median(results.startup["tini + socket mount"])
            target = f"<= tini + {TARGET_TINI_GAP_MS:.0f} ms ({gap:+.0f}): " \
                     f"{verdict(gap <= TARGET_TINI_GAP_MS)}; {mounted:+.0f} vs tini + mount"
        elif variant.links == 50:
            target = f"< {TARGET_50_LINKS_MS:.0f} ms: " \
                     f"{verdict(median(values) < TARGET_50_LINKS_MS)}"
        add(f"  {variant.name:<22}{median(values):>9.1f}{p90(values):>9.1f}"
            f"{median(values) / tini:>9.2f}  {target}")
    add("")
    add("Resident memory of PID 1 while COMMAND runs (VmRSS)")
    for name, rss in results.rss_kb.items():
        mine = name.startswith(("linkinit", "bundle"))
        target = f"<= 10 MB: {verdict(rss <= TARGET_RSS_KB)}" if mine else ""
        add(f"  {name:<22}{rss / 1024:>8.1f} MB  {target}   [{results.pid1.get(name, '')}]")
    if results.sizes_kb:
        add("")
        add("What each route adds to an image (du, on disk)")
        for name, kb in results.sizes_kb.items():
            add(f"  {name:<40}{kb / 1024:>8.2f} MB")
    if results.scaling:
        add("")
        lines += scaling_report(results, levels)
    if results.readiness:
        add("")
        lines += readiness_report(results)
    if results.proxy:
        add("")
        add(proxy_report(results.proxy))
    return "\n".join(lines)


def scaling_report(results: Results, levels: Sequence[int]) -> list[str]:
    lines: list[str] = []
    add = lines.append
    add("Engine requests (counted by a proxy on the socket) and idle containers on the host")
    add(f"  {'idle':>6}{'on host':>9}{'req 0 links':>13}{'req 1 link':>12}{'req 10 links':>14}"
        f"{'ms tini':>9}{'ms 1 link':>11}{'ms 10 links':>13}")
    for level in levels:
        row = results.scaling[str(level)]
        add(f"  {level:>6}{row['containers on host']:>9}{row['requests, 0 links']:>13}"
            f"{row['requests, 1 links']:>12}{row['requests, 10 links']:>14}"
            f"{row['start-up ms, tini']:>9.1f}{row['start-up ms, 1 links']:>11.1f}"
            f"{row['start-up ms, 10 links']:>13.1f}")
    first, last = results.scaling[str(levels[0])], results.scaling[str(levels[-1])]
    per_link = (first["requests, 10 links"] - first["requests, 0 links"]) / 10
    same = all(first[f"requests, {k} links"] == last[f"requests, {k} links"] for k in (0, 1, 10))
    kinds = ", ".join(f"{k} x{n}" for k, n in sorted(first["kinds, 1 links"].items()))
    add(f"  per link: {per_link:g} request(s); with 1 link: {kinds}")
    add(f"  requests independent of the containers on the host: {verdict(same)}"
        "   (ms: median docker start -> COMMAND, socket mounted)")
    return lines


def readiness_report(results: Results) -> list[str]:
    lines: list[str] = []
    add = lines.append
    add("Readiness latency: child ready -> COMMAND's start (ms)")
    add(f"  {'waiter':<24}{'median':>9}{'p90':>9}{'max':>9}  target")
    for key, values in results.readiness.items():
        target = ""
        if key.startswith("linkinit"):
            target = f"< {TARGET_READY_MS:.0f} ms: {verdict(median(values) < TARGET_READY_MS)}"
        add(f"  {key:<24}{median(values):>9.1f}{p90(values):>9.1f}{max(values):>9.1f}  {target}")
    add("  (wait-for-it only checks ports: no health row)")
    return lines


def proxy_report(row: dict[str, Any]) -> str:
    gap = row["start requests gap ms"]
    return "\n".join([
        f"linkinit proxy: a start's requests with 1 link (ping, inspect self, inspect child; "
        f"median of {row['start requests rounds']} interleaved rounds): direct "
        f"{row['start requests direct ms']:.1f} ms, proxy {row['start requests proxy ms']:.1f}"
        f" ms ({gap:+.1f})   <= {TARGET_PROXY_GAP_MS:.0f} ms: "
        f"{verdict(gap <= TARGET_PROXY_GAP_MS)}",
        f"linkinit proxy: {row['parents']} parents started at once, each waiting for one "
        f"child created a second later ({row['containers on host']} containers on the host)",
        f"  resolved: {row['resolved']} of {row['parents']}: "
        f"{verdict(row['resolved'] == row['parents'])}   "
        f"(all started in {row['seconds to start all']} s, all exited after "
        f"{row['seconds until all exited']} s)",
        f"  request latency through the proxy ({row['requests']} requests from callers, "
        f"{row.get('upstream requests', '?')} from the proxy to the Engine): "
        f"p50 {row['p50 ms']:.1f} ms, p99 {row['p99 ms']:.1f} ms, max {row['max ms']:.1f} ms"
        f"   p99 < {TARGET_P99_MS:.0f} ms: {verdict(row['p99 ms'] < TARGET_P99_MS)}",
        f"  of which the proxy's own (not waiting for the Engine): p50 {row['own p50 ms']:.1f}"
        f" ms, p99 {row['own p99 ms']:.1f} ms",
        f"  the same burst on the Engine's socket, no proxy ({row['direct requests']} "
        f"requests, {row['direct resolved']} of {row['direct parents']} resolved): "
        f"p50 {row['direct p50 ms']:.1f} ms, p99 {row['direct p99 ms']:.1f} ms, max "
        f"{row['direct max ms']:.1f} ms",
        f"  proxy resident memory: {row['rss MB']} MB (peak {row['peak rss MB']} MB)"
        f"   < {TARGET_RSS_MB:.0f} MB: {verdict(row['peak rss MB'] < TARGET_RSS_MB)}",
        f"  event streams: {row['caller event streams']} opened by callers, "
        f"{row['upstream event streams since the proxy started']} upstream since the proxy "
        f"started: {verdict(row['upstream event streams since the proxy started'] == 1)}",
    ])


# -- main --------------------------------------------------------------------------------------


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM ends the run through the same cleanup as Ctrl-C."""

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--reps", type=int, help="start-up repetitions (default 10, quick 3)")
    parser.add_argument("--idle", default="10,100,300",
                        help="idle-container levels (default 10,100,300)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON")
    parser.add_argument("--worktree", action="store_true",
                        help="measure the work tree as it is, not the committed HEAD")
    parser.add_argument("--skip", default="",
                        help="phases to skip: startup,rss,scaling,ready,proxy")
    parser.add_argument("--parents", type=int, default=100,
                        help="parents started at once through the proxy (default 100)")
    options = parser.parse_args(argv)
    reps = options.reps or (3 if options.quick else 10)
    ready_reps = 3 if options.quick else 5
    levels = [int(x) for x in options.idle.split(",") if x]
    skip = set(options.skip.split(","))

    client = docker.from_env(timeout=120)
    client.ping()
    commit = build_image(client, options.worktree)
    lab = Lab(client)
    results = Results()
    workdir = tempfile.mkdtemp(prefix="linkinit-bench-")
    proxy = CountingProxy(os.path.join(workdir, "engine.sock")).start()
    linkproxy = ProxyRun().start() if "proxy" not in skip else None
    began = time.monotonic()
    try:
        with interrupts_as_exceptions():
            log("starting 50 ready children (redis-server, listening on 6379)")
            children = start_children(lab, 50)
            if "startup" not in skip:
                measure_startup(lab, children, reps, results, linkproxy)
            if "rss" not in skip:
                measure_rss(lab, children, 3 if not options.quick else 1, results)
                measure_sizes(lab, results)
            if "ready" not in skip:
                measure_readiness(lab, ready_reps, results)
            if "scaling" not in skip:
                measure_scaling(lab, proxy, children, levels, max(3, reps // 2), results)
            if linkproxy is not None:
                measure_proxy(lab, linkproxy, proxy, options.parents, results)
    finally:
        log("removing this run's containers")
        proxy.close()
        if linkproxy is not None:
            linkproxy.close()
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            lab.remove_all()
        except Exception as error:  # the figures are worth printing all the same
            log(f"could not remove this run's containers ({error}); remove them with: "
                f"docker rm -f $(docker ps -aq --filter label={LABEL}.run={RUN})")
    if options.json:
        Path(options.json).write_text(json.dumps(results.__dict__, indent=2) + "\n")
    if skip & {"startup", "rss"}:  # no start-up table to print: the figures as they are
        print(json.dumps(results.__dict__, indent=2))
        return 0
    table = report(results, levels)
    print(table)
    print(f"\n(linkinit {commit}; run took {time.monotonic() - began:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f}; {machine()})")
    return 1 if "MISS" in table else 0  # bench/run fails when a figure is past its target


def machine() -> str:
    def out(command: Sequence[str]) -> str:
        try:
            return subprocess.run(list(command), capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs, {memory:.0f} GiB, kernel {os.uname().release}, "
            f"docker {out(['docker', 'version', '--format', '{{.Server.Version}}'])}")


if __name__ == "__main__":
    sys.exit(main())
