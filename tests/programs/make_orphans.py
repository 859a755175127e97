#!/usr/bin/env python3
"""Cooperating COMMAND: make ``N`` orphans that exit after ``DELAY`` s, then stay alive.

Each orphan's parent exits at once, so the orphan is re-parented to init (PID 1, or the
nearest subreaper); when it exits, only init can reap it. Prints ``ready`` once all orphans
exist, then ``pids <p1> <p2> ...`` so a test can watch them; stays alive ``HOLD`` seconds
(or exits with ``--exit-with CODE`` right after the orphans exit, to race them).
"""

from __future__ import annotations

import os
import sys
import time


def main(args: list[str]) -> int:
    count, delay = int(args[0]), float(args[1])
    hold = float(args[2]) if len(args) > 2 else 60.0
    exit_with = int(args[args.index("--exit-with") + 1]) if "--exit-with" in args else None
    read_end, write_end = os.pipe()
    start = time.monotonic() + delay
    for _ in range(count):
        middle = os.fork()
        if middle == 0:
            orphan = os.fork()
            if orphan == 0:
                os.close(read_end)
                os.write(write_end, f"{os.getpid()}\n".encode())
                os.close(write_end)
                time.sleep(max(0.0, start - time.monotonic()))
                os._exit(0)
            os._exit(0)
        os.waitpid(middle, 0)  # reap our own child: only the orphans are left for init
    os.close(write_end)
    pids = []
    with os.fdopen(read_end) as lines:
        for line in lines:
            pids.append(line.strip())
            if len(pids) == count:
                break
    print("ready", flush=True)
    print("pids " + " ".join(pids), flush=True)
    if exit_with is not None:
        time.sleep(max(0.0, start - time.monotonic()))
        os._exit(exit_with)  # the same moment as the orphans: SIGCHLDs coalesce
    time.sleep(hold)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
