"""The client library (``linkinit.require`` ...): read the Docker-link variables of this process.

linkinit (or, before Docker 29, the Docker daemon itself) exports each linked container's
coordinates as ``<ALIAS>_PORT...``, ``<ALIAS>_NAME`` and ``<ALIAS>_ENV_<key>`` variables.
This module turns them back into values an application can use::

    import linkinit
    proto, ip, port = linkinit.require("redis")            # from REDIS_PORT
    password = linkinit.require_env("redis", "password")   # REDIS_ENV_PASSWORD

It reads only the environment, so it works in any process, started by linkinit or not, and
it imports nothing but the standard library: the CLI imports this package, and applications
should not pay for the Docker SDK to read three variables.

Kubernetes writes the same ``<SVC>_PORT...`` variables for every service of the pod's
namespace (the kubelet's ``pkg/kubelet/envvars``), with ``<SVC>_SERVICE_HOST`` and
``<SVC>_SERVICE_PORT`` instead of ``_NAME`` and no ``_ENV_``: ``require`` reads them as they
are, and ``links`` recognises such a service by its ``_SERVICE_HOST``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

from linkinit.model.declare import ALIAS_CHARS, env_prefix

__all__ = [
    "Endpoint",
    "Link",
    "LinkError",
    "links",
    "prefix",
    "require",
    "require_env",
    "service_variables",
]

_ALIAS_RE = re.compile(f"^{ALIAS_CHARS}+$")
# `<P>_NAME` of a real link is `/<parent>/<alias>` (Docker: path.Join(parent name, alias)).
_LINK_NAME_RE = re.compile(rf"^/(?:[^/]+/)*[^/]+/(?P<alias>{ALIAS_CHARS}+)$")
# `<P>_PORT_<n>_<PROTO>` (the URL of one port), nothing after it.
_PORT_VAR_RE = re.compile(r"^PORT_(?P<num>[0-9]+)_(?P<proto>[A-Z]+)$")
# What a link writes under its own prefix; anything else under it is not that link's.
_LINK_SUFFIX_RE = re.compile(
    r"^(?:NAME|PORT|ENV_.+"
    r"|PORT_[0-9]+_[A-Z]+(?:_ADDR|_PORT|_PROTO|_START|_END|_PORT_START|_PORT_END)?)$"
)
_URL_RE = re.compile(r"^(?P<proto>[a-z]+)://(?P<host>.+):(?P<port>[0-9]+)$")
# What the kubelet writes under a service's prefix: the Docker-style port variables (no
# ranges), and SERVICE_HOST, SERVICE_PORT and SERVICE_PORT_<PORT NAME>.
_SERVICE_SUFFIX_RE = re.compile(
    r"^(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT"
    r"|PORT_[0-9]+_[A-Z]+(?:_ADDR|_PORT|_PROTO)?)$"
)
KUBERNETES = "kubernetes"
DOCKER = "docker"
_SECRET_SUFFIX = "_FILE"  # secrets=files: <ALIAS>_ENV_<KEY>_FILE names the value's file


class LinkError(LookupError):
    """A link variable the application needs is missing or malformed.

    A ``LookupError`` (like ``KeyError``) because it means "this name is not in the
    environment", so ``except LookupError`` callers keep working; not a ``KeyError`` itself,
    whose ``str()`` would quote the whole message. ``variable`` is the name looked up.
    """

    def __init__(self, message: str, variable: str) -> None:
        super().__init__(message)
        self.variable = variable

    def __str__(self) -> str:
        return str(self.args[0])


class Endpoint(NamedTuple):
    """One exposed port of a linked container: unpacks as ``proto, ip, port``."""

    proto: str
    ip: str
    port: int

    @property
    def url(self) -> str:
        """The value Docker gives ``<ALIAS>_PORT_<port>_<PROTO>``: ``tcp://ip:port``."""
        return f"{self.proto}://{self.ip}:{self.port}"


