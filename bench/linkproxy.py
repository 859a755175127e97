"""The ``linkinit proxy`` part of the benchmark: the real proxy process on the host, with a
counting forwarder (``proxy.CountingProxy``) between it and the Engine, so the upstream
requests and event streams it opens are counted from outside it.

Figures: start-up with 1 ready link through the proxy (beside the direct socket, in
``linkbench``'s start-up table), a burst of parents started at once (all must resolve),
the latency of each request through the proxy (from its ``--verbose`` log: request in ->
answer out), its resident memory, and the upstream event streams it opened.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from proxy import CountingProxy, normalise

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support, as pytest has it
from tests.support.proxy_process import ProxyProcess

_TIMED = re.compile(
    r"^linkinit proxy: (GET|HEAD) (\S+) (\d{3}) ([0-9.]+) ms \(Engine ([0-9.]+) ms\) ")

TARGET_PROXY_GAP_MS = 10.0
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 60.0


class ProxyRun(ProxyProcess):
    """``linkinit proxy --verbose`` as the tests start it (tests/support/proxy_process.py),
    its upstream a counting forwarder to the Engine."""

    def __init__(self) -> None:
        upstream = CountingProxy(os.path.join(tempfile.mkdtemp(prefix="lb-up-"), "up.sock"))
        super().__init__(upstream=upstream.path)
        self.upstream = upstream

    @property
    def binds(self) -> dict:
        return self.volumes

    def start(self) -> ProxyRun:
        self.upstream.start()
        super().start()
        return self

    def mark(self) -> int:
        """Where the log is now: latencies after this mark belong to what follows."""
        return len(self.output())

    def latencies(self, since_mark: int = 0) -> list[tuple[float, float]]:
        """(total, waiting for the Engine) milliseconds per answered request after the mark
        (event streams left out: they last as long as their caller listens)."""
        found = []
        for line in self.output()[since_mark:].splitlines():
            match = _TIMED.match(line)
            if match and not match.group(2).split("?")[0].endswith("/events"):
                found.append((float(match.group(4)), float(match.group(5))))
        return found

    def subscriptions(self, since_mark: int = 0) -> int:
        """Event streams callers opened (each logged when it ends)."""
        return sum(1 for line in self.output()[since_mark:].splitlines()
                   if "/events" in line and " 200 streaming to " in line)

    def rss_mb(self) -> tuple[float, float]:
        """VmRSS and VmHWM (peak) of the proxy process, in MB."""
        assert self.popen is not None
        fields = {}
        with open(f"/proc/{self.popen.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024
        return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)

    def event_streams(self) -> int:
        return sum(1 for _, _, path in self.upstream.requests() if path.endswith("/events"))

    def close(self) -> None:
        """Stop by PID, remove the directory (and the log, unless BENCH_KEEP_PROXY_LOG)."""
        log = self.output() if os.environ.get("BENCH_KEEP_PROXY_LOG") else ""
        self.cleanup()
        self.upstream.close()
        shutil.rmtree(os.path.dirname(self.upstream.path), ignore_errors=True)
        if log:
            self.log.write_text(log)


def percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, -(-int(share * 100) * len(ordered) // 100) - 1)]


def round_trips(lab: Any, run: ProxyRun, child: str, rounds: int = 40) -> dict[str, Any]:
    """linkinit's start-path requests for 1 link (ping, inspect self, inspect child), direct
    and through the proxy, interleaved in one container: the proxy's cost per start, free of
    ``docker start``'s noise."""
    socket_bind = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "ro"}}
    cid = lab.create(["sleep", "600"], entrypoint=[], binds={**run.binds, **socket_bind},
                     labels={"link.c": child})
    lab.api.start(cid)
    try:
        exec_id = lab.api.exec_create(cid, ["python3", "/opt/bench/engine_rtt.py", cid, child,
                                            str(rounds)])["Id"]
        out = lab.api.exec_start(exec_id).decode(errors="replace").strip().splitlines()
        times = json.loads(out[-1])
    finally:
        lab.remove([cid])
    direct, proxied = times["direct"][2:], times["proxy"][2:]  # the first rounds warm up
    return {"rounds": len(direct), "direct ms": statistics.median(direct),
            "proxy ms": statistics.median(proxied),
            "gap ms": statistics.median(proxied) - statistics.median(direct)}


