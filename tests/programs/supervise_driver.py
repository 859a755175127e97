#!/usr/bin/env python3
"""Drive linkinit.supervise as cli.main will, with a resolver that tests can script.

    supervise_driver.py [--group] [--grace S] [--in-place] [--work KIND[:ARG]] -- COMMAND...

``--work`` scripts the isolated resolver: ``env`` (default: the environment we were given),
``sleep:S``
(prints ``resolving`` then sleeps S seconds), ``exit:N`` (SystemExit(N)), ``raise``.
``--in-place`` supervises without the slim re-exec, so both paths are tested.
"""

from __future__ import annotations

import sys

from linkinit import supervise


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
    work_spec = options[options.index("--work") + 1] if "--work" in options else "env"
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

    env = json.loads(supervise.run_isolated(work))
    grace = float(options[options.index("--grace") + 1]) if "--grace" in options else 5.0
    return supervise.supervise(
        command, env, group="--group" in options, grace=grace, slim="--in-place" not in options
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
