"""Who may see what: the children a caller's declared links name, as linkinit finds them.

A container's labels, command and environment never change, so what it declares does not;
what a reference names may (a create, destroy or rename, a service event, or a container
joining or leaving a network that carries aliases: ``may_rename``). A resolution is kept
until such an event may have changed it; found by network alias, or not found, it is
forgotten on any of them. Each question to the Engine is asked once for every parent asking
it now (``Flights``).
"""

from __future__ import annotations

import functools
import json
from typing import Optional, Sequence

from linkinit.engine import kinds as engines
from linkinit.engine.transport import quote
from linkinit.host.proxy import origins, policy, redaction
from linkinit.host.proxy.flights import Flights
from linkinit.host.proxy.kept import Kept, Timeline
from linkinit.host.proxy.upstream import Unavailable, Upstream, alone
from linkinit.model import container as model
from linkinit.model import swarm

TOPOLOGY = {"create", "destroy", "rename", "connect", "disconnect"}  # who answers to a name
_RESOLVED = 16384  # resolutions kept (a reference and the parent that declares it)
_IMAGES = 1024  # image configs kept


class Scopes:
    """Callers' scopes: their declared references resolved to containers and services."""

    def __init__(self, upstream: Upstream, timeline: Timeline, kept: Kept, flights: Flights,
                 trust_files: bool, trust_image: bool = False) -> None:
        self.trust_image = trust_image  # links the image declared count too
        self._images: dict[str, Optional[dict]] = {}  # image ID -> its config (or None)
        self.upstream = upstream
        self.timeline = timeline
        self.kept = kept
        self.flights = flights
        self.trust_files = trust_files
        self.not_manager = ""  # the Engine's 503 to /services, once it said it is no manager
        self.generation = 0  # topology changes seen: event streams look at scopes again
        self._resolved: dict[tuple[str, str], tuple[tuple[dict, ...], bool]] = {}

    def reset(self) -> None:
        self.generation += 1
        self._resolved.clear()

    def saw(self, keys: set[str]) -> None:
        """A topology event about ``keys`` (``may_rename``): forget what it may change."""
        self.generation += 1
        self._resolved = {key: value for key, value in self._resolved.items()
                          if not _touches(keys, key[0], *value)}

    def awaited(self) -> set[str]:
        """The references some parent resolved to nothing (it waits for them)."""
        return {reference for (reference, _), (children, _) in self._resolved.items()
                if not children}

    async def scoped(self, document: dict, pid: int, address: str = "",
                     remote: bool = False) -> policy.Caller:
        """The caller with what it may see; ``remote``: the Engine cannot inspect it (a task
        on another node), so its document goes with it."""
        own = policy.Visible(str(document.get("Id")), model.name_of(document))
        mine = document if remote else None
        if self.trust_files:
            return policy.Caller(own.id, own.name, policy.ALL, (own,), pid, address=address,
                                 document=mine)
        scope: list[policy.Visible] = [own]
        services: list[policy.Visible] = []
        images: list[str] = []
        declared = await self._declared(document, remote)
        declared_env = redaction.declared_env(document)
        env: dict[str, redaction.Allowed] = {}
        for reference in declared.references:
            for child in await self._resolve(reference, document):
                seen = policy.Visible(str(child.get("Id")), model.name_of(child))
                env[seen.id] = redaction.widen(env, seen.id, declared_env.get(reference))
                into = services if swarm.is_service(child) else scope
                if seen not in into:
                    into.append(seen)
                if swarm.is_service(child):
                    image = model.image_of(child)
                    images += [image, swarm.local_image(image)]
        env.pop(own.id, None)  # its own answers are never cut
        return policy.Caller(own.id, own.name, policy.LINKS, tuple(scope), pid,
                             tuple(services), tuple(dict.fromkeys(images)), address, mine,
                             env=tuple(env.items()), untrusted=declared.from_image)

    async def _declared(self, document: dict, remote: bool) -> origins.Declared:
        """What the operator declared: all of it with ``--trust-image-links`` or for a task
        on another node (its document is its service's spec: the operator's); else what
        differs from the container's image."""
        if self.trust_image or remote:
            return origins.Declared(policy.declared_references(document), ())
        return origins.declarations(document, await self._image(str(document.get("Image"))))

    async def _image(self, image_id: str) -> Optional[dict]:
        """The image's inspect document (by ID: it never changes), kept; None if the Engine
        has none (then the container's config counts as the operator's)."""
        if image_id in self._images:
            return self._images[image_id]
        status, body = await self.flights.run(("image", image_id), alone(functools.partial(
            self.upstream.get_json, f"/images/{quote(image_id)}/json")))
        if status == 404 or (status == 200 and isinstance(body, dict)):
            found = body if status == 200 else None
            if len(self._images) >= _IMAGES:
                self._images.clear()
            self._images[image_id] = {"Config": (found or {}).get("Config")} if found else None
            return self._images[image_id]
        raise Unavailable(f"the Engine answered {status} to inspecting image {image_id}")

    async def rescoped(self, caller: policy.Caller) -> policy.Caller:
        """The caller's scope looked at again (a child may have appeared)."""
        document = caller.document or await self.kept.document(caller.id)
        if document is None:
            return caller
        return await self.scoped(document, caller.pid, caller.address,
                                 caller.document is not None)

    async def listed(self, path: str, params: Optional[dict] = None) -> list[dict]:
        status, summaries = await self.upstream.get_json(path, params)
        return summaries if status == 200 and isinstance(summaries, list) else []

    async def _resolve(self, reference: str, parent: dict) -> tuple[dict, ...]:
        """The child a reference names, as linkinit finds it (``container.find``): name, ID
        or unique prefix, else the one container holding it as a network alias on a network
        the parent is on. A reference two containers answer to grants neither."""
        key = (reference, str(parent.get("Id")))
        if key in self._resolved:
            return self._resolved[key][0]
        began = self.timeline.sequence + 1
        answers = await self._answers(reference, parent)
        found = model.find(reference, parent, answers)
        children: tuple[dict, ...] = (found.container,) if found.container is not None else ()
        # found by alias, or not found: any container created, renamed or connected may
        # change the answer
        unnamed = answers.neighbours is not None or not children
        names = [str(c.get("Id")) for c in children] + [model.name_of(c) for c in children]
        if self.timeline.fresh(began, [reference, *names]) and (
                not unnamed or self.timeline.topology < began):
            if len(self._resolved) >= _RESOLVED:
                self._resolved.clear()  # bounded: asked again, never wrong
            self._resolved[key] = (children, unnamed)
        return children

    async def _answers(self, reference: str, parent: dict) -> _Answers:
        """What ``find`` asks, in its order, each asked only if the one before settled
        nothing (the aliases' holders are None when a name or a service answered)."""
        missing = model.Lookup(None, model.MISSING)
        named = await self._by_reference(reference)
        if model.settles(named, reference):
            return _Answers(named, missing, None)
        service = await self._service(reference, parent)
        if service.container is not None or service.state == model.AMBIGUOUS:
            return _Answers(named, service, None)
        return _Answers(named, service, await self._neighbours(parent))

    async def _by_reference(self, reference: str) -> model.Lookup:
        """The Engine's own lookup (full ID, exact name, unique ID prefix), asked once for
        every parent resolving the same reference now (a new flight after any create,
        destroy or rename: an answer is never older than what its asker has seen)."""
        return await self.flights.run(("lookup", reference, self.timeline.topology), alone(
            lambda: self._look_up(reference)))

    async def _look_up(self, reference: str) -> model.Lookup:
        status, body = await self.upstream.get_json(f"/containers/{quote(reference)}/json")
        if status == 200 and isinstance(body, dict):
            return model.Lookup(body)
        message = str((body or {}).get("message", "")) if isinstance(body, dict) else ""
        if engines.answer_kind(status, message) == engines.AMBIGUOUS:
            return model.Lookup(None, model.AMBIGUOUS, message)
        return model.Lookup(None, model.MISSING)

    async def _service(self, reference: str, parent: dict) -> model.Lookup:
        """A swarm service as linkinit looks for it (the reference as written, then inside
        the parent's stack), shaped as a container: its ID, name and image are what a scope
        needs, so no tasks are asked for. MISSING where there is none or the Engine is no
        manager."""
        for name in swarm.service_references(reference, parent):
            status, body = await self.flights.run(
                ("service", name, self.timeline.topology),
                alone(functools.partial(self.upstream.get_json, f"/services/{quote(name)}")))
            if status == 200 and isinstance(body, dict):
                return model.Lookup(swarm.service_document(body, ()))
            message = str((body or {}).get("message", "")) if isinstance(body, dict) else ""
            kind = engines.answer_kind(status, message) if status >= 400 else ""
            if kind == engines.AMBIGUOUS:
                return model.Lookup(None, model.AMBIGUOUS, message)
            if kind == engines.NOT_MANAGER:
                self.not_manager = message
                break
        return model.Lookup(None, model.MISSING)

    async def _neighbours(self, parent: dict) -> list[dict]:
        documents: dict[str, dict] = {}
        for network in model.alias_networks(parent):
            filters = json.dumps({"network": [network]})
            for summary in await self.listed("/containers/json",
                                             {"all": "1", "filters": filters}):
                container_id = str(summary.get("Id"))
                if container_id not in documents and container_id != parent.get("Id"):
                    document = await self.kept.document(container_id)
                    if document is not None:
                        documents[container_id] = document
        return list(documents.values())


