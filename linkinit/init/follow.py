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

from linkinit.errors import DeclarationError, EngineError, LinkinitError
from linkinit.init.health import record, state_path
from linkinit.init.hosts import write_hosts
from linkinit.init.readiness import READY, Observation, answerer, check_answer, link_address
from linkinit.init.secretfiles import (
    SECRETS_DIR,
    as_file_variables,
    given_variables,
    secret_values,
    secrets_dir,
)
from linkinit.init.supervise import ENVIRON_FILE, LINKS_FILE, NOTIFY_SIGNAL, follow_dir
from linkinit.model import container as model
from linkinit.model import swarm

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Optional, Sequence

    from linkinit.engine.client import Engine
    from linkinit.model.declare import LinkSpec
    from linkinit.model.envvars import ResolvedLink

CONFIG_FILE = "follow.json"  # what the resolver hands the watcher
RESYNC_SECONDS = 30.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
# While a followed swarm service has no task running: no event will say when one starts
# (swarm.py), so its tasks are asked for this often until it is back.
SERVICE_POLL_SECONDS = 1.0
# While a running child does not pass its protocol probe (or exec:), it is down for follow
# mode (COMMAND keeps its last address), and is looked at this often: no event will say
# when a server starts answering.
PROBE_POLL_SECONDS = 0.2
# Wait modes whose probe follow mode repeats: the protocol probes and exec: (the port probe
# of ``listening`` is left to COMMAND's own reconnects, as before probes).
UNPROBED = ("started", "healthy", "listening", "none")


class Seen(namedtuple("Seen", "container_id variables ip", defaults=("",))):
    """One child as COMMAND knows it: the container's ID, its link variables (pairs) and,
    where they carry a name instead (``address=name``), its IP ("" otherwise), so that a
    move still rewrites ``/etc/hosts`` and the templates."""

    __slots__ = ()


def current(engine: Engine, parent: Mapping[str, Any],
            spec: LinkSpec) -> tuple[Optional[ResolvedLink], Optional[dict]]:
    """The child's link as it would be resolved now (None while it is absent or down), and
    the child's document (None while absent)."""
    from linkinit.init.resolve import find_child, resolved_link

    child = find_child(engine, spec, parent)
    if child is None or model.state_of(child) != "running":
        return None, child
    address = link_address(spec, parent, child)
    if not address:
        return None, child
    return resolved_link(spec, parent, Observation(READY, "running", "", child, address)), child


