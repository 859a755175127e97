#!/usr/bin/env python3
"""Cooperating COMMAND: exit with status ``N``, or die by signal ``N`` with ``--signal N``.

Python rather than a shell: shells differ on self-kill (bash -c 'kill -3 $$' exits 0).
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main(args: list[str]) -> int:
    if args[0] == "--signal":
        sig = int(args[1])
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        time.sleep(5)
        return 99  # the signal did not kill us: the test will see 99, not 128+N
    os._exit(int(args[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