@dataclass(frozen=True)
class Link:
    """One link found in the environment.

    ``alias`` keeps the case and dashes of the name Docker recorded (``redis-cache``);
    ``prefix`` is the variable prefix derived from it (``REDIS_CACHE``); ``address`` is the
    child's IP (``None`` when it exposes no port); ``ports`` sort as Docker sorts them, TCP
    first, so ``ports[0]`` is what ``<ALIAS>_PORT`` names; ``env`` is the child's
    environment with the keys' case kept.

    ``source`` is ``"docker"`` for a link, ``"kubernetes"`` for a service the kubelet wrote:
    then ``alias`` is the service's name (``redis-cache``), ``name`` is empty, ``address`` is
    its cluster IP, ``ports[0]`` is the service's first port as its spec lists it (what
    ``<SVC>_PORT`` names, UDP if that port is), the rest follow in Docker's order, and ``env``
    is empty: Kubernetes passes no variables of the service's pods.
    """

    alias: str
    name: str
    prefix: str
    address: Optional[str]
    ports: Tuple[Endpoint, ...]
    env: Dict[str, str] = field(default_factory=dict, hash=False)
    source: str = DOCKER

    @property
    def parent(self) -> str:
        """The parent container's name as Docker recorded it (``/webapp``)."""
        return self.name.rsplit("/", 1)[0]

    def port(self, port: Optional[int] = None, proto: str = "tcp") -> Endpoint:
        """The default endpoint (``<ALIAS>_PORT``), or the one for ``port``/``proto``."""
        if not self.ports:
            raise LinkError(
                f"linkinit: link {self.alias!r} exposes no port ({self.prefix}_PORT is not set)",
                f"{self.prefix}_PORT",
            )
        if port is None:
            return self.ports[0]
        proto = proto.lower()
        for endpoint in self.ports:
            if endpoint.port == port and endpoint.proto == proto:
                return endpoint
        variable = f"{self.prefix}_PORT_{port}_{proto.upper()}"
        raise LinkError(
            f"linkinit: link {self.alias!r} does not expose {port}/{proto} ({variable} is not set)",
            variable,
        )


def prefix(alias: str) -> str:
    """The variable prefix of ``alias``, as Docker builds it: upper case, ``-`` -> ``_``."""
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise ValueError(
            f"linkinit: bad link alias {alias!r}: use letters, digits, '_' and '-'"
        )
    return env_prefix(alias)


def _environ(environ: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    """The mapping to read: the one given, else this process's environment with, in follow
    mode, the links as they are now laid over the ones it was started with."""
    if environ is not None:
        return environ
    current = followed_links(os.environ.get("LINKINIT_FOLLOW_DIR"))
    if not current:
        return os.environ
    prefixes = tuple(key[: -len("NAME")] for key in current if key.endswith("_NAME"))
    kept = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    return {**kept, **current}


def followed_links(state_dir: Optional[str] = None) -> Dict[str, str]:
    """Follow mode's links file (NUL-separated ``KEY=VALUE``), replaced atomically by the
    watcher on every change; empty when follow mode is off."""
    from linkinit.init.supervise import (  # standard library only
        FOLLOW_DIR,
        LINKS_FILE,
        read_environ,
    )

    try:
        return read_environ(os.path.join(state_dir or FOLLOW_DIR, LINKS_FILE))
    except OSError:
        return {}


def _parse_url(variable: str, value: str) -> Endpoint:
    """Parse ``proto://ip:port``; the IP of an IPv6 child comes unbracketed from Docker."""
    match = _URL_RE.match(value)
    if match is None:
        raise LinkError(
            f"linkinit: {variable}={value!r} is not of the form proto://ip:port", variable
        )
    host = match["host"]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(match["port"])
    if not 0 < port < 65536:
        raise LinkError(f"linkinit: {variable}={value!r} has no valid port number", variable)
    return Endpoint(match["proto"], host, port)


def _missing(alias: str, variable: str, what: str) -> LinkError:
    return LinkError(
        f"linkinit: {variable} is not set: no {what} for link {alias!r}"
        " (is the link declared, and is this process started by linkinit?)",
        variable,
    )


def require(
    alias: str,
    port: Optional[int] = None,
    proto: str = "tcp",
    environ: Optional[Mapping[str, str]] = None,
) -> Endpoint:
    """The ``(proto, ip, port)`` of a link: its first port, or the given ``port``/``proto``.

    Without ``port`` this reads ``<ALIAS>_PORT`` (the child's lowest TCP port, as Docker
    chose it); with one, ``<ALIAS>_PORT_<port>_<PROTO>``. Raises ``LinkError`` naming the
    variable when it is not set.
    """
    env = _environ(environ)
    pfx = prefix(alias)
    if port is None:
        variable = f"{pfx}_PORT"
        what = "port"
    else:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"linkinit: bad port {port!r}: use a number from 1 to 65535")
        if not isinstance(proto, str) or not re.match(r"^[A-Za-z]+$", proto):
            raise ValueError(f"linkinit: bad protocol {proto!r}: use tcp, udp or sctp")
        variable = f"{pfx}_PORT_{port}_{proto.upper()}"
        what = f"port {port}/{proto.lower()}"
    value = env.get(variable)
    if value is None:
        raise _missing(alias, variable, what)
    return _parse_url(variable, value)


