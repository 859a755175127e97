"""The entry point of the self-contained bundle (scripts/build-bundle freezes it with PyInstaller).

A bundle runs in images without Python, and three things differ there from ``cli.main``:

- PID 1's slim watcher cannot be a bare ``python3``: the bundle re-executes itself with
  ``supervise.SLIM_WATCHER`` as first argument, and this module then imports ``supervise``
  alone, never the CLI.
- PyInstaller's bootloader restarts itself with ``LD_LIBRARY_PATH`` pointing into the bundle
  and ``_PYI_*`` variables set. COMMAND gets the container's environment, not that: its own
  programs must not load the bundle's libraries.
- The host tools (``ls``, ``guard``, ``proxy``) run on the host and are not in the bundle.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds before signals are blocked
    from typing import Mapping

EX_USAGE = 64
HOST_TOOLS = ("ls", "guard", "proxy")


def main() -> None:
    """Be the slim watcher, or the whole linkinit with the container's own environment."""
    from linkinit.init import supervise

    if sys.argv[1:2] == [supervise.SLIM_WATCHER]:
        sys.exit(supervise._slim_main(sys.argv[2:]))
    supervise.block_signals()
    if sys.argv[1:2] and sys.argv[1] in HOST_TOOLS:
        sys.stderr.write(
            f"linkinit: {sys.argv[1]} is a host tool and is not in the self-contained bundle; "
            "on the host, install linkinit with pip and run it there\n"
        )
        sys.exit(EX_USAGE)
    from linkinit import cli

    cli.exit_now(cli.run(sys.argv[1:], container_environment(cli.initial_environment())))


def container_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what PyInstaller's bootloader added when it restarted itself.

    The bootloader saves a ``LD_LIBRARY_PATH`` it found as ``LD_LIBRARY_PATH_ORIG`` before
    prepending the bundle's directory; without one, there was none.
    """
    env = {key: value for key, value in environ.items() if not key.startswith("_PYI_")}
    original = env.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        env.pop("LD_LIBRARY_PATH", None)
    else:
        env["LD_LIBRARY_PATH"] = original
    return env


if __name__ == "__main__":
    main()
