#!/usr/bin/env python3
"""A negative control: a subreaper that never reaps orphans (waits for its own child only).

Run as ``no_reaper.py COMMAND...``: orphans of COMMAND come to it and, once exited, stay
``<defunct>``. The zombie tests run against it to show they can detect zombies at all.
"""

from __future__ import annotations

import ctypes
import os
import sys


def main(command: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) & 0xFF


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
