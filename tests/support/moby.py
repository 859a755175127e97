"""The one oracle for Docker's link variables: moby's ``Link.ToEnv`` (daemon/links), restated
independently of linkinit's exporter, as a walk with a pending range. The exporter's tests
compare linkinit with it; the client library's tests read what it writes."""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple


def moby_order(port: Tuple[int, str]) -> Tuple[int, str, int]:
    number, proto = port
    return (0 if proto == "tcp" else 1, proto if proto != "tcp" else "", number)


def moby_to_env(
    name: str, ip: str, ports: Iterable[Tuple[int, str]], env: Optional[Sequence[str]]
) -> List[Tuple[str, str]]:
    """moby's Link.ToEnv: ``name`` is ``/<parent>/<alias>``; returns (name, value) in its order.

    The walk keeps a pending range (its first and last port). A port that extends the range
    moves its end, unless it is the very last port; any other port closes the pending range
    (writing the range variables if it spans two or more ports) and starts a new one.
    """
    short = name.rsplit("/", 1)[-1]
    alias = short.upper().replace("-", "_")
    walk = sorted(set(ports), key=moby_order)
    out: List[Tuple[str, str]] = []
    start: Optional[Tuple[int, str]] = None
    end: Optional[Tuple[int, str]] = None
    for index, (number, proto) in enumerate(walk):
        if index == 0:
            start = end = (number, proto)
            out.append((f"{alias}_PORT", f"{proto}://{ip}:{number}"))
        head = f"{alias}_PORT_{number}_{proto.upper()}"
        out.append((head, f"{proto}://{ip}:{number}"))
        out.append((head + "_ADDR", ip))
        out.append((head + "_PORT", str(number)))
        out.append((head + "_PROTO", proto))
        assert start is not None and end is not None
        if number == end[0] + 1 and proto == end[1]:
            end = (number, proto)
            if index < len(walk) - 1:
                continue
        if end != start:
            head = f"{alias}_PORT_{start[0]}_{start[1].upper()}"
            out.append((head + "_START", f"{start[1]}://{ip}:{start[0]}"))
            out.append((head + "_PORT_START", str(start[0])))
            out.append((head + "_END", f"{end[1]}://{ip}:{end[0]}"))
            out.append((head + "_PORT_END", str(end[0])))
        start = end = (number, proto)
    out.append((f"{alias}_NAME", name))
    for entry in env or ():
        if "=" not in entry:
            continue
        key = entry[: entry.index("=")]
        if key in ("HOME", "PATH"):
            continue
        out.append((f"{alias}_ENV_{key}", entry[entry.index("=") + 1 :]))
    return out


def docker_link_env(
    parent: str,
    alias: str,
    ip: str,
    ports: Iterable[Tuple[int, str]],
    child_env: Dict[str, str],
) -> Dict[str, str]:
    """The same, as a mapping: what a parent ``parent`` linking ``alias`` is given."""
    env = [f"{key}={value}" for key, value in child_env.items()]
    return dict(moby_to_env(f"/{parent}/{alias}", ip, ports, env))
