"""Instructions per start, two revisions side by side: the start path's cost without the load.

    .venv/bin/python bench/start_instructions.py OLD_REV NEW_REV [--runs 3]
    # NEW_REV may be "worktree"

On a shared machine wall time moves with everyone else's work; the instructions a start
executes do not. Each revision's wheel is installed with ``pip install --target`` into a
scratch directory and its own ``linkinit`` command is run by the system's Python (Debian's,
the one in the images) under ``valgrind --tool=callgrind --trace-children=yes``: every process
of the start (PID 1, the resolver, the re-executed watcher; COMMAND itself is left out) is
counted, and their sum is the figure. The parent is a container of the local base image with
one ready child (``redis-server``, ``wait=listening``); linkinit runs on the host as that
parent (``LINKINIT_CONTAINER``), in a private mount namespace whose /etc/hosts is a scratch
file. Floors beside it: ``python3 -I -S -c pass`` and ``python3 -c pass``. Everything made is
labelled ``linkinit.bench=1`` and removed at the end.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from start_ab import BASE_IMAGE, docker, wheel

PYTHON = "/usr/bin/python3"
# COMMAND outlives the start: under valgrind a signal pending across execve (COMMAND's SIGCHLD
# while the old slim watcher was being re-executed) is lost, and the watcher would wait for ever.
COMMANDS = {"-- sleep 4": ["--", "sleep", "4"], "--print-env": ["--print-env"]}


def counted(argv: list[str], env: dict[str, str], hosts: Path) -> int:
    """Instructions (callgrind's Ir) of every process of one run of ``argv``, COMMAND aside."""
    with tempfile.TemporaryDirectory(prefix="lb-ir-") as out:
        command = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                   "--trace-children-skip=*/sleep", f"--callgrind-out-file={out}/cg.%p", *argv]
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
             str(hosts), *command], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"start_instructions: {argv} failed: {done.stderr[-1500:]}")
        total = 0
        for path in glob.glob(f"{out}/cg.*"):
            with open(path) as file:
                for line in file:
                    if line.startswith(("summary:", "totals:")):
                        total += int(line.split()[1])
                        break
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    for tool in ("valgrind", "unshare"):
        if shutil.which(tool) is None:
            raise SystemExit(f"start_instructions: needs {tool} on the host")
    token = uuid.uuid4().hex[:8]
    child, parent = f"lb-ir-{token}-child", f"lb-ir-{token}-parent"
    label = ["--label", "linkinit.bench=1"]
    results: dict[str, dict[str, list[int]]] = {}
    with tempfile.TemporaryDirectory(prefix="lb-ir-") as work:
        try:  # the containers go in finally; the scratch directory with the with
            docker("run", "-d", *label, "--name", child, "--expose", "6379", BASE_IMAGE,
                   "redis-server", "--port", "6379", "--save", "", "--protected-mode", "no")
            docker("run", "-d", *label, "--label", f"link.redis={child}", "--name", parent,
                   "--entrypoint", "sleep", BASE_IMAGE, "infinity")
            hosts = Path(work) / "hosts"
            hosts.write_text("127.0.0.1\tlocalhost\n")
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                   "LINKINIT_CONTAINER": parent}
            trees = {}
            for name, revision in (("old", options.old), ("new", options.new)):
                built = wheel(revision, Path(work) / name)
                target = Path(work) / name / "install"
                subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "--target", str(target),
                                str(built)], check=True, timeout=300)
                trees[name] = target
            floors = {"python3 -I -S -c pass": [PYTHON, "-I", "-S", "-c", "pass"],
                      "python3 -c pass": [PYTHON, "-c", "pass"]}
            for _ in range(options.runs):
                for title, argv in floors.items():
                    results.setdefault(title, {}).setdefault("", []).append(
                        counted(argv, env, hosts))
                for title, args in COMMANDS.items():
                    for name, target in trees.items():
                        run_env = dict(env, PYTHONPATH=str(target))
                        launcher = [PYTHON, str(target / "bin" / "linkinit"), *args]
                        results.setdefault(title, {}).setdefault(name, []).append(
                            counted(launcher, run_env, hosts))
        finally:
            subprocess.run(["docker", "rm", "-f", parent, child], capture_output=True,
                           timeout=60)
    print(f"instructions per start (millions, median of {options.runs}; callgrind, every "
          "process but COMMAND)")
    for title, by_tree in results.items():
        cells = ", ".join(f"{options.old if k == 'old' else options.new if k else ''}"
                          f"{' ' if k else ''}{statistics.median(v) / 1e6:.1f}"
                          for k, v in by_tree.items())
        print(f"  {title:<24}{cells}")


if __name__ == "__main__":
    main()