def _touches(keys: set[str], reference: str, children: tuple[dict, ...], by_alias: bool) -> bool:
    """Whether a topology event about ``keys`` may change what ``reference`` names."""
    return by_alias or reference in keys or any(str(c.get("Id")) in keys for c in children)


class _Answers:
    """``container.find``'s questions, answered from what the proxy fetched already."""

    def __init__(self, named: model.Lookup, service: model.Lookup,
                 neighbours: Optional[list[dict]]) -> None:
        self.named = named
        self.found_service = service
        self.neighbours = neighbours  # None: not asked (a name or a service answered)

    def by_reference(self, reference: str) -> model.Lookup:
        return self.named

    def service(self, reference: str) -> model.Lookup:
        return self.found_service

    def on_networks(self, networks: Sequence[str]) -> list[dict]:
        return self.neighbours or []


def keys_of(event: dict) -> set[str]:
    """The container IDs and names an event is about (a network event names its container)."""
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    return {str(actor.get("ID") or ""), str(attributes.get("container") or ""),
            str(attributes.get("name") or ""),
            str(attributes.get("oldName") or "").lstrip("/")} - {""}


def may_rename(event: dict) -> bool:
    """Whether an event may change which container or service a reference names: a create,
    destroy or rename, a service event, or a container joining or leaving a network that
    carries aliases (every start connects its container to the default bridge: not that)."""
    action = str(event.get("Action", ""))
    if event.get("Type") == "service":
        return True
    if event.get("Type") == "network" and action in ("connect", "disconnect"):
        network = str(((event.get("Actor") or {}).get("Attributes") or {}).get("name") or "")
        return model.carries_aliases(network)
    return action in TOPOLOGY
