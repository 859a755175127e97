"""``linkinit health``: a HEALTHCHECK that holds while the parent's links hold.

Docker runs it inside the parent (``HEALTHCHECK CMD ["linkinit", "health"]``), every few
seconds, so it must be quick and light: it reads what the running linkinit recorded when it
started COMMAND (``STATE_FILE``: each link's child ID, wait mode, and the address and port
COMMAND was given; follow mode's watcher rewrites it with the current ones), asks the
Engine one question for all children (one list request filtered by their IDs), probes
each ``listening`` port with a short timeout, and runs the application's own ``--probe``.
Exit 0 when every non-optional link holds, else 1 with one line per failing link on stdout
(Docker keeps it in ``.State.Health.Log``).
"""

from __future__ import annotations

import os
import sys
import time

from linkinit import fastjson  # every start records the state: json would import re (~4 ms)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Mapping, Optional, Sequence

    from linkinit.model.declare import LinkSpec
    from linkinit.model.envvars import ResolvedLink

STATE_FILE = "/run/linkinit-health.json"
CHECK_TIMEOUT = 0.5  # seconds for one port probe, and for the Engine's one answer
UNHEALTHY = 1  # what Docker reads as unhealthy (2 is reserved)
_HEALTH_WORDS = (("(unhealthy)", "unhealthy"), ("(health: starting)", "starting"),
                 ("(healthy)", "healthy"))


def state_path(environ: Mapping[str, str]) -> str:
    return environ.get("LINKINIT_HEALTH_FILE") or STATE_FILE


def record(path: str, engine_host: str, specs: Sequence[LinkSpec],
           links: Sequence[ResolvedLink], api: Optional[tuple[int, int]] = None) -> None:
    """What ``linkinit health`` checks, as COMMAND was given it, and the API version the
    Engine speaks (so the check asks no ``/_ping``); replaced atomically. A /run that cannot
    be written is no error at start: ``linkinit health`` then says so."""
    from linkinit.model.container import Port

    waits = {spec.alias: (spec.wait, spec.optional) for spec in specs}
    entries = []
    for link in links:
        tcp = sorted((p for p in link.ports if p.proto == "tcp"), key=Port.sort_key)
        wait, optional = waits.get(link.alias, ("started", False))
        entries.append({"alias": link.alias, "child": link.child_name, "id": link.child_id,
                        "wait": wait, "optional": optional, "ip": link.ip,
                        "port": tcp[0].number if tcp else None,
                        "service": not _is_container_id(link.child_id)})
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w") as file:
            file.write(fastjson.dumps({"engine": engine_host,
                                       "api": list(api) if api else None, "links": entries}))
        os.replace(temporary, path)
    except OSError:
        try:  # noqa: SIM105 (contextlib is one more import on the start path)
            os.unlink(temporary)
        except OSError:
            pass


def _is_container_id(identifier: str) -> bool:
    """Containers (Docker's and Podman's) have 64 hex digits; a swarm service's ID is 25
    characters. A service is no container the list shows: it is checked at its address."""
    return len(identifier) == 64 and all(c in "0123456789abcdef" for c in identifier)


def forget(path: str) -> None:
    """At start: a state an earlier run of this container left (``docker restart`` keeps
    /run) must not answer for this one while it still waits for its children."""
    try:  # noqa: SIM105 (contextlib is one more import on the start path)
        os.unlink(path)
    except OSError:
        pass


