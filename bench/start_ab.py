"""Two versions of linkinit's start path, side by side in one container: the comparison that
``docker start``'s own noise (tens of ms from run to run) hides in the start-up table.

    .venv/bin/python bench/start_ab.py OLD_REV NEW_REV [--runs 50]   # NEW_REV may be "worktree"

Builds a wheel of each revision, installs both into one parent container of the bench image
(``bench/run`` builds it) under /opt/<name>, links it to a ready child (redis-server on
6379, ``wait=listening``), and runs ``linkinit -- true`` from each in turn, ``runs`` times:
the wall time of each start, median and lower quartile. Everything it makes is labelled
``linkinit.bench=1`` and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = r"""
import json, os, subprocess, sys, time
def start(name):
    shim = ("import sys; sys.path.insert(0, '/opt/%s'); from linkinit.cli import main; "
            "sys.argv[0] = 'linkinit'; sys.exit(main())" % name)
    began = time.perf_counter()
    subprocess.run(["python3", "-c", shim, "--", "true"], check=True, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - began) * 1000
names, runs = sys.argv[1:3], int(sys.argv[3])
times = {name: [] for name in names}
for _ in range(runs):
    for name in names:
        times[name].append(start(name))
print(json.dumps(times))
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
    options = parser.parse_args()
    image = docker("images", "--format", "{{.Repository}}:{{.Tag}}", "linkinit-bench")
    if not image:
        raise SystemExit("start_ab: no linkinit-bench image: run bench/run once")
    image = image.splitlines()[0]
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
        times = json.loads(docker("exec", "-e", f"LINKINIT_CONTAINER={parent}", parent,
                                  "python3", "-c", PROBE, "old", "new", str(options.runs)))
    finally:
        subprocess.run(["docker", "rm", "-f", parent, child], capture_output=True, timeout=60)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, timeout=60)
    for name, revision in (("old", options.old), ("new", options.new)):
        values = sorted(times[name])
        print(f"{revision:>12}: median {statistics.median(values):.1f} ms, "
              f"lower quartile {values[len(values) // 4]:.1f} ms ({len(values)} starts)")


if __name__ == "__main__":
    main()
