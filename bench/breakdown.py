"""Where a start's time goes, phase by phase, beside the floor under each: issue 27's bench.

    .venv/bin/python bench/breakdown.py [--quick] [--worktree] [--json PATH]

In one parent container of the bench image (``linkbench.build_image``: linkinit from wheels,
the bundle at /opt/linkinit), with the Engine socket and one ready link (a redis-server child,
``wait=listening``): ``linkinit -- true`` and ``linkinit --print-env``, from the Python
install and from the bundle, run under ``strace -f -ttt -T`` (the host's strace, mounted; only
execve, clone, connect, sendto, recvfrom and exit_group are stopped for) and cut into phases:
the interpreter's start with PID 1's imports, the resolver's fork, its imports, each Engine
request, the wait, the hand-over, the exec of COMMAND, the slim re-exec. Beside each, the
floor: ``python3 -I -S -c pass`` and ``python3 -c pass``, one request's round trip, tini.
The totals are measured untraced, interleaved (wall and CPU), and checked against the
targets; the exit status is 1 when one is missed. Every container it makes is labelled and
removed at the end (``linkbench.Lab``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import docker
import linkbench

TARGETS_MS = {  # in the container, 1 ready link, median wall time
    "linkinit -- true": 15.0,
    "linkinit --print-env": 15.0,
    "bundle -- true": 20.0,
    "bundle --print-env": 20.0,
}
PAIRS = (("-- true", "linkinit -- true", "bundle -- true"),
         ("--print-env", "linkinit --print-env", "bundle --print-env"))


def strace_binds() -> dict[str, dict[str, str]]:
    """The host's strace and the libraries it needs beyond libc, mounted at /opt/strace
    (the probe runs it through the dynamic loader with that library path, so what it
    traces does not inherit the path)."""
    strace = shutil.which("strace")
    if strace is None:
        raise SystemExit("breakdown: needs strace on the host (apt-get install strace)")
    binds = {os.path.realpath(strace): {"bind": "/opt/strace/strace", "mode": "ro"}}
    listing = subprocess.run(["ldd", strace], capture_output=True, text=True, check=True,
                             timeout=30).stdout
    for line in listing.splitlines():
        name, _, rest = line.strip().partition(" => ")
        path = rest.split(" (")[0]
        if path.startswith("/") and not name.startswith(("libc.so", "ld-linux")):
            binds[os.path.realpath(path)] = {"bind": f"/opt/strace/{name}", "mode": "ro"}
    return binds


def measure(lab: linkbench.Lab, runs: int, traced: int) -> dict[str, Any]:
    """Start a ready child and a parent linked to it; run the probe inside the parent."""
    child = linkbench.start_children(lab, 1)[0]
    parent = lab.create(["infinity"], entrypoint=["sleep"], labels={"link.redis": child},
                        socket_path=linkbench.SOCKET, binds=strace_binds())
    lab.api.start(parent)
    name = lab.api.inspect_container(parent)["Name"].lstrip("/")
    exec_id = lab.api.exec_create(parent, ["python3", "/opt/bench/start_breakdown.py",
                                           str(runs), str(traced)],
                                  environment={"LINKINIT_CONTAINER": name})["Id"]
    out = lab.api.exec_start(exec_id, demux=True)
    code = lab.api.exec_inspect(exec_id)["ExitCode"]
    if code != 0:
        raise RuntimeError(f"the probe exited {code}: {(out[1] or b'').decode()[-2000:]}")
    return dict(json.loads(out[0]))


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def floor_for(phase: str, result: dict[str, Any]) -> str:
    """What the phase cannot go below, measured in the same container."""
    floors = {k: med(v) for k, v in result["floors"]["wall"].items()}
    rtt = {k: med(v) for k, v in result["rtt"].items()}
    if phase.startswith("interpreter"):
        return (f"python3 -I -S {floors['python3 -I -S -c pass']:.1f}, "
                f"with site {floors['python3 -c pass']:.1f}")
    if phase.startswith("Engine: GET /_ping"):
        return f"round trip {rtt['ping']:.2f}"
    if phase.startswith("Engine"):
        return f"round trip {rtt['inspect']:.2f}"
    if phase.startswith("slim"):
        return f"python3 -I -S {floors['python3 -I -S -c pass']:.1f}"
    if phase.startswith("exec of COMMAND"):
        return f"tini -s -- true {floors['tini -s -- true']:.1f} (whole)"
    return ""


def merged(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """Both orders of phases in one: each of ``second``'s phases that ``first`` lacks goes
    right after the phase it follows in ``second`` (the bundle's bootloader first)."""
    rows = list(first)
    for at, row in enumerate(second):
        if row not in rows:
            before = [r for r in second[:at] if r in rows]
            rows.insert(rows.index(before[-1]) + 1 if before else 0, row)
    return rows


def table(result: dict[str, Any]) -> list[str]:
    """Per command: the phases of the Python install and the bundle side by side."""
    lines: list[str] = []
    add = lines.append
    for title, python, bundle in PAIRS:
        add(f"linkinit {title}, 1 ready link, in the container (ms, median of "
            f"{len(result['totals']['wall'][python])} untraced and "
            f"{len(next(iter(result['phases'][python]['samples'].values())))} traced runs)")
        add(f"  {'phase':<58}{'Python':>8}{'bundle':>8}  floor")
        for row in merged(result["phases"][python]["order"], result["phases"][bundle]["order"]):
            cells = [med(result["phases"][v]["samples"].get(row, [])) for v in (python, bundle)]
            shown = "".join(f"{c:>8.2f}" if c == c else f"{'-':>8}" for c in cells)
            add(f"  {row.strip():<58}{shown}  {floor_for(row, result)}")
        traced = [result["phases"][v]["traced total"] for v in (python, bundle)]
        add(f"  {'sum of the phases, traced':<58}{traced[0]:>8.1f}{traced[1]:>8.1f}")
        walls = [med(result["totals"]["wall"][v]) for v in (python, bundle)]
        cpus = [med(result["totals"]["cpu"][v]) for v in (python, bundle)]
        add(f"  {'total, untraced (wall)':<58}{walls[0]:>8.1f}{walls[1]:>8.1f}  "
            f"tini -s -- true {med(result['floors']['wall']['tini -s -- true']):.1f}")
        add(f"  {'CPU (user + system, every process)':<58}{cpus[0]:>8.1f}{cpus[1]:>8.1f}  "
            f"python3 -I -S {med(result['floors']['cpu']['python3 -I -S -c pass']):.1f}")
        add("")
    return lines


def targets(result: dict[str, Any]) -> tuple[list[str], bool]:
    """The target lines and whether every one is met."""
    lines = ["Start-path targets (median wall time in the container, 1 ready link)"]
    met = True
    for name, target in TARGETS_MS.items():
        value = med(result["totals"]["wall"][name])
        ok = value <= target
        met &= ok
        lines.append(f"  {name:<24}{value:>8.1f} ms  <= {target:.0f} ms: "
                     f"{'pass' if ok else 'MISS'}")
    return lines, met


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/breakdown.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="15 runs and 5 traced, not 40/15")
    parser.add_argument("--worktree", action="store_true",
                        help="measure the work tree as it is, not the committed HEAD")
    parser.add_argument("--no-build", action="store_true",
                        help="use the bench image as it is (bench/run built it just now)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw samples as JSON")
    options = parser.parse_args(argv)
    runs, traced = (15, 5) if options.quick else (40, 15)
    client = docker.from_env(timeout=120)
    if not options.no_build:
        linkbench.build_image(client, options.worktree)
    lab = linkbench.Lab(client)
    load = os.getloadavg()[0]
    try:
        with linkbench.interrupts_as_exceptions():
            result = measure(lab, runs, traced)
    finally:
        lab.remove_all()
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(table(result)))
    lines, met = targets(result)
    print("\n".join(lines))
    print(f"  (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"{linkbench.machine()})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
