"""Which of a container's link declarations the operator made, and which its image made.

At create the Engine merges the image's labels and ``ENV`` into the container's config, and
takes the image's ``ENTRYPOINT``/``CMD`` where none is given: a container run with a plain
``docker run`` carries whatever links its image's author wrote. The proxy counts only what
the operator set: a label whose key and value are the image's, an environment entry equal to
one of the image's, an Entrypoint or Cmd equal to the image's, came from the image. (What the
operator set to exactly the image's value cannot be told apart: it counts as the image's.)
Pure: takes inspect documents, returns references.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Mapping, Optional

from linkinit.host.proxy.policy import env_links, link_flags
from linkinit.model.container import declared_links


class Declared(namedtuple("Declared", "references from_image")):
    """references: the child references the operator declared (``policy.declared_references``
    order); from_image: ((reference, declaration), ...) the image declared, for refusals."""

    __slots__ = ()


def declarations(container: Mapping[str, Any], image: Optional[Mapping[str, Any]]) -> Declared:
    """The container's declarations split by origin; with no image document (it cannot be
    inspected any more), all of them are the operator's."""
    config = container.get("Config") or {}
    own = (image or {}).get("Config") or {}
    mine: list[str] = []
    theirs: list[tuple[str, str]] = []
    found = _labels(container, own) + _flags(config, own, image is not None) + \
        _environment(config, own)
    for child, text, from_image in found:
        if from_image:
            theirs.append((child, text))
        elif child not in mine:
            mine.append(child)
    return Declared(mine, tuple((ref, text) for ref, text in theirs if ref not in mine))


def _labels(container: Mapping[str, Any], own: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """``link.<alias>`` children, each with its label and whether the image has that label
    with that value."""
    labels = (container.get("Config") or {}).get("Labels") or {}
    image_labels = own.get("Labels") or {}
    found = []
    for alias, spec in declared_links(container):
        if isinstance(spec, Exception):
            continue  # a label that does not parse grants nothing
        key = f"link.{alias}"
        found.append((spec.child, f"label {key}={labels.get(key)}",
                      key in image_labels and image_labels.get(key) == labels.get(key)))
    return found


def _environment(config: Mapping[str, Any],
                 own: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """``LINKINIT_LINKS`` children, each with its entry and whether the image has it."""
    image_env = set(own.get("Env") or [])
    return [(child, f"ENV {entry}", entry in image_env)
            for entry in config.get("Env") or [] for child in env_links([entry])]


def _flags(config: Mapping[str, Any], own: Mapping[str, Any],
           known: bool) -> list[tuple[str, str, bool]]:
    """``--link`` children in Entrypoint + Cmd, each with whether the part it is in is the
    image's own."""
    entrypoint = list(config.get("Entrypoint") or [])
    command = list(config.get("Cmd") or [])
    in_entrypoint = link_flags(entrypoint)
    in_command = link_flags(entrypoint + command)
    for child in in_entrypoint:
        in_command.remove(child)
    entry_is_image = known and entrypoint == list(own.get("Entrypoint") or [])
    command_is_image = known and command == list(own.get("Cmd") or [])
    text = "--link {} in the image's {}".format
    return [(child, text(child, "ENTRYPOINT"), entry_is_image) for child in in_entrypoint] + \
        [(child, text(child, "CMD"), command_is_image) for child in in_command]