def _start_burst(lab: Any, stamp: list[str], parents: int, late_child: Any, workers: int,
                 **create: Any) -> dict[str, Any]:
    """``parents`` parents linking one child that does not exist yet, all started at once (as
    compose does); the child is created once they all wait. Every parent must resolve."""
    name = late_child(create=False)
    ids = lab.parallel(parents, lambda i: lab.create(
        stamp, entrypoint=["linkinit", "--"],
        labels={"link.db": name, "link.db.wait": "started", "linkinit.timeout": "120"},
        **create), workers=workers)
    began = time.monotonic()
    lab.parallel(parents, lambda i: (lab.api.start(ids[i]), ids[i])[1], workers=workers)
    started = time.monotonic() - began
    time.sleep(1.0)  # they are all waiting now, on their event streams
    late_child(create=True)
    failures = []
    for cid in ids:
        status = int(lab.api.wait(cid, timeout=180)["StatusCode"])
        if status != 0:
            err = lab.api.logs(cid, stdout=False, stderr=True).decode(errors="replace")
            failures.append(f"exit {status}: {err.strip()[-300:]}")
    resolved = time.monotonic() - began
    on_host = len(lab.api.containers(all=True))
    lab.remove(ids)
    return {"parents": parents, "containers on host": on_host,
            "resolved": parents - len(failures), "failures": failures[:3],
            "seconds to start all": round(started, 2),
            "seconds until all exited": round(resolved, 2)}


def _spread(latencies: list[float], prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}requests": len(latencies), f"{prefix}p50 ms": percentile(latencies, 0.50),
            f"{prefix}p99 ms": percentile(latencies, 0.99),
            f"{prefix}max ms": max(latencies or [float("nan")])}


def burst(lab: Any, run: ProxyRun, stamp: list[str], parents: int, late_child: Any,
          workers: int = 32) -> dict[str, Any]:
    """The burst through the proxy: each request's latency from the proxy's own log."""
    mark = run.mark()
    streams_before = run.event_streams()
    asked_before = len(run.upstream.requests())
    outcome = _start_burst(lab, stamp, parents, late_child, workers, binds=run.binds)
    upstream = run.upstream.requests()[asked_before:]
    asked = len(upstream)
    kinds = collections.Counter(f"{method} {normalise(path)}" for _, method, path in upstream)
    timed = run.latencies(mark)
    latencies = [total for total, _ in timed]
    own = [total - engine for total, engine in timed]
    rss, peak = run.rss_mb()
    return {
        **outcome, **_spread(latencies),
        "mean ms": statistics.fmean(latencies) if latencies else float("nan"),
        "own p50 ms": percentile(own, 0.50), "own p99 ms": percentile(own, 0.99),
        "upstream requests": asked, "upstream kinds": dict(kinds.most_common(6)),
        "rss MB": round(rss, 1), "peak rss MB": round(peak, 1),
        "caller event streams": run.subscriptions(mark),
        "upstream event streams": run.event_streams() - streams_before,
        "upstream event streams since the proxy started": run.event_streams(),
    }


def direct_burst(lab: Any, counting: CountingProxy, stamp: list[str], parents: int,
                 late_child: Any, workers: int = 32) -> dict[str, Any]:
    """The same burst on the Engine's socket (through the counting forwarder, which times
    each request to its answer's first byte): what the Engine alone costs under that load,
    so the proxy's share of the latency above can be told from the Engine's."""
    counting.reset()
    outcome = _start_burst(lab, stamp, parents, late_child, workers,
                           socket_path=counting.path)
    latencies = [seconds * 1000 for path, seconds in counting.latencies()
                 if path != "/events"]
    return {f"direct {key}": value for key, value in {**outcome, **_spread(latencies)}.items()}
