"""Which container a process is in, as the kernel shows it: one rule for the init and the proxy.

The init asks it about itself (``/proc/self/...``), the proxy about a caller
(``/proc/<pid>/...``). Docker, Podman and CRI-O put every process of a container in a cgroup
named after the container's 64-hex ID: ``/docker/<id>`` (cgroupfs driver, v1 and v2),
``/system.slice/docker-<id>.scope`` (systemd driver), ``libpod-<id>.scope`` (Podman; under v2
its payload sits in ``.../libpod-<id>.scope/container``), ``crio-<id>.scope``. A path may carry
a prefix (nested cgroups, ``/../..`` from another cgroup namespace). Under cgroup v2 with a
private cgroup namespace the path is ``0::/`` and says nothing; the engine's bind mount of
``.../containers/<id>/hostname`` in mountinfo still names the container.

The rules are pure text; ``self_references`` alone reads this process's own files. A
candidate is only a candidate until an Engine knows a container with that ID.
"""

from __future__ import annotations

import _socket  # not socket.py: ~5 ms of imports on every start (engine/client.py)
import re

from linkinit.engine import kinds as engines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

_ID = r"([0-9a-f]{64})"
_ID_IN_CGROUP = re.compile(
    r"(?:^|/)(?:docker-|libpod-|crio-)?" + _ID + r"(?:\.scope)?(?:/container)?$"
)
# Docker: /var/lib/docker/containers/<id>/hostname; Podman: .../overlay-containers/<id>/userdata
_ID_IN_MOUNTINFO = re.compile(r"/(?:[a-z0-9]+-)?containers/" + _ID + r"/")


def container_ids_in_cgroup(text: str) -> list[str]:
    """Candidate container IDs in the text of /proc/<pid>/cgroup (v1 or v2), first seen first."""
    found: list[str] = []
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        match = _ID_IN_CGROUP.search(path)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def container_id_from_cgroup(text: str) -> Optional[str]:
    """The first candidate of ``container_ids_in_cgroup``, or None."""
    found = container_ids_in_cgroup(text)
    return found[0] if found else None


def container_id_from_mountinfo(text: str) -> Optional[str]:
    """The container the engine's bind mount of its ``hostname`` file names, or None."""
    match = _ID_IN_MOUNTINFO.search(text)
    return match.group(1) if match else None


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return ""


def self_references() -> list[tuple[str, str]]:
    """Where to look for this container, in the README's order, as (reference, source)."""
    references: list[tuple[str, str]] = []
    podman = engines.containerenv_fields(_read(engines.CONTAINERENV))
    for found, how in (
        (podman.get("id"), engines.CONTAINERENV),
        (podman.get("name"), engines.CONTAINERENV),
        (container_id_from_mountinfo(_read("/proc/self/mountinfo")), "/proc/self/mountinfo"),
        (container_id_from_cgroup(_read("/proc/self/cgroup")), "/proc/self/cgroup"),
        (_socket.gethostname(), "the hostname"),
    ):
        if found and found not in (ref for ref, _ in references):
            references.append((found, how))
    return references
