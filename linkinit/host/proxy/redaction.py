"""The proxy's redaction: a parent sees of its child's environment only what it receives.

Pure. A parent declaring ``link.redis.env=PASSWORD`` receives ``REDIS_ENV_PASSWORD`` and
nothing else of the child's environment; if the proxy then answered its inspect of the
child with the whole ``Config.Env``, the allowlist would hold only for a parent that does
not ask. So every answer that carries a child's environment is cut to the keys the caller's
declarations allow for that child (all by default, as Docker's links copied it all):

- a container's inspect (``Config.Env``);
- a swarm service's inspect (``Spec`` and ``PreviousSpec``: ``TaskTemplate.ContainerSpec.Env``)
  and its tasks (``Spec.ContainerSpec.Env``).

The other answers the proxy serves carry no environment: a container list holds summaries
(no ``Config``), and the Engine's events carry a container's labels, image and name as
attributes, never its environment. The caller's own documents are never cut (a process can
read its own environment anyway).

What a caller allows is read from what was fixed when it was created, as the proxy reads
its links (``policy.declared_references``): ``link.<alias>.env`` labels; a child linked by
``--link`` in its command or by ``LINKINIT_LINKS`` gets Docker's default, all. A child
linked twice (two aliases) shows the union of what both allow.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Iterable, Mapping, Optional

from linkinit.model import childenv
from linkinit.model.container import declared_links

Allowed = Optional[tuple[str, ...]]  # childenv's: None for all keys


def declared_env(container: Mapping[str, Any]) -> dict[str, Allowed]:
    """Child reference -> the keys the container allows of it (``childenv.ALL`` for all)."""
    from linkinit.host.proxy.policy import env_links, link_flags

    allowed: dict[str, Allowed] = {}
    for _, spec in declared_links(container):
        if isinstance(spec, Exception):
            continue  # a label that does not parse grants nothing
        allowed[spec.child] = (childenv.widest(allowed[spec.child], spec.env)
                               if spec.child in allowed else spec.env)
    config = container.get("Config") or {}
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    for child in link_flags(argv) + env_links(config.get("Env") or []):
        allowed[child] = childenv.ALL
    return allowed


def widen(allowed: Mapping[str, Allowed], child_id: str, more: Allowed) -> Allowed:
    """What a child already seen (by ID in ``allowed``) shows once one more reference to it
    allows ``more``."""
    return childenv.widest(allowed[child_id], more) if child_id in allowed else more


def allowed_for(env: Iterable[tuple[str, Allowed]], subject_id: str) -> Allowed:
    """What a caller with these (child ID, allowed) pairs sees of ``subject_id``'s
    environment: all unless the ID is a child with a narrower declaration."""
    return dict(env).get(subject_id, childenv.ALL)


def cut(entries: Any, allowed: Allowed) -> Any:
    """``KEY=value`` entries cut to the allowed keys; anything but a list is left as is."""
    if allowed is childenv.ALL or not isinstance(entries, list):
        return entries
    return list(childenv.select([str(entry) for entry in entries], allowed))


def container(document: Mapping[str, Any], allowed: Allowed) -> dict:
    """A container's inspect document with ``Config.Env`` cut."""
    result = dict(document)
    if allowed is not childenv.ALL and isinstance(result.get("Config"), dict):
        result["Config"] = {**result["Config"], "Env": cut(result["Config"].get("Env"), allowed)}
    return result


def _container_spec_env(spec: Any, path: tuple[str, ...], allowed: Allowed) -> None:
    """Cut ``Env`` at the end of ``path`` inside ``spec`` (a copy), where it is there."""
    for key in path:
        if not isinstance(spec, dict) or not isinstance(spec.get(key), dict):
            return
        spec = spec[key]
    if "Env" in spec:
        spec["Env"] = cut(spec["Env"], allowed)


def service(document: Mapping[str, Any], allowed: Allowed) -> dict:
    """A swarm service's inspect with its container spec's ``Env`` cut, in the spec and in
    the spec before its last update."""
    result = copy.deepcopy(dict(document))
    if allowed is not childenv.ALL:
        for spec in ("Spec", "PreviousSpec"):
            _container_spec_env(result, (spec, "TaskTemplate", "ContainerSpec"), allowed)
    return result


def task(document: Mapping[str, Any], allowed: Allowed) -> dict:
    """A swarm task with its ``Spec.ContainerSpec.Env`` cut."""
    result = copy.deepcopy(dict(document))
    if allowed is not childenv.ALL:
        _container_spec_env(result, ("Spec", "ContainerSpec"), allowed)
    return result


# -- answers as the proxy serves them ------------------------------------------------------


def container_body(env: Iterable[tuple[str, Allowed]], container_id: str, body: bytes) -> bytes:
    """The Engine's inspect answer (bytes) for ``container_id``, cut for this caller; the
    very bytes when nothing is cut."""
    return _cut_body(allowed_for(env, container_id), body, container)


def service_body(env: Iterable[tuple[str, Allowed]], service_id: str, body: bytes) -> bytes:
    """The Engine's service inspect (bytes), cut for this caller."""
    return _cut_body(allowed_for(env, service_id), body, service)


def _cut_body(allowed: Allowed, body: bytes,
              cut: Callable[[dict, Allowed], dict]) -> bytes:
    """``body`` as is when the caller may see it all; else the document ``cut``, and an empty
    object for anything that is not one (nothing that cannot be cut is served)."""
    if allowed is childenv.ALL:
        return body
    try:
        document = json.loads(body)
    except ValueError:
        return b"{}"
    return json.dumps(cut(document, allowed) if isinstance(document, dict) else {}).encode()


def tasks(env: Iterable[tuple[str, Allowed]], listed: Iterable[Any]) -> list:
    """A task list, each task cut by what the caller allows of its service."""
    pairs = list(env)
    return [task(item, allowed_for(pairs, str(item.get("ServiceID", ""))))
            if isinstance(item, dict) else item for item in listed]
