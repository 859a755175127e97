"""Who is calling: the container the kernel puts a Unix-socket peer in (``peer``), or the
task or container holding a TCP peer's address on an overlay network (``overlay``).

Nothing the caller says is believed. The answer is a ``policy.Caller`` with the containers
it may see (``Scopes``), or without them when the request names none.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Optional

from linkinit.engine import identity as peer
from linkinit.host.proxy import overlay, policy
from linkinit.host.proxy.connections import GONE, Peer
from linkinit.host.proxy.kept import Kept, Timeline
from linkinit.host.proxy.scopes import TOPOLOGY, Scopes
from linkinit.host.proxy.upstream import Unavailable, Upstream
from linkinit.model import container as model


class Callers:
    """Callers as the kernel names them, with their scopes."""

    def __init__(self, upstream: Upstream, timeline: Timeline, kept: Kept, scopes: Scopes,
                 allow_host: bool) -> None:
        self.timeline = timeline
        self.kept = kept
        self.scopes = scopes
        self.allow_host = allow_host
        self.addresses = overlay.Addresses(upstream.get_json)  # TCP callers
        self._namespaces: Optional[dict[str, str]] = None
        self._own_namespace = peer.pid_namespace("self")

    def reset(self) -> None:
        self._namespaces = None

    def saw(self, event: dict) -> None:
        """An event: a service or network event moves addresses; a start, a death or a
        topology change, PID namespaces."""
        action = str(event.get("Action", ""))
        if event.get("Type") in ("service", "network"):
            self.addresses.forget()
        if action in TOPOLOGY or action in ("start", "die"):
            self._namespaces = None

    async def caller(self, facts: Optional[Peer], scoped: bool = True) -> policy.Caller:
        """The caller as the kernel named it when its connection was accepted, with the
        containers it may see (``scoped``; else itself only, enough for a request that names
        no container). A peer gone before it was proven is nobody; a peer the proxy could not
        read for want of descriptors is the proxy's trouble (503), not "in no container"."""
        if facts is None or facts.gone:
            return policy.Caller("", "", policy.NOBODY, why=GONE if facts else "")
        if facts.busy:
            raise Unavailable(facts.busy)
        document = await self._container_of(facts)
        if document is None:
            view = policy.ALL if self.allow_host else policy.NOBODY
            return policy.Caller("", "", view, (), facts.pid)
        if not scoped:
            own = policy.Visible(str(document.get("Id")), model.name_of(document))
            return policy.Caller(own.id, own.name, policy.LINKS, (own,), facts.pid)
        return await self.scopes.scoped(document, facts.pid)

    async def caller_at(self, peername: Any, sockname: Any,
                        scoped: bool = True) -> policy.Caller:
        """A TCP caller: the task or container holding its address on the overlay network
        the connection arrived on (``overlay``); a loopback peer is this host."""
        address = address_text(peername)
        peer_ip = overlay.address(peername[0] if peername else "")
        if peer_ip is not None and peer_ip.is_loopback:
            view = policy.ALL if self.allow_host else policy.NOBODY
            return policy.Caller("", "", view, address=address, why=(
                "is a process on the proxy's own host or container (loopback), refused unless "
                f"the proxy runs with --allow-host; {overlay.SERVES}"))
        found = await self.addresses.who(peer_ip, overlay.address(
            sockname[0] if sockname else ""), self.timeline.caching)
        document = await self._holder_document(found.holder)
        if document is None:
            return policy.Caller("", "", policy.NOBODY, address=address,
                                 why=found.why or f"is gone; {overlay.SERVES}")
        remote = found.holder is not None and found.holder.kind == overlay.TASK
        if not scoped:
            own = policy.Visible(str(document.get("Id")), model.name_of(document))
            return policy.Caller(own.id, own.name, policy.LINKS, (own,), address=address,
                                 document=document if remote else None)
        return await self.scopes.scoped(document, 0, address, remote)

    async def _holder_document(self, holder: Optional[overlay.Holder]) -> Optional[dict]:
        """A container's inspect document, or a task's as its node would show it."""
        if holder is None:
            return None
        if holder.kind == overlay.TASK:
            return await self.addresses.document(holder)
        return await self.kept.document(holder.id)

    async def _container_of(self, facts: Peer) -> Optional[dict]:
        for candidate in facts.candidates:
            document = await self.kept.document(candidate)
            if document is not None and document.get("Id") == candidate:  # not a name
                return document
        namespace = facts.namespace
        if namespace is None or namespace == self._own_namespace:
            return None
        owner = (await self._pid_namespaces()).get(namespace)
        return await self.kept.document(owner) if owner else None

    async def _pid_namespaces(self) -> dict[str, str]:
        """PID namespace -> container ID of the running containers (not --pid=host ones)."""
        if self._namespaces is not None:
            return self._namespaces
        began = self.timeline.sequence + 1
        found: dict[str, str] = {}
        for summary in await self.scopes.listed("/containers/json"):
            document = await self.kept.document(str(summary.get("Id")))
            namespace = _namespace_of(document)
            if namespace and namespace != self._own_namespace:
                found[namespace] = str(summary.get("Id"))
        if self.timeline.topology < began and self.timeline.fresh(began, list(found.values())):
            self._namespaces = found
        return found


def _namespace_of(document: Optional[dict]) -> Optional[str]:
    """A running container's PID namespace; out of descriptors is the proxy's trouble (503),
    not a container missing from the map (its caller would be "in no container")."""
    pid = ((document or {}).get("State") or {}).get("Pid") or 0
    if not pid:
        return None
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError as error:
        if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            raise Unavailable(f"the proxy could not tell who is calling: "
                              f"{os.strerror(error.errno)}") from None
        return None


def address_text(peername: Any) -> str:
    """``10.0.1.5:41234`` (``[fd00::5]:41234``) from a transport's peername."""
    if not peername:
        return "unknown address"
    host = str(peername[0])
    return (f"[{host}]" if ":" in host else host) + f":{peername[1]}"
