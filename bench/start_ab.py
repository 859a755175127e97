"""Two versions of linkinit's start path, side by side in one container: the comparison that
``docker start``'s own noise (tens of ms from run to run) hides in the start-up table.

    .venv/bin/python bench/start_ab.py OLD_REV NEW_REV [--runs 50] [--print-env]
    # NEW_REV may be "worktree"

Builds a wheel of each revision, installs both into one parent container of the local base
image under /opt/<name> (``pip install --target``: each revision's own ``linkinit`` command in
/opt/<name>/bin, run with PYTHONPATH=/opt/<name>), links it to a ready child (redis-server on
6379, ``wait=listening``), and runs ``linkinit -- true`` (or ``linkinit --print-env``) from
each in turn, ``runs`` times: the wall time of each start (median, lower quartile) and the CPU
time (user + system) of linkinit and every process it waited for, which the machine's load
moves less. Everything it makes is labelled ``linkinit.bench=1`` and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = os.environ.get("LINKINIT_BASE_IMAGE", "linkinit-base:bookworm")
PROBE = r"""
import json, os, sys, time
def start(name, args):
    null = os.open("/dev/null", os.O_WRONLY)
    env = dict(os.environ, PYTHONPATH="/opt/" + name)
    argv = ["/opt/%s/bin/linkinit" % name, *args]
    began = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
    _, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - began) * 1000
    os.close(null)
    if status:
        raise SystemExit("%s exited %d" % (argv, status))
    return wall, (usage.ru_utime + usage.ru_stime) * 1000
names, runs, args = sys.argv[1:3], int(sys.argv[3]), sys.argv[4:]
times = {name: [] for name in names}
cpu = {name: [] for name in names}
for _ in range(runs):
    for name in names:
        wall, used = start(name, args)
        times[name].append(wall)
        cpu[name].append(used)
print(json.dumps({"wall": times, "cpu": cpu}))
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True,
                          timeout=300).stdout.strip()


def wheel(revision: str, target: Path) -> Path:
    """A wheel of linkinit alone at ``revision`` ("worktree": the files as they are)."""
    source = ROOT
    if revision != "worktree":
        source = target / "src"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                        str(source), revision], check=True, timeout=60)
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                        str(target / "wheel"), str(source)], check=True, timeout=300)
    finally:
        if revision != "worktree":
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(source)], timeout=60)
    return next((target / "wheel").glob("linkinit-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--print-env", action="store_true",
                        help="time linkinit --print-env instead of linkinit -- true")
    options = parser.parse_args()
    image = BASE_IMAGE  # python3, pip and redis-server; linkinit comes from the wheels
    if not docker("images", "-q", image):
        raise SystemExit(f"start_ab: no {image} image: run scripts/build-base")
    token = uuid.uuid4().hex[:8]
    network, child, parent = (f"lb-ab-{token}-{part}" for part in ("net", "child", "parent"))
    label = ["--label", "linkinit.bench=1"]
    try:
        docker("network", "create", *label, network)
        docker("run", "-d", *label, "--name", child, "--network", network, "--expose", "6379",
               image, "redis-server", "--port", "6379", "--save", "")
        docker("run", "-d", *label, "--label", f"link.redis={child}", "--name", parent,
               "--network", network, "-v", "/var/run/docker.sock:/var/run/docker.sock",
               "--entrypoint", "sleep", image, "infinity")
        with tempfile.TemporaryDirectory() as work:
            for name, revision in (("old", options.old), ("new", options.new)):
                built = wheel(revision, Path(work) / name)
                docker("cp", str(built), f"{parent}:/tmp/{built.name}")
                docker("exec", parent, "pip", "install", "-q", "--no-deps", "--target",
                       f"/opt/{name}", "--break-system-packages", f"/tmp/{built.name}")
        command = ["--print-env"] if options.print_env else ["--", "true"]
        measured = json.loads(docker("exec", "-e", f"LINKINIT_CONTAINER={parent}", parent,
                                     "python3", "-c", PROBE, "old", "new", str(options.runs),
                                     *command))
    finally:
        subprocess.run(["docker", "rm", "-f", parent, child], capture_output=True, timeout=60)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, timeout=60)
    print(f"linkinit {' '.join(command)}, {options.runs} interleaved starts each; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, revision in (("old", options.old), ("new", options.new)):
        values = sorted(measured["wall"][name])
        used = sorted(measured["cpu"][name])
        print(f"{revision:>12}: median {statistics.median(values):.1f} ms, "
              f"lower quartile {values[len(values) // 4]:.1f} ms; CPU median "
              f"{statistics.median(used):.1f} ms ({len(values)} starts)")


if __name__ == "__main__":
    main()
