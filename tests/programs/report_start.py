#!/usr/bin/env python3
"""Cooperating COMMAND: print, as one JSON line, the state it was started in.

The blocked signal mask (as /proc shows it; not the ignored one: Python's own start ignores
SIGPIPE and SIGXFSZ, so that is checked on a program that is not Python), cwd, process ids
and groups, and whether it owns the terminal; then exits 0 (or reads stdin to
EOF first with ``--stdin``, echoing it in the report). ``--wait-pending N`` first waits (at
most 5 s) for signal N to be pending, for a COMMAND started with N blocked.
"""

from __future__ import annotations

import json
import os
import sys
import time


def status_field(name: str) -> str:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return line.split()[1]
    return ""


def pending() -> int:
    """Signals pending for this process or thread (a blocked signal waits here)."""
    return int(status_field("ShdPnd"), 16) | int(status_field("SigPnd"), 16)


def main(args: list[str]) -> int:
    if "--wait-pending" in args:  # wait (bounded) until signal N is pending for us
        bit = 1 << (int(args[args.index("--wait-pending") + 1]) - 1)
        deadline = time.monotonic() + 5
        while not pending() & bit and time.monotonic() < deadline:
            time.sleep(0.01)
    report = {
        "pending": f"{pending():016x}",
        "SigBlk": status_field("SigBlk"),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgrp(),
        "sid": os.getsid(0),
        "tty": os.isatty(0),
        "foreground": os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp(),
        "environ": dict(os.environ),
    }
    if "--stdin" in args:
        report["stdin"] = sys.stdin.read()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