def child_states(summaries: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """{container ID: (state, health)} from the list API's summaries. Pure.

    health is ``healthy``, ``unhealthy``, ``starting`` or ``""`` (no healthcheck): the
    ``Health`` field where the Engine gives one (API 1.52), else the words Docker appends to
    ``Status`` (``Up 3 minutes (healthy)``).
    """
    states = {}
    for summary in summaries:
        health = str((summary.get("Health") or {}).get("Status") or "")
        status = str(summary.get("Status") or "")
        if not health:
            health = next((word for mark, word in _HEALTH_WORDS if mark in status), "")
        states[str(summary.get("Id", ""))] = (str(summary.get("State") or ""), health)
    return states


def failures(links: Sequence[Mapping[str, Any]], states: Mapping[str, tuple[str, str]],
             probe: Any) -> list[str]:
    """One line per non-optional link that does not hold at the values COMMAND has. Pure
    but for ``probe(ip, port) -> bool``, which the caller passes in."""
    lines = []
    for link in links:
        if link.get("optional") or link.get("wait") == "none":
            continue
        state = ("running", "") if link.get("service") else states.get(str(link.get("id")))
        why = _failure(link, state, probe)
        if why:
            lines.append(f"{link['alias']} ({link.get('child') or link.get('id')}): {why}")
    return lines


def _failure(link: Mapping[str, Any], state: Optional[tuple[str, str]], probe: Any) -> str:
    """Why one link does not hold, or "" when it does."""
    if state is None:
        return "the container COMMAND was given is gone"
    running, health = state
    if running != "running":
        return f"not running ({running or 'unknown'})"
    if link.get("wait") == "started":
        return ""
    if health and health != "healthy":
        return f"its healthcheck says {health}"
    port = link.get("port")
    if link.get("wait") == "listening" and port and not probe(link["ip"], port):
        return f"{link['ip']}:{port} refuses connections"
    return ""


def check(state: Mapping[str, Any], deadline: float) -> list[str]:
    """The failing lines: one Engine request for every child, then the port probes."""
    from linkinit.engine.client import Engine
    from linkinit.errors import EngineError

    links = [link for link in state.get("links", []) if link.get("id")]
    asked = sorted({link["id"] for link in links if not link.get("service")})
    if not asked:
        return failures(links, {}, _probe(deadline))
    engine = Engine(state["engine"], timeout=CHECK_TIMEOUT)
    engine.deadline = deadline
    if state.get("api"):  # the version the start negotiated: no /_ping, one request in all
        engine.api_version = (int(state["api"][0]), int(state["api"][1]))
    try:
        summaries = engine.list_containers({"id": asked})
    except EngineError as error:
        return [f"the Engine did not answer: {error}"]
    return failures(links, child_states(summaries), _probe(deadline))


def _probe(deadline: float) -> Any:
    """A port probe whose timeout is CHECK_TIMEOUT, or what is left before ``deadline``."""
    from linkinit.init.readiness import port_open

    def probe(ip: str, port: int) -> bool:
        return port_open(ip, port, max(min(CHECK_TIMEOUT, deadline - time.monotonic()), 0.05))

    return probe


def run_probe(command: str) -> list[str]:
    """``--probe CMD``: the application's own check, split as a shell would (no shell: a
    distroless image has none); a failing line when it fails."""
    import shlex
    import subprocess

    argv = shlex.split(command)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False)
    except OSError as error:
        return [f"probe {argv[0]}: cannot run it: {error.strerror or error}"]
    return [] if done.returncode == 0 else [f"probe {command}: exited {done.returncode}"]


def main(argv: list[str], environ: Mapping[str, str], stdout: IO[str], stderr: IO[str]) -> int:
    """``linkinit health [--probe CMD]``: 0 when healthy, else 1 and the failing lines."""
    from linkinit.errors import UsageError
    from linkinit.usage import UsageParser

    parser = UsageParser(prog="linkinit health",
                         description="Exit 0 while every link COMMAND was given still holds "
                                     "(for HEALTHCHECK), else 1 with one line per failing link.")
    parser.add_argument("--probe", metavar="CMD",
                        help="also run the application's own check; it must exit 0")
    try:
        options = parser.parse_args(argv)
    except UsageError as error:
        stderr.write(f"linkinit: {error}\n")
        return error.exit_status
    started = time.monotonic()
    path = state_path(environ)
    try:
        with open(path) as file:
            state = fastjson.loads(file.read())
    except (OSError, ValueError) as error:
        stdout.write(f"linkinit: no state at {path} ({getattr(error, 'strerror', error)}): "
                     "COMMAND has not started yet, or /run is not writable "
                     "(docker run --tmpfs /run)\n")
        return UNHEALTHY
    lines = check(state, started + 2 * CHECK_TIMEOUT)
    if options.probe:
        lines += run_probe(options.probe)
    for line in lines:
        stdout.write(f"linkinit: unhealthy: {line}\n")
    if not lines:
        aliases = ", ".join(link["alias"] for link in state.get("links", [])) or "no links"
        stdout.write(f"linkinit: healthy ({aliases})\n")
    stdout.flush()
    return UNHEALTHY if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ, sys.stdout, sys.stderr))
