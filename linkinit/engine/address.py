"""Where an Engine answers: ``DOCKER_HOST``'s forms and the default sockets, read one way.

The start path's client and the proxy's upstream both take an Engine address; reading it
here once keeps their defaults (the socket paths, TCP's port 2375) and their refusal of
anything else identical.
"""

from __future__ import annotations

from collections import namedtuple

DEFAULT_HOST = "unix:///var/run/docker.sock"
PROXY_SOCKET = "/run/linkinit/engine.sock"  # where parents mount ``linkinit proxy``
DEFAULT_TCP_PORT = 2375

# Exactly one of the two is set: a Unix socket's path, or TCP's (host, port).
Address = namedtuple("Address", "socket_path tcp")


class UnsupportedHost(ValueError):
    """An address in a form linkinit does not speak; the message says which forms it does."""


def parse_host(host: str) -> Address:
    """``unix:///path``, ``tcp://host[:port]`` or ``http://host[:port]``."""
    if host.startswith("unix:///") and not any(c in host for c in "?#;"):
        return Address(host[len("unix://"):], None)  # what urlparse gives, ~5 ms cheaper
    import urllib.parse  # only for the rarer forms (tcp://, unix://host/...)

    parsed = urllib.parse.urlparse(host)
    if parsed.scheme == "unix" and parsed.path:
        return Address(parsed.path, None)
    if parsed.scheme in ("tcp", "http"):
        return Address(None, (parsed.hostname or "localhost", parsed.port or DEFAULT_TCP_PORT))
    raise UnsupportedHost(
        f"DOCKER_HOST={host} is not supported: use unix:///path or tcp://host:port")
