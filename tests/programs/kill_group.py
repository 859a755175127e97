#!/usr/bin/env python3
"""Cooperating COMMAND: a forked child calls kill(0, N): the whole process group gets N.

The trap this probes: a pid variable that is 0 in a forked child turns kill(pid) into
kill(0), the caller's whole group. linkinit must not be in that group, and must report the
group's death (128+N), not die with it.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main(args: list[str]) -> int:
    sig = int(args[0])
    if sig not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(sig, signal.SIG_DFL)
    child = os.fork()
    if child == 0:
        os.kill(0, sig)
        time.sleep(5)
        os._exit(99)
    time.sleep(5)
    return 99


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
