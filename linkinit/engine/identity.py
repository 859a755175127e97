"""Who is calling the proxy: a Unix-socket peer's PID, and the container the kernel puts it in.

Nothing the caller says is believed; the kernel's facts are:

- ``SO_PEERCRED`` on an accepted Unix socket gives the PID, UID and GID of the process that
  called ``connect()``, translated into the reader's PID namespace (so the proxy must share
  the host's: ``--pid=host`` when it runs in a container). The caller cannot forge it.
- ``/proc/<pid>/cgroup`` names the cgroups of that PID, as paths relative to the reader's
  cgroup namespace. Docker puts every process of a container, ``docker exec`` ones included,
  in a cgroup named after the container's 64-hex ID: cgroup v1 and v2 with the cgroupfs
  driver show ``/docker/<id>`` (one line per v1 hierarchy, or the v2 line ``0::``); the
  systemd driver shows ``/system.slice/docker-<id>.scope``; Podman ``libpod-<id>.scope`` (v2: its
  payload sits in ``.../libpod-<id>.scope/container``). A path
  may have a prefix (nested cgroups, or ``/../..`` from another cgroup namespace).
- ``/proc/<pid>/ns/pid`` names the PID namespace (``pid:[4026532409]``); every process of a
  container shares its init's (``State.Pid``), unless the container was run with
  ``--pid=host`` (then it is the host's and proves nothing).

A 64-hex string in a cgroup path is only a candidate: the proxy keeps it only if the Engine
knows a container with that ID. A PID that exits and is reused between ``connect()`` and the
lookup would be misread; PIDs are not reused that fast in practice.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Optional

from linkinit.engine.whoami import container_ids_in_cgroup

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_pid(sock: socket.socket) -> Optional[int]:
    """The PID of the process at the other end of a connected Unix socket, or None."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except (OSError, AttributeError):
        return None
    pid = _UCRED.unpack(raw)[0]
    return pid if pid > 0 else None  # 0: the peer is in a PID namespace we cannot see


def cgroup_candidates(pid: int, proc: str = "/proc") -> list[str]:
    """Candidate container IDs from the PID's cgroups; empty if the process is gone."""
    try:
        with open(f"{proc}/{pid}/cgroup") as file:
            return container_ids_in_cgroup(file.read())
    except OSError:
        return []


def pid_namespace(pid: int | str, proc: str = "/proc") -> Optional[str]:
    """The PID namespace of a process (``pid:[4026532409]``), or None if it cannot be read."""
    try:
        return os.readlink(f"{proc}/{pid}/ns/pid")
    except OSError:
        return None