def seen_of(link: ResolvedLink, container_id: str, secrets: bool = False) -> Seen:
    """``secrets``: the link hands its child's variables over as files; what COMMAND was
    given is then compared by the values' fingerprints (``secretfiles``), never kept."""
    return Seen(container_id, tuple(given_variables(link, secrets)),
                link.ip if link.address else "")


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
        outputs: Optional[Outputs] = None,
        secrets_dir: str = SECRETS_DIR,
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
        self.secrets_dir = secrets_dir
        self.health_path = health_path  # linkinit health's state: the links COMMAND has now
        self.down: set[str] = set()
        self.services: set[str] = set()  # aliases whose child was last seen as a service
        self.not_serving: dict[str, str] = {}  # alias -> what its running child answered
        self.said_down: dict[str, Optional[str]] = {}  # what the down report last quoted
        self.ask = answerer(parent)
        self.links: dict[str, ResolvedLink] = {}
        self.outputs = outputs or Outputs()

    def look(self) -> dict[str, Optional[Seen]]:
        now: dict[str, Optional[Seen]] = {}
        for spec in self.specs:
            link, child = current(self.engine, self.parent, spec)
            if child is not None:
                (self.services.add if swarm.is_service(child) else self.services.discard)(
                    spec.alias)
            if link is not None and child is not None and not self._serves(spec, link, child):
                link = None
            if link is None or child is None:
                now[spec.alias] = None
                continue
            self.links[spec.alias] = link
            now[spec.alias] = seen_of(link, str(child.get("Id", "")), bool(spec.secrets))
        return now

    def _serves(self, spec: LinkSpec, link: ResolvedLink, child: dict) -> bool:
        """Whether a running child passes the probe its wait mode names (always, for the
        modes without one); what it answered is kept for the report."""
        self.not_serving.pop(spec.alias, None)
        if spec.wait in UNPROBED:
            return True
        seen = check_answer(Observation(READY, "running", "", child, link.ip), spec, self.ask)
        if not seen.ready:
            self.not_serving[spec.alias] = seen.state
        return seen.ready

    def probing(self) -> bool:
        """A child runs but does not answer its probe yet: only looking again shows when."""
        return bool(self.down & set(self.not_serving))

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
        if self._apply(changed) is not False:
            self.changed(changed)
        return changed

    def _write_secrets(self, changed: Sequence[str], variables: Mapping[str, str]) -> None:
        """Each changed ``secrets=files`` link's files, replaced atomically; files of
        variables no link has any more removed."""
        secret = [alias for alias in changed if self._spec(alias).secrets]
        if not secret:
            return
        from linkinit.init.secretfiles import MARK, write_files

        values: dict[str, str] = {}
        for alias in secret:
            values.update(secret_values(self.links[alias]))
        write_files(self.secrets_dir, values,
                    [name for name, value in variables.items() if value.startswith(MARK)])

    def _spec(self, alias: str) -> LinkSpec:
        return next(spec for spec in self.specs if spec.alias == alias)

    def _report_down(self, down: list) -> None:
        for alias in sorted(set(down) - self.down):
            said = f" ({self.not_serving[alias]})" if alias in self.not_serving else ""
            self.report(f"follow: {alias} ({self._spec(alias).child}) is down{said}; COMMAND "
                        "keeps its last address until it comes back")
        for alias in sorted(set(down) & self.down):
            answer = self.not_serving.get(alias)
            if answer and answer != self.said_down.get(alias):
                self.report(f"follow: {alias} ({self._spec(alias).child}) runs but does not "
                            f"answer yet ({answer})")
        for alias in sorted(self.down - set(down)):
            self.report(f"follow: {alias} ({self._spec(alias).child}) is up again")
        self.down = set(down)
        self.said_down = {alias: self.not_serving.get(alias) for alias in down}

    def _apply(self, changed: Sequence[str]) -> Optional[bool]:
        """The secrets' files of the changed links, then the hosts file, the links file (with
        the derived variables) and the templates, from every link as COMMAND should now see
        it. False: skip the policy (a template's check failed, or templates are declared and
        none changed)."""
        given: dict[str, str] = {}
        for seen in self.given.values():
            given.update(seen.variables)
        self._write_secrets(changed, given)
        variables = dict(as_file_variables(list(given.items()), self.secrets_dir))
        variables.update(self.outputs.derive(variables, self.report))
        write_links(self.links_path, variables)
        current_links = [self.links[a] for a in self.given if a in self.links]
        write_hosts(current_links, self.hosts_path)
        if self.health_path:
            record(self.health_path, self.engine.host, self.specs, current_links,
                   self.engine.api_version)
        return self.outputs.render(variables, current_links, self.report)


class Outputs:
    """What follow mode computes from the links beyond their variables: the derived
    variables (``derived.py``) and the templates (``templates.py``), with the container's
    own variables (``own``) that both read."""

    def __init__(self, derived: Sequence[Any] = (), templates: Sequence[Any] = (),
                 own: Optional[Mapping[str, str]] = None,
                 last: Optional[Mapping[str, str]] = None) -> None:
        self.derived = list(derived)
        self.templates = list(templates)
        self.own = dict(own or {})
        self.last = dict(last or {})  # the derived values COMMAND was last given

    def derive(self, link_env: Mapping[str, str], report: Callable[[str], None]) -> dict:
        """The derived variables again; a value that no longer expands (a child lost the
        variable it names) keeps its last value, reported."""
        if not self.derived:
            return {}
        from linkinit.model.derived import derive

        values = dict(self.last)
        for spec in self.derived:
            try:
                values.update(derive([spec], link_env, self.own))
            except LinkinitError as error:
                report(f"follow: {error}; {spec.name} keeps its last value")
        self.last = values
        return values

    def render(self, variables: Mapping[str, str], links: Sequence[ResolvedLink],
               report: Callable[[str], None]) -> Optional[bool]:
        """Render the templates again (None when none are declared); see
        ``templates.rewrite``."""
        if not self.templates:
            return None
        from linkinit.init.templates import rewrite

        return rewrite(self.templates, {**variables, **self.own}, links, report) is True


