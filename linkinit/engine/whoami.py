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
candidate is only a candidate until an Engine knows a container with that ID. They are
string operations, not regular expressions: ``re`` costs ~3 ms of every container start.
"""

from __future__ import annotations

import _socket  # not socket.py: ~5 ms of imports on every start (engine/client.py)

from linkinit.engine import kinds as engines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

_HEX = frozenset("0123456789abcdef")
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ENGINE_PREFIXES = ("docker-", "libpod-", "crio-")
# Docker: /var/lib/docker/containers/<id>/hostname; Podman: .../overlay-containers/<id>/userdata
_CONTAINERS = "containers/"


def _is_id(text: str) -> bool:
    """64 lower-case hex digits: a container's full ID."""
    return len(text) == 64 and _HEX.issuperset(text)


def _id_ending(path: str) -> Optional[str]:
    """The ID a cgroup path ends in: ``[docker-|libpod-|crio-]<id>[.scope][/container]`` as
    its last component(s), after a ``/`` or at the start."""
    if path.endswith("/container"):
        path = path[: -len("/container")]
    name = path.rpartition("/")[2]
    if name.endswith(".scope"):
        name = name[: -len(".scope")]
    for prefix in _ENGINE_PREFIXES:
        if name.startswith(prefix) and _is_id(name[len(prefix):]):
            return name[len(prefix):]
    return name if _is_id(name) else None


def container_ids_in_cgroup(text: str) -> list[str]:
    """Candidate container IDs in the text of /proc/<pid>/cgroup (v1 or v2), first seen first."""
    found: list[str] = []
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        cid = _id_ending(path)
        if cid and cid not in found:
            found.append(cid)
    return found


def container_id_from_cgroup(text: str) -> Optional[str]:
    """The first candidate of ``container_ids_in_cgroup``, or None."""
    found = container_ids_in_cgroup(text)
    return found[0] if found else None


def container_id_from_mountinfo(text: str) -> Optional[str]:
    """The container the engine's bind mount of its ``hostname`` file names, or None: the
    first ``/containers/<id>/`` or ``/<letters, digits>-containers/<id>/`` in the text."""
    at = text.find(_CONTAINERS)
    while at >= 0:
        start = at + len(_CONTAINERS)
        cid = text[start:start + 64]
        if text[start + 64:start + 65] == "/" and _is_id(cid) and _after_slash(text, at):
            return cid
        at = text.find(_CONTAINERS, at + 1)
    return None


def _after_slash(text: str, at: int) -> bool:
    """Whether ``containers/`` at ``at`` follows ``/`` or ``/<a-z0-9>+-``."""
    if text[at - 1:at] == "/":
        return at > 0
    if text[at - 1:at] != "-" or at < 1:
        return False
    start = at - 1
    while start > 0 and text[start - 1] in _PREFIX_CHARS:
        start -= 1
    return start < at - 1 and text[start - 1:start] == "/" and start > 0


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
