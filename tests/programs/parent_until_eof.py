#!/usr/bin/env python3
"""A parent that dies on cue: start ``COMMAND...`` as its child, exit when stdin reaches EOF.

For --pdeathsig: the child's parent dies when the test closes this program's stdin. The
child does not inherit that stdin (it gets /dev/null), so only the parent sees the EOF.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(command: list[str]) -> int:
    subprocess.Popen(command, stdin=subprocess.DEVNULL)
    while os.read(0, 4096):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