def prepare(declared: Any, engine: Engine, parent: Mapping[str, Any],
            environ: Mapping[str, str], resolved: Sequence[ResolvedLink],
            quiet: bool, derived: Optional[Mapping[str, str]] = None) -> dict:
    """In the resolver, in follow mode: leave the watcher what it needs (``derived``: the
    derived variables' values COMMAND gets). Returns the policy and the state directory for
    PID 1."""
    state = follow_dir(environ)
    policy = declared.on_change
    derived = dict(derived or {})
    config = _config(declared, engine, parent, resolved, quiet, derived)
    config["secrets_dir"] = secrets_dir(environ)
    try:
        os.makedirs(state, mode=0o700, exist_ok=True)
        write_links(os.path.join(state, LINKS_FILE), {**dict(as_file_variables(
            [pair for _, variables, *_ in config["given"].values() for pair in variables],
            config["secrets_dir"])), **derived})
        write_links(os.path.join(state, ENVIRON_FILE), environ)
        with open(os.path.join(state, CONFIG_FILE), "w") as file:
            json.dump(config, file)
    except OSError as error:
        raise DeclarationError(
            f"on-change={policy}: follow mode needs a writable {state} ({error.strerror}); "
            f"mount a tmpfs there (docker run --tmpfs {state}) or set LINKINIT_FOLLOW_DIR"
        ) from None
    return {"policy": policy, "dir": state}


def _config(declared: Any, engine: Engine, parent: Mapping[str, Any],
            resolved: Sequence[ResolvedLink], quiet: bool, derived: Mapping[str, str]) -> dict:
    """``follow.json``: what the watcher starts from."""
    secret = {spec.alias for spec in declared.links if spec.secrets}
    given = {link.alias: list(seen_of(link, link.child_id, link.alias in secret))
             for link in resolved}
    return {"host": engine.host, "parent": dict(parent), "quiet": quiet,
            "specs": [list(spec) for spec in declared.links], "given": given,
            "derived": [list(spec) for spec in declared.env],
            "templates": [list(spec) for spec in declared.templates],
            "derived_values": dict(derived),
            "notify": 0 if declared.on_change == "hosts" else NOTIFY_SIGNAL,
            "watch": sorted({ref for link in resolved for ref in (link.child_id,
                                                                   link.child_name)}
                            | {spec.child for spec in declared.links})}


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
            pause = min(pause, PROBE_POLL_SECONDS) if follower.probing() else pause
        except EngineError as error:
            if failures == 0:
                follower.report(f"follow: the Engine did not answer ({error}); retrying")
            pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
        if rounds is not None:
            rounds -= 1
        wake.wait(pause)


def main() -> int:
    """``python -m linkinit.init.follow``: read what the resolver handed over, then follow."""
    from linkinit.engine.client import Engine
    from linkinit.init.waiter import EventWatcher
    from linkinit.model.declare import LinkSpec

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
    given = {alias: Seen(cid, tuple(map(tuple, variables)), *rest)
             for alias, (cid, variables, *rest) in config["given"].items()}
    follower = Follower(engine, config["parent"], specs, given, report, changed,
                        os.path.join(state, LINKS_FILE), config.get("hosts", "/etc/hosts"),
                        _outputs(config, state), config.get("secrets_dir", SECRETS_DIR),
                        state_path(os.environ))
    try:
        wake = EventWatcher(engine, time.time(), config.get("watch", ()))
        follow(follower, wake, config.get("resync", RESYNC_SECONDS))
    except LinkinitError as error:
        report(f"follow: {error}")
        return error.exit_status
    return 0


def _outputs(config: Mapping[str, Any], state: str) -> Outputs:
    """The derived variables and templates the resolver handed over, and the container's
    own variables they read (``ENVIRON_FILE``)."""
    from linkinit.init.supervise import read_environ
    from linkinit.model.derived import DerivedSpec
    from linkinit.model.templates import TemplateSpec

    derived = [DerivedSpec(*fields) for fields in config.get("derived", ())]
    templates = [TemplateSpec(*fields) for fields in config.get("templates", ())]
    own = read_environ(os.path.join(state, ENVIRON_FILE)) if derived or templates else {}
    return Outputs(derived, templates, own, config.get("derived_values"))


if __name__ == "__main__":
    sys.exit(main())
