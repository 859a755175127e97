#!/usr/bin/env python3
"""Drive linkinit.init.prestart and supervise as cli.main will, with a scripted resolver.

    supervise_driver.py [--group] [--grace S] [--keep-orphans] [--rewrite N:M]...
                        [--remap-exit N]... [--pdeathsig N] [--in-place] [--work KIND[:ARG]]
                        [--hold-at blocked|resolved] [--small-enough KB] -- COMMAND...

``--work`` scripts the isolated resolver: ``env`` (default: the environment we were given),
``sleep:S``
(prints ``resolving`` then sleeps S seconds), ``exit:N`` (SystemExit(N)), ``raise``.
``--in-place`` supervises without the slim re-exec, so both paths are tested. ``--hold-at``
is a handshake for tests of a signal sent in a window too short to hit by polling: at that
point (``blocked``: signals just blocked; ``resolved``: the resolver done, COMMAND not yet
started) the driver prints the point's name and reads one line from stdin before going on.
``--small-enough KB`` sets the size up to which supervise keeps watching in place.
Signals and statuses are numbers: the driver checks nothing (cli does that for linkinit).
"""

from __future__ import annotations

import sys

from linkinit.init import prestart, supervise


def pristine_environ() -> dict:
    """The environment we were started with: os.environ may have gained LC_CTYPE from
    Python's C locale coercion; /proc/self/environ still shows what exec gave us."""
    import os

    try:
        with open("/proc/self/environ", "rb") as raw:
            entries = raw.read().split(b"\0")
    except OSError:
        return dict(os.environ)
    pairs = (e.partition(b"=") for e in entries if b"=" in e)
    return {os.fsdecode(k): os.fsdecode(v) for k, _, v in pairs}


def main(args: list[str]) -> int:
    supervise.block_signals()  # first, as cli.main does
    import json
    import os
    import time

    split = args.index("--")
    options, command = args[:split], args[split + 1 :]
    hold_at = values(options, "--hold-at")
    hold("blocked", hold_at)
    work_spec = (values(options, "--work") or ["env"])[-1]
    kind, _, arg = work_spec.partition(":")

    def work() -> bytes:
        if kind == "sleep":
            os.write(1, b"resolving\n")
            time.sleep(float(arg))
        elif kind == "exit":
            raise SystemExit(int(arg))
        elif kind == "raise":
            raise RuntimeError("scripted failure")
        return json.dumps(pristine_environ()).encode()

    small = values(options, "--small-enough")
    if small:
        prestart.SMALL_ENOUGH_KB = int(small[-1])
    pdeathsig = values(options, "--pdeathsig")
    if pdeathsig:
        prestart.set_parent_death_signal(int(pdeathsig[-1]))
    env = json.loads(prestart.run_isolated(work))
    hold("resolved", hold_at)
    grace = values(options, "--grace") or ["5"]
    rewrite = dict(pair.split(":") for pair in values(options, "--rewrite"))
    return prestart.supervise(
        command,
        env,
        group="--group" in options,
        grace=float(grace[-1]),
        slim="--in-place" not in options,
        keep_orphans="--keep-orphans" in options,
        rewrite={int(k): int(v) for k, v in rewrite.items()},
        remap_exit=[int(n) for n in values(options, "--remap-exit")],
    )


def hold(point: str, wanted: list[str]) -> None:
    """Say we are at ``point`` and wait for the test's go (a line on stdin), if asked to."""
    if point in wanted:
        import os

        os.write(1, point.encode() + b"\n")
        sys.stdin.readline()


def values(options: list[str], flag: str) -> list[str]:
    """Every value given to a repeatable ``flag VALUE`` option."""
    return [options[i + 1] for i, option in enumerate(options) if option == flag]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