def require_env(alias: str, key: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """A variable of the linked container's environment: ``<ALIAS>_ENV_<key>``.

    Docker keeps the key's case, so the exact spelling is tried first, then upper case, then
    any spelling; two spellings that differ only in case are ambiguous and raise. A link
    declared ``secrets=files`` hands the value over as a file instead
    (``<ALIAS>_ENV_<key>_FILE=<dir>/<ALIAS>_ENV_<key>``): it is read from there.
    """
    env = _environ(environ)
    return _read_through(env, _require_env(env, alias, key))


def _read_through(env: Mapping[str, str], variable: str) -> str:
    """The value of ``variable``, or of the file linkinit wrote for it."""
    if variable in env:
        return env[variable]
    path = env[variable + _SECRET_SUFFIX]
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            return file.read()
    except OSError as error:
        raise LinkError(
            f"linkinit: {variable}{_SECRET_SUFFIX}={path}: cannot read the file: "
            f"{error.strerror}", variable) from None


def _secret_files(env: Mapping[str, str]) -> Dict[str, str]:
    """``<NAME>`` -> its ``<NAME>_FILE`` for each variable linkinit handed over as a file:
    the path's last part is the variable's own name (a child's own ``*_FILE`` variable,
    copied as ``<ALIAS>_ENV_<KEY>_FILE``, names another file)."""
    found = {}
    for variable, path in env.items():
        name = variable[: -len(_SECRET_SUFFIX)]
        if (variable.endswith(_SECRET_SUFFIX) and "_ENV_" in name and path.startswith("/")
                and path.rsplit("/", 1)[-1] == name and name not in env):
            found[name] = variable
    return found


def _require_env(env: Mapping[str, str], alias: str, key: str) -> str:
    """The name of the variable ``require_env`` reads (itself, or handed over as a file)."""
    present = {**_secret_files(env), **env}
    base = f"{prefix(alias)}_ENV_"
    if not isinstance(key, str) or not key or "=" in key:
        raise ValueError(f"linkinit: bad variable name {key!r}")
    for variable in (base + key, base + key.upper()):
        if variable in present:
            return variable
    wanted = (base + key).upper()
    found = sorted(name for name in present if name.upper() == wanted)
    if len(found) == 1:
        return found[0]
    if found:
        raise LinkError(
            f"linkinit: {' and '.join(found)} differ only in case: ask for one of them exactly",
            base + key,
        )
    if _is_service(env, prefix(alias)):
        raise LinkError(
            f"linkinit: {base + key.upper()} is not set: {alias!r} is a Kubernetes service "
            f"({prefix(alias)}_SERVICE_HOST), and Kubernetes passes no variables of a "
            "service's pods; give the pod this value yourself (env, a ConfigMap or a Secret)",
            base + key.upper(),
        )
    raise _missing(alias, base + key.upper(), f"variable {key!r}")


def _port_sort_key(endpoint: Endpoint) -> Tuple[int, str, int]:
    """Docker's order (withTCPPriority): TCP first, then by protocol name, then by number."""
    return (0 if endpoint.proto == "tcp" else 1, endpoint.proto, endpoint.port)


def links(environ: Optional[Mapping[str, str]] = None) -> List[Link]:
    """Every link and Kubernetes service in the environment, sorted by prefix.

    A link is identified by ``<P>_NAME`` whose value looks like ``/<parent>/<alias>`` with
    ``<alias>`` giving back ``<P>`` (upper case, ``-`` -> ``_``): that is how Docker names a
    link, and it is what tells the link ``redis`` with child variable ``ENV_X``
    (``REDIS_ENV_X``) from a link whose alias is ``redis-env``. A Kubernetes service is
    identified by ``<P>_SERVICE_HOST`` with a numeric ``<P>_SERVICE_PORT`` and a
    ``<P>_PORT`` URL on that host, all three as the kubelet writes them. A variable belongs
    to the link with the longest matching prefix, so ``REDIS_ENV_NAME`` of a link
    ``redis-env`` is not read as the child variable ``NAME`` of ``redis``, provided the rest
    of the name is one a link writes (``NAME``, ``PORT...``, ``ENV_...``): ``REDIS_ENV_PASSWORD``
    stays with ``redis``.
    """
    env = _environ(environ)
    docker = _docker_links(env)
    services = {pfx: alias for pfx, alias in _services(env).items() if pfx not in docker}
    suffixes = {pfx: _LINK_SUFFIX_RE for pfx in docker}
    suffixes.update({pfx: _SERVICE_SUFFIX_RE for pfx in services})
    owned = _owned_variables(env, suffixes)
    result = [_docker_link(pfx, alias, name, owned[pfx]) for pfx, (alias, name) in docker.items()]
    result += [_service_link(pfx, alias, owned[pfx]) for pfx, alias in services.items()]
    return sorted(result, key=lambda link: link.prefix)


def service_variables(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The variables the kubelet wrote for the Kubernetes services in the environment, by name.

    ``linkinit --print-env`` shows them beside the links it resolved.
    """
    env = _environ(environ)
    services = _services(env)
    owned = _owned_variables(env, {pfx: _SERVICE_SUFFIX_RE for pfx in services})
    return {
        f"{pfx}_{suffix}": value
        for pfx in services
        for suffix, value in owned[pfx].items()
    }


def _docker_links(env: Mapping[str, str]) -> Dict[str, Tuple[str, str]]:
    """``{prefix: (alias, name)}`` for every ``<P>_NAME`` that is a Docker link's name."""
    found: Dict[str, Tuple[str, str]] = {}
    for variable, value in env.items():
        if not variable.endswith("_NAME") or variable == "_NAME":
            continue
        pfx = variable[: -len("_NAME")]
        match = _LINK_NAME_RE.match(value)
        if match and env_prefix(match["alias"]) == pfx:
            found[pfx] = (match["alias"], value)
    return found


def _is_service(env: Mapping[str, str], pfx: str) -> bool:
    """Whether the kubelet wrote ``pfx``'s variables: a host, a port number, a URL on them."""
    host = env.get(f"{pfx}_SERVICE_HOST")
    match = _URL_RE.match(env.get(f"{pfx}_PORT", ""))
    return bool(
        host
        and env.get(f"{pfx}_SERVICE_PORT", "").isdigit()
        and match
        and match["host"] in (host, f"[{host}]")
    )


def _services(env: Mapping[str, str]) -> Dict[str, str]:
    """``{prefix: service name}``: a service's name is a DNS label (lower case, digits, ``-``),
    so the kubelet's prefix gives it back."""
    prefixes = (v[: -len("_SERVICE_HOST")] for v in env if v.endswith("_SERVICE_HOST"))
    return {pfx: pfx.lower().replace("_", "-") for pfx in prefixes if _is_service(env, pfx)}


def _owned_variables(
    env: Mapping[str, str], suffixes: Mapping[str, re.Pattern]
) -> Dict[str, Dict[str, str]]:
    """Each prefix's variables (by suffix), each variable to the longest prefix it fits."""
    by_length = sorted(suffixes, key=len, reverse=True)
    owned: Dict[str, Dict[str, str]] = {pfx: {} for pfx in suffixes}
    for variable, value in env.items():
        for pfx in by_length:
            suffix = variable[len(pfx) + 1 :]
            if variable.startswith(pfx + "_") and suffixes[pfx].match(suffix):
                owned[pfx][suffix] = value
                break
    return owned


def _endpoints(pfx: str, own: Mapping[str, str]) -> List[Endpoint]:
    """The ``<P>_PORT_<n>_<PROTO>`` URLs, in Docker's order."""
    ports = []
    for suffix, value in own.items():
        if _PORT_VAR_RE.match(suffix):
            ports.append(_parse_url(f"{pfx}_{suffix}", value))
    return sorted(ports, key=_port_sort_key)


def _docker_link(pfx: str, alias: str, name: str, own: Mapping[str, str]) -> Link:
    ports = _endpoints(pfx, own)
    address = None
    if "PORT" in own:
        address = _parse_url(f"{pfx}_PORT", own["PORT"]).ip
    elif ports:
        address = ports[0].ip
    child_env = {k[len("ENV_") :]: v for k, v in own.items() if k.startswith("ENV_")}
    return Link(alias, name, pfx, address, tuple(ports), child_env)


def _service_link(pfx: str, alias: str, own: Mapping[str, str]) -> Link:
    """A Kubernetes service: ``<P>_PORT`` (its first port) leads, the rest in Docker's order."""
    first = _parse_url(f"{pfx}_PORT", own["PORT"])
    rest = [endpoint for endpoint in _endpoints(pfx, own) if endpoint != first]
    return Link(alias, "", pfx, own["SERVICE_HOST"], (first, *rest), {}, KUBERNETES)
