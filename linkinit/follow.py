"""Follow mode's watcher: keep the links current after a child restarts or is recreated.

It runs as its own process beside COMMAND (PID 1 starts it, restarts it with backoff if it
dies, and never lets it take COMMAND down), so the supervisor stays small and a stuck
Engine never blocks a signal or a reap. It follows the Engine's events, and looks again
every ``resync`` seconds so that a missed event is repaired.

What it produces is data: for each declared child, the variables COMMAND would get now.
When they differ from what COMMAND was given (a new address, ports or environment, or the
reference now naming another container, as after a compose recreate), it rewrites
``/etc/hosts`` and the links file (``LINKS_FILE``, replaced atomically, which the client
library reads), then tells PID 1 with ``NOTIFY_SIGNAL`` so that the policy (signal, restart,
exit) is applied there. A child that stops is reported, and becomes a change only when it
comes back different.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import namedtuple

from . import container as model
from . import swarm
from .envvars import link_variables
from .errors import DeclarationError, EngineError, LinkinitError
from .health import record, state_path
from .hosts import write_hosts
from .readiness import READY, Observation, link_address
from .supervise import ENVIRON_FILE, LINKS_FILE, NOTIFY_SIGNAL, follow_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Optional, Sequence

    from .declare import LinkSpec
    from .engine import Engine
    from .envvars import ResolvedLink

CONFIG_FILE = "follow.json"  # what the resolver hands the watcher
RESYNC_SECONDS = 30.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
# While a followed swarm service has no task running: no event will say when one starts
# (swarm.py), so its tasks are asked for this often until it is back.
SERVICE_POLL_SECONDS = 1.0


class Seen(namedtuple("Seen", "container_id variables")):
    """One child as COMMAND knows it: the container's ID and its link variables (pairs)."""

    __slots__ = ()


def current(engine: Engine, parent: Mapping[str, Any],
            spec: LinkSpec) -> tuple[Optional[ResolvedLink], Optional[dict]]:
    """The child's link as it would be resolved now (None while it is absent or down), and
    the child's document (None while absent)."""
    from .resolve import find_child, resolved_link

    child = find_child(engine, spec, parent)
    if child is None or model.state_of(child) != "running":
        return None, child
    address = link_address(spec, parent, child)
    if not address:
        return None, child
    return resolved_link(spec, parent, Observation(READY, "running", "", child, address)), child


def seen_of(link: ResolvedLink, container_id: str) -> Seen:
    return Seen(container_id, tuple(link_variables(link)))


def compare(given: Mapping[str, Seen], now: Mapping[str, Optional[Seen]]) -> tuple[list, list]:
    """``(changed, down)`` aliases: up and different from what COMMAND has, or down. Pure."""
    changed = [alias for alias, seen in now.items()
               if seen is not None and seen != given.get(alias)]
    down = [alias for alias, seen in now.items() if seen is None]
    return changed, down


def encode_links(variables: Mapping[str, str]) -> bytes:
    return b"".join(f"{key}={value}".encode() + b"\0" for key, value in variables.items())


def write_links(path: str, variables: Mapping[str, str]) -> None:
    """Replace the links file atomically: a reader sees the old or the new, never half."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(encode_links(variables))
    os.replace(temporary, path)


class Follower:
    """Looks at the declared children and acts when one changed (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        parent: Mapping[str, Any],
        specs: Sequence[LinkSpec],
        given: Mapping[str, Seen],
        report: Callable[[str], None],
        changed: Callable[[list], None],
        links_path: str,
        hosts_path: str = "/etc/hosts",
        health_path: Optional[str] = None,
    ) -> None:
        self.engine = engine
        self.parent = parent
        self.specs = list(specs)
        self.given = dict(given)
        self.report = report
        self.changed = changed
        self.links_path = links_path
        self.hosts_path = hosts_path
        self.health_path = health_path  # linkinit health's state: the links COMMAND has now
        self.down: set[str] = set()
        self.services: set[str] = set()  # aliases whose child was last seen as a service
        self.links: dict[str, ResolvedLink] = {}

    def look(self) -> dict[str, Optional[Seen]]:
        now: dict[str, Optional[Seen]] = {}
        for spec in self.specs:
            link, child = current(self.engine, self.parent, spec)
            if child is not None:
                (self.services.add if swarm.is_service(child) else self.services.discard)(
                    spec.alias)
            if link is None or child is None:
                now[spec.alias] = None
                continue
            self.links[spec.alias] = link
            now[spec.alias] = seen_of(link, str(child.get("Id", "")))
        return now

    def awaiting_tasks(self) -> bool:
        """A service child is down: only asking again will show its tasks coming back."""
        return bool(self.down & self.services)

    def sync(self) -> list:
        """One look; report what went down or came back; apply a change. The aliases changed."""
        now = self.look()
        changed, down = compare(self.given, now)
        self._report_down(down)
        if not changed:
            return []
        for alias in changed:
            self.report(f"follow: {alias} ({self._spec(alias).child}) changed: now at "
                        f"{self.links[alias].ip}")
            self.given[alias] = now[alias]  # type: ignore[assignment]
        self._apply()
        self.changed(changed)
        return changed

    def _spec(self, alias: str) -> LinkSpec:
        return next(spec for spec in self.specs if spec.alias == alias)

    def _report_down(self, down: list) -> None:
        for alias in sorted(set(down) - self.down):
            self.report(f"follow: {alias} ({self._spec(alias).child}) is down; COMMAND keeps "
                        "its last address until it comes back")
        for alias in sorted(self.down - set(down)):
            self.report(f"follow: {alias} ({self._spec(alias).child}) is up again")
        self.down = set(down)

    def _apply(self) -> None:
        """The hosts file and the links file, from every link as COMMAND should now see it."""
        variables: dict[str, str] = {}
        for seen in self.given.values():
            variables.update(seen.variables)
        write_links(self.links_path, variables)
        current_links = [self.links[a] for a in self.given if a in self.links]
        write_hosts(current_links, self.hosts_path)
        if self.health_path:
            record(self.health_path, self.engine.host, self.specs, current_links,
                   self.engine.api_version)


