"""sd_notify: tell systemd or Podman (``--sdnotify=container``) when the container is ready.

When ``NOTIFY_SOCKET`` is set, linkinit sends ``STATUS=waiting for <aliases>`` while it waits
for the children and ``READY=1`` once every link is ready and COMMAND has started; COMMAND
does not get the variable, so it cannot send a second, earlier READY=1. With
``LINKINIT_NOTIFY=command`` (``--notify command``) linkinit sends nothing and passes the
variable on, for a program that notifies by itself.

The protocol is one datagram per message on a Unix socket; a path starting with ``@`` is in
the abstract namespace. A message that cannot be sent is a warning, never a failure: the
container runs as it would without a supervisor listening.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping, Optional

VARIABLE = "NOTIFY_SOCKET"
MODES = ("linkinit", "command")  # who sends READY=1


def target(environ: Mapping[str, str], mode: Optional[str]) -> Optional[str]:
    """The socket linkinit itself notifies, or None (unset, or COMMAND's to use)."""
    return None if mode == "command" else (environ.get(VARIABLE) or None)


def command_environment(environ: Mapping[str, str], mode: Optional[str]) -> dict[str, str]:
    """COMMAND's environment: without NOTIFY_SOCKET unless COMMAND is the one to notify."""
    if mode == "command":
        return dict(environ)
    return {key: value for key, value in environ.items() if key != VARIABLE}


def send(path: Optional[str], message: str) -> bool:
    """One datagram to the notify socket; False (with a warning) if it could not be sent."""
    if not path:
        return False
    import _socket  # not socket.py: its imports cost milliseconds before COMMAND starts

    address = "\0" + path[1:] if path.startswith("@") else path
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    try:
        sock.settimeout(1.0)
        sock.sendto(message.encode(), address)
        return True
    except OSError as error:
        sys.stderr.write(f"linkinit: warning: {VARIABLE}={path}: cannot send "
                         f"{message.splitlines()[0]!r}: {error.strerror or error}\n")
        return False
    finally:
        sock.close()


def waiting(path: Optional[str], aliases: list[str]) -> None:
    if aliases:
        send(path, f"STATUS=waiting for {', '.join(aliases)}")


def ready(path: Optional[str], pid: int) -> None:
    """COMMAND runs: READY=1. No MAINPID: a pid in the container's namespace would name
    another process to the systemd outside it (Podman sends its own)."""
    send(path, f"READY=1\nSTATUS=running COMMAND (pid {pid})")
