"""``/etc/hosts`` lines for the aliases, as Docker wrote them, so ``redis-cli -h redis`` works.

Docker added ``<ip>\\t<alias> <child-hostname> <child-name>`` for each link (the name left
out when it equals the alias). Running again (a restarted container keeps its file) replaces
an alias's old line instead of piling up copies.
"""

from __future__ import annotations

import os

from linkinit.model.envvars import ResolvedLink

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Iterable

HOSTS = "/etc/hosts"


def host_line(endpoint: ResolvedLink) -> str:
    names = [endpoint.alias]
    for extra in (endpoint.child_hostname, endpoint.child_name):
        if extra and extra not in names:
            names.append(extra)
    return f"{endpoint.ip}\t{' '.join(names)}"


def updated_hosts(text: str, endpoints: Iterable[ResolvedLink]) -> str:
    """The file with one line per link, older lines for the same aliases dropped. Pure.

    A link whose alias the network's DNS answers (``address=name`` on a user-defined
    network) gets no line: the DNS follows the child through restarts, a line would not."""
    endpoints = list(endpoints)
    lines = [host_line(e) for e in endpoints if e.ip and not e.by_dns]
    aliases = {line.split("\t", 1)[1].split()[0] for line in lines}
    aliases.update(e.alias for e in endpoints if e.by_dns)
    kept = [
        line for line in text.splitlines()
        if line.lstrip().startswith("#")
        or not (len(line.split()) > 1 and line.split()[1] in aliases)
    ]
    return "\n".join(kept + lines) + "\n"


def write_hosts(endpoints: Iterable[ResolvedLink], path: str = HOSTS) -> bool:
    """Rewrite in place (Docker bind-mounts the file: a rename would not reach it)."""
    endpoints = list(endpoints)
    if not endpoints or not os.access(path, os.W_OK):
        return False
    try:
        with open(path, "r+") as file:
            new = updated_hosts(file.read(), endpoints)
            file.seek(0)
            file.write(new)
            file.truncate()
    except OSError:
        return False
    return True
