"""Resolved links -> the environment variables Docker's legacy links wrote, name for name.

Pure. The rules follow moby's ``daemon/links`` (v28+): ports sorted TCP first, then by
protocol name, each by number; every port gets its four variables; a run of consecutive ports
of one protocol also gets ``_START``/``_END`` keyed on its first port; the child's own
variables come as ``<ALIAS>_ENV_<key>`` except HOME and PATH.
"""

from __future__ import annotations

from collections import namedtuple

from linkinit.model.container import Port
from linkinit.model.declare import env_prefix

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Iterable, Mapping, Sequence

_SKIPPED_CHILD_VARIABLES = ("HOME", "PATH")


class ResolvedLink(
    namedtuple(
        "ResolvedLink",
        "alias parent_name ip ports env child_name child_hostname child_id address by_dns",
        defaults=((), (), "", "", "", "", False),
    )
):
    """What the parent learns about one linked child (``linkinit.Endpoint`` is the client
    library's, a different thing: one port of a link as an application reads it).

    alias; parent_name (the parent container's name, without the leading slash); ip; ports
    (Port sequence); env (the child's ``KEY=value`` entries); child_name; child_hostname;
    child_id (the container's full ID, which follow mode compares); address (what the
    variables carry in place of the IP, ``link.<alias>.address=name``: the alias; "" for the
    IP); by_dns (the shared network's DNS answers for that name with this child, so no
    ``/etc/hosts`` line should pin it to an address that a restart changes).
    """

    __slots__ = ()

    @property
    def prefix(self) -> str:
        return env_prefix(self.alias)


def port_runs(ports: Sequence[Port]) -> list[list[Port]]:
    """Split sorted ports into runs of consecutive numbers of one protocol."""
    runs: list[list[Port]] = []
    for port in ports:
        last = runs[-1][-1] if runs else None
        if last is not None and last.proto == port.proto and port.number == last.number + 1:
            runs[-1].append(port)
        else:
            runs.append([port])
    return runs


def link_variables(endpoint: ResolvedLink) -> list[tuple[str, str]]:
    """The variables of one link, in the order Docker wrote them."""
    prefix, ip = endpoint.prefix, exported_address(endpoint)
    ports = sorted(set(endpoint.ports), key=Port.sort_key)
    variables: list[tuple[str, str]] = []
    if ports:
        variables.append((f"{prefix}_PORT", f"{ports[0].proto}://{ip}:{ports[0].number}"))
    for run in port_runs(ports):
        for port in run:
            key = f"{prefix}_PORT_{port.number}_{port.proto.upper()}"
            variables += [
                (key, f"{port.proto}://{ip}:{port.number}"),
                (f"{key}_ADDR", ip),
                (f"{key}_PORT", str(port.number)),
                (f"{key}_PROTO", port.proto),
            ]
        if len(run) > 1:
            first, last = run[0], run[-1]
            key = f"{prefix}_PORT_{first.number}_{first.proto.upper()}"
            variables += [
                (f"{key}_START", f"{first.proto}://{ip}:{first.number}"),
                (f"{key}_PORT_START", str(first.number)),
                (f"{key}_END", f"{last.proto}://{ip}:{last.number}"),
                (f"{key}_PORT_END", str(last.number)),
            ]
    variables.append((f"{prefix}_NAME", f"/{endpoint.parent_name}/{endpoint.alias}"))
    variables += [(f"{prefix}_ENV_{name}", value) for name, value in child_variables(endpoint)]
    return variables


def exported_address(endpoint: ResolvedLink) -> str:
    """What ``_ADDR`` and the ``tcp://`` values carry: the IP, moby-exact, unless the link
    asked for its name (``address=name``)."""
    return endpoint.address or endpoint.ip


def child_variables(endpoint: ResolvedLink) -> list[tuple[str, str]]:
    """The child's variables a link passes on (``<ALIAS>_ENV_<key>``): HOME and PATH left out,
    an entry without ``=`` skipped."""
    pairs = []
    for entry in endpoint.env:
        name, has_value, value = entry.partition("=")
        if has_value and name not in _SKIPPED_CHILD_VARIABLES:
            pairs.append((name, value))
    return pairs


def link_environment(endpoints: Iterable[ResolvedLink]) -> dict[str, str]:
    """Every link's variables in one mapping, in the order Docker wrote them."""
    return {key: value for endpoint in endpoints for key, value in link_variables(endpoint)}


def build_environment(
    parent_env: Mapping[str, str], link_env: Mapping[str, str]
) -> dict[str, str]:
    """The command's environment: link variables under the parent's own, which win."""
    return {**link_env, **parent_env}
