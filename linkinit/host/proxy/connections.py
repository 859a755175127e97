"""Who is at the other end of each Unix-socket connection: fixed when it is accepted, bound
to the connection, and proven to belong to the process that connected.

A PID alone proves nothing once its process has exited: the kernel gives the number to the
next process, maybe one in another container. So at accept the proxy pins the process that
called ``connect()``: ``SO_PEERPIDFD`` (Linux 6.5+) gives a pidfd for it, which no later
process can take over; on older kernels the PID from ``SO_PEERCRED`` is pinned with
``pidfd_open`` at once (a peer already gone is refused). The process's cgroup and PID
namespace are read through ``/proc/<pid>``, and only then is the pidfd checked to still
name a live process: if it does, what was read was that process's. The connection keeps
these facts for every request it carries, and is closed when that process exits (the pidfd
becomes readable), so a connection handed to another process dies with the one that opened
it.

Reading ``/proc`` may fail for want of file descriptors (EMFILE): that is "the proxy is
busy", never "the caller is in no container".
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from collections import namedtuple
from typing import Any, Optional

from linkinit.engine import identity as peer

SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)
GONE = "exited before the proxy could tell which container it is in; connect from a process " \
       "that stays until its requests are answered"
_GONE_ERRNOS = (errno.ESRCH, errno.ENOENT, errno.EINVAL)
_OLD_KERNEL_ERRNOS = (errno.ENOPROTOOPT, errno.EOPNOTSUPP)


class Peer(namedtuple("Peer", "pid candidates namespace gone busy",
                      defaults=(0, (), None, False, ""))):
    """The kernel's facts about a connection's peer, read at accept.

    pid: in the proxy's PID namespace (0: not visible from it); candidates: container IDs in
    its cgroup paths; namespace: its PID namespace (``pid:[...]``); gone: the process that
    connected had exited before its facts were proven; busy: why they could not be read
    (out of file descriptors), "" when they were.
    """

    __slots__ = ()


class Busy(Exception):
    """The facts could not be read for want of resources (EMFILE, ENFILE, ENOMEM)."""


def identify(sock: Any) -> tuple[Peer, Optional[int]]:
    """The peer's facts and the pidfd that pins it (the caller closes it), None if the
    facts are not proven (the peer gone, the proxy busy, or a PID this namespace cannot
    see)."""
    try:
        pidfd, pid = _pin(sock)
    except Busy as error:
        return Peer(busy=str(error)), None
    except OSError:
        return Peer(gone=True), None
    if pidfd is None:
        return Peer(pid), None
    try:
        facts = Peer(pid, tuple(_candidates(pid)), _namespace(pid))
        if pid <= 0 or _exited(pidfd):
            facts = Peer(gone=True)
    except Busy as error:
        facts = Peer(busy=str(error))
    except OSError:
        facts = Peer(gone=True)
    if facts.gone or facts.busy:
        os.close(pidfd)
        return facts, None
    return facts, pidfd


def _pin(sock: Any) -> tuple[Optional[int], int]:
    """A pidfd for the process that connected and its PID; (None, 0) when its PID is not
    visible from here. Raises OSError when it is gone, ``Busy`` when out of descriptors."""
    try:
        pidfd = sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
    except OSError as error:
        _raise_busy(error)
        if error.errno not in _OLD_KERNEL_ERRNOS:
            raise
        return _pin_by_pid(sock)
    try:
        return pidfd, _pid_of(pidfd)
    except OSError:
        os.close(pidfd)
        raise


def _pin_by_pid(sock: Any) -> tuple[Optional[int], int]:
    """Before Linux 6.5: the PID from SO_PEERCRED, pinned at once (a race the kernel's own
    pidfd closes; a peer already gone is refused)."""
    pid = peer.peer_pid(sock)
    if pid is None:
        return None, 0
    try:
        return os.pidfd_open(pid), pid
    except OSError as error:
        _raise_busy(error)
        raise


def _pid_of(pidfd: int) -> int:
    """The PID a pidfd names (``Pid:`` in its fdinfo; -1 once the process is gone)."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}") as file:
            text = file.read()
    except OSError as error:
        _raise_busy(error)
        raise
    for line in text.splitlines():
        if line.startswith("Pid:"):
            pid = int(line.split()[1])
            if pid < 0:
                raise OSError(errno.ESRCH, "the peer exited")
            return pid
    raise OSError(errno.EINVAL, "no Pid in the pidfd's fdinfo")


def _candidates(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cgroup") as file:
            return peer.container_ids_in_cgroup(file.read())
    except OSError as error:
        _raise_busy(error)
        raise


def _namespace(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError as error:
        _raise_busy(error)
        if error.errno in _GONE_ERRNOS:
            raise
        return None  # not readable (permissions): the cgroup alone names it


def _exited(pidfd: int) -> bool:
    """Whether the process a pidfd pins has exited (its pidfd is readable then)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def _raise_busy(error: OSError) -> None:
    if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        raise Busy(f"the proxy could not tell who is calling: {os.strerror(error.errno)}") \
            from None


class Connections:
    """The facts of each open connection, from accept to close: a connection whose peer
    process exits is closed, and one beyond its container's ``limit`` of open connections
    is marked (its requests get 429, and it is closed)."""

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit  # connections one container may hold open; 0: no limit
        self._peers: dict[Any, Peer] = {}
        self._pidfds: dict[Any, int] = {}
        self._keys: dict[Any, str] = {}
        self._open: dict[str, int] = {}  # key -> connections open
        self._over: set[Any] = set()

    def accepted(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is None or sock.family != socket.AF_UNIX:
            self._count(transport, f"tcp {(transport.get_extra_info('peername') or ('',))[0]}")
            return  # TCP callers are told apart by address (``overlay``)
        facts, pidfd = identify(sock)
        self._peers[transport] = facts
        self._count(transport, _key(facts))
        if pidfd is None:
            return
        self._pidfds[transport] = pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._exited, transport)

    def _count(self, transport: Any, key: str) -> None:
        self._keys[transport] = key
        self._open[key] = self._open.get(key, 0) + 1
        if self.limit and self._open[key] > self.limit:
            self._over.add(transport)

    def over_limit(self, transport: Any) -> bool:
        """Whether the connection is one more than its container may hold open."""
        return transport in self._over

    def _exited(self, transport: Any) -> None:
        """The process that opened the connection exited: no other may use it."""
        self.lost(transport)
        transport.abort()

    def lost(self, transport: Any) -> None:
        self._peers.pop(transport, None)
        self._over.discard(transport)
        key = self._keys.pop(transport, None)
        if key is not None:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]
        pidfd = self._pidfds.pop(transport, None)
        if pidfd is not None:
            asyncio.get_running_loop().remove_reader(pidfd)
            os.close(pidfd)

    def peer(self, transport: Any) -> Optional[Peer]:
        """The facts read when the connection was accepted; None for TCP or unknown."""
        return self._peers.get(transport)

    def __len__(self) -> int:
        return len(self._keys)


def _key(facts: Peer) -> str:
    """What connections are counted by: the container the cgroup names, else the PID
    namespace, else the host (or the unknown)."""
    if facts.candidates:
        return facts.candidates[0]
    return facts.namespace or ("unknown" if facts.gone or facts.busy else "host")
