#!/usr/bin/env python3
"""Cooperating COMMAND: print ``ready``, then ``<number> <name>`` for each signal it receives.

A handshake instead of a sleep: a test sends a signal only after ``ready`` and waits for the
line naming it. ``--exit-on N`` exits 0 after printing signal N (a program honouring TERM).
It leaves its signal mask alone, so a signal linkinit left blocked would never show up.
"""

from __future__ import annotations

import os
import signal
import sys
import time

UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}


def name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIGRTMIN+{sig - signal.SIGRTMIN}"


def main(args: list[str]) -> int:
    exit_on = {int(args[i + 1]) for i, a in enumerate(args) if a == "--exit-on"}
    lifetime = float(args[args.index("--lifetime") + 1]) if "--lifetime" in args else 120.0

    def handler(sig: int, _frame: object) -> None:
        os.write(1, f"{sig} {name(sig)}\n".encode())
        if sig in exit_on:
            os._exit(0)

    for sig in signal.valid_signals():
        if sig not in UNCATCHABLE:
            signal.signal(sig, handler)
    os.write(1, b"ready\n")
    deadline = time.monotonic() + lifetime  # bounded: never outlives a broken test
    while time.monotonic() < deadline:
        time.sleep(0.5)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