def prepare(declared: Any, engine: Engine, parent: Mapping[str, Any],
            environ: Mapping[str, str], resolved: Sequence[ResolvedLink],
            quiet: bool) -> dict:
    """In the resolver, in follow mode: leave the watcher what it needs. Returns the policy
    and the state directory for PID 1."""
    state = follow_dir(environ)
    policy = declared.on_change
    given = {link.alias: [link.child_id, list(link_variables(link))] for link in resolved}
    config = {"host": engine.host, "parent": dict(parent), "quiet": quiet,
              "specs": [list(spec) for spec in declared.links], "given": given,
              "notify": 0 if policy == "hosts" else NOTIFY_SIGNAL,
              "watch": sorted({ref for link in resolved for ref in (link.child_id,
                                                                     link.child_name)}
                              | {spec.child for spec in declared.links})}
    try:
        os.makedirs(state, mode=0o700, exist_ok=True)
        write_links(os.path.join(state, LINKS_FILE),
                    {k: v for link in resolved for k, v in link_variables(link)})
        write_links(os.path.join(state, ENVIRON_FILE), environ)
        with open(os.path.join(state, CONFIG_FILE), "w") as file:
            json.dump(config, file)
    except OSError as error:
        raise DeclarationError(
            f"on-change={policy}: follow mode needs a writable {state} ({error.strerror}); "
            f"mount a tmpfs there (docker run --tmpfs {state}) or set LINKINIT_FOLLOW_DIR"
        ) from None
    return {"policy": policy, "dir": state}


def follow(follower: Follower, wake: Any, resync: float = RESYNC_SECONDS,
           clock: Callable[[], float] = time.monotonic, rounds: Optional[int] = None) -> None:
    """Sync, then again at each Engine event or every ``resync`` seconds (every
    ``SERVICE_POLL_SECONDS`` while a service child is down), for ever (or for ``rounds``, in
    tests). An Engine that fails is retried with backoff, and logged once."""
    failures = 0
    while rounds is None or rounds > 0:
        try:
            follower.sync()
            failures = 0
            pause = min(resync, SERVICE_POLL_SECONDS) if follower.awaiting_tasks() else resync
        except EngineError as error:
            if failures == 0:
                follower.report(f"follow: the Engine did not answer ({error}); retrying")
            pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
        if rounds is not None:
            rounds -= 1
        wake.wait(pause)


def main() -> int:
    """``python -m linkinit.follow``: read what the resolver handed over, then follow."""
    from .declare import LinkSpec
    from .engine import Engine
    from .waiter import EventWatcher

    state = follow_dir(os.environ)
    try:
        with open(os.path.join(state, CONFIG_FILE)) as file:
            config = json.load(file)
    except (OSError, ValueError) as error:
        print(f"linkinit: follow: cannot read {state}/{CONFIG_FILE}: {error}", file=sys.stderr)
        return 70
    engine = Engine(config["host"])
    parent_pid = os.getppid()

    def report(line: str) -> None:
        if not config.get("quiet"):
            print(f"linkinit: {line}", file=sys.stderr, flush=True)

    def changed(aliases: list) -> None:
        if config.get("notify"):
            os.kill(parent_pid, int(config["notify"]))

    specs = [LinkSpec(*fields) for fields in config["specs"]]
    given = {alias: Seen(cid, tuple(map(tuple, variables)))
             for alias, (cid, variables) in config["given"].items()}
    follower = Follower(engine, config["parent"], specs, given, report, changed,
                        os.path.join(state, LINKS_FILE), config.get("hosts", "/etc/hosts"),
                        state_path(os.environ))
    try:
        wake = EventWatcher(engine, time.time(), config.get("watch", ()))
        follow(follower, wake, config.get("resync", RESYNC_SECONDS))
    except LinkinitError as error:
        report(f"follow: {error}")
        return error.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
