"""``linkinit guard``: link-only traffic between containers, enforced on the host.

Docker's legacy links meant "a container reaches another only through a link, and only the
ports the child exposes"; the Engine enforced that only on its default bridge with
``--icc=false``. The guard enforces it for the bridge networks it is told to protect, with
iptables rules in a chain of its own (``LINKINIT-GUARD``) jumped to from Docker's
``DOCKER-USER`` chain, so that reconciling and uninstalling never touch anyone else's rules.

For each protected network (bridge interface ``br``) the chain holds, in this order:

1. ``-i br -o br -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN``: replies;
2. ``-s PARENT -d CHILD -i br -o br -p tcp --dport PORT -j RETURN``: one rule per running
   parent, link and port the child exposes;
3. ``-i br -o br -j DROP``: every other packet from one container to another on that network.

``RETURN`` hands the packet back to Docker's own rules, so the guard only ever takes away.

The work is split as everywhere in linkinit: ``plan`` is pure (inspect documents in, rules
out) and unit-tested; ``changes`` is the pure diff between the chain and the plan; the
``Iptables`` class runs the commands; ``watch`` follows the Engine's events and reconciles.
"""

from __future__ import annotations

import argparse
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from linkinit.engine.client import Engine
from linkinit.errors import EX_UNAVAILABLE, EX_USAGE, EngineError, UsageError
from linkinit.host.guard_plan import (
    CHAIN,
    Rule,
    bridge_interface,
    changes,
    parse_rules,
    plan,
)
from linkinit.usage import UsageParser

EX_NOPERM = 77  # not root: only root may change the firewall (BSD sysexits EX_NOPERM)
DOCKER_USER = "DOCKER-USER"
DEFAULT_NETWORKS = ("bridge",)
LOCK_WAIT = "5"  # seconds iptables waits for the xtables lock (dockerd holds it at times)
IPTABLES_TIMEOUT = 30.0  # seconds one iptables command may take
RESYNC_SECONDS = 60.0  # reconcile this often even without events: heals a flushed chain
RETRY_SECONDS = 5.0  # after a failed reconcile, try again this soon
RECONNECT_MAX = 30.0  # longest pause between attempts to reach a lost Engine
DEBOUNCE_SECONDS = 0.2  # events this close together are reconciled once
# Events that can change who runs, with which address, under which name, on which network.
CONTAINER_ACTIONS = frozenset({"start", "die", "destroy", "rename"})
NETWORK_ACTIONS = frozenset({"connect", "disconnect", "create", "destroy"})


class GuardError(Exception):
    """A failure the guard reports on one line, with the exit status it maps to."""

    def __init__(self, message: str, status: int = EX_UNAVAILABLE) -> None:
        super().__init__(message)
        self.exit_status = status


# -- iptables ---------------------------------------------------------------------------------


class Iptables:
    """The one place that runs iptables: bounded, with the xtables lock waited for."""

    def __init__(self, chain: str = CHAIN, binary: str = "iptables") -> None:
        self.chain = chain
        self.binary = binary

    def run(self, args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(
                [self.binary, "-w", LOCK_WAIT, *args], capture_output=True, text=True,
                timeout=IPTABLES_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            raise GuardError(f"guard: {self.binary} not found: install iptables "
                             "(Debian: apt-get install iptables)") from None
        except subprocess.TimeoutExpired:
            raise GuardError(f"guard: {self.binary} {' '.join(args)} took more than "
                             f"{IPTABLES_TIMEOUT:.0f} s: is another program holding the "
                             "xtables lock?") from None
        if check and done.returncode != 0:
            raise GuardError(f"guard: {shlex.join([self.binary, *args])} failed: "
                             f"{_last_error(done.stderr)}")
        return done

    def rules(self, chain: str) -> Optional[List[Tuple[str, ...]]]:
        """The chain's rules, or None when there is no such chain."""
        done = self.run(["-S", chain], check=False)
        if done.returncode != 0:
            return None
        return parse_rules(done.stdout, chain)

    def require_docker_chain(self) -> None:
        if self.rules(DOCKER_USER) is None:
            raise GuardError(
                f"guard: Docker's {DOCKER_USER} chain is absent from the filter table: start "
                "dockerd with iptables enabled (not --iptables=false), and check that "
                f"`{self.binary} --version` names the backend dockerd uses (legacy or nf_tables)"
            )

    def apply(self, desired: Sequence[Rule], log: Callable[[str], None]) -> int:
        """Make the chain hold exactly ``desired`` and be jumped to once; the changes made."""
        current = self.rules(self.chain)
        made = 0
        if current is None:
            self._do(["-N", self.chain], log)
            current, made = [], 1
        for command in changes(current, desired, self.chain):
            self._do(command, log)
            made += 1
        return made + self._ensure_jump(log)

    def _ensure_jump(self, log: Callable[[str], None]) -> int:
        jump = ("-j", self.chain)
        current = self.rules(DOCKER_USER)
        if current is None:
            self.require_docker_chain()
            return 0
        count = current.count(jump)
        if count == 0:
            self._do(["-I", DOCKER_USER, "1", *jump], log)
        for _ in range(count - 1):
            self._do(["-D", DOCKER_USER, *jump], log)
        return abs(count - 1)

    def uninstall(self, log: Callable[[str], None]) -> int:
        """Remove the jump(s) and the chain; the number of changes (0: nothing was there)."""
        made = 0
        for rule in self.rules(DOCKER_USER) or []:
            if rule == ("-j", self.chain):
                self._do(["-D", DOCKER_USER, "-j", self.chain], log)
                made += 1
        if self.rules(self.chain) is not None:
            self._do(["-F", self.chain], log)
            self._do(["-X", self.chain], log)
            made += 1
        return made

    def _do(self, args: List[str], log: Callable[[str], None]) -> None:
        log(shlex.join(["iptables", *args]))
        self.run(args)


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line and not line.startswith("#")]
    return lines[-1] if lines else "no message"


# -- the Engine -------------------------------------------------------------------------------


def connect() -> Engine:
    engine = Engine.from_environ(os.environ)
    try:
        engine.ping()
    except EngineError as error:
        raise GuardError(f"guard: {error}: is dockerd running, and is DOCKER_HOST right?"
                         ) from None
    return engine


def fetch_networks(engine: Engine, names: Sequence[str]) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Inspect documents of the protected networks that exist, and the names that do not."""
    found, missing = [], []
    for name in names:
        network = engine.inspect_network(name)
        if network is None:
            missing.append(name)
        else:
            found.append(network)
    return found, missing


def fetch_state(
    engine: Engine, names: Sequence[str]
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[str]]:
    """Everything ``plan`` needs, in one go: containers, protected networks, missing names."""
    networks, missing = fetch_networks(engine, names)
    return engine.inspect_all(), networks, missing


# -- the command ------------------------------------------------------------------------------



def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="linkinit guard",
        description="On the host, as root: drop traffic between containers on the protected "
        "networks unless it goes from a parent to a child it links to (labels "
        "link.<alias>=<child>), on a port the child exposes; replies pass. Follows the "
        "Engine's events until stopped (SIGTERM); the rules stay until --uninstall. "
        "Exit status: 64 bad usage, 69 Engine or iptables unavailable, 77 not root.",
    )
    parser.add_argument("--network", action="append", metavar="NAME",
                        help="a bridge network to protect (repeatable; default: bridge, "
                             "Docker's default bridge)")
    parser.add_argument("--chain", default=CHAIN, metavar="NAME",
                        help=f"the guard's own iptables chain (default {CHAIN}); one per guard")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true",
                      help="print the rules as iptables command lines and change nothing")
    mode.add_argument("--uninstall", action="store_true",
                      help="remove the chain and its jump from DOCKER-USER, then exit")
    return parser


def main(argv: Sequence[str], stdout: IO[str], stderr: IO[str]) -> int:
    """``linkinit guard``: parse, check the host, then dry-run, uninstall or watch."""

    def say(line: str) -> None:
        print(f"linkinit: {line}", file=stderr, flush=True)

    parser = build_parser()
    if "-h" in argv or "--help" in argv:
        stdout.write(parser.format_help())
        return 0
    try:
        options = parser.parse_args(list(argv))
        check_chain_name(options.chain)
        names = list(dict.fromkeys(options.network or DEFAULT_NETWORKS))
        if options.dry_run:
            return dry_run(names, options.chain, stdout, say)
        iptables = check_host(options.chain)
        if options.uninstall:
            if iptables.uninstall(lambda line: say(f"guard: {line}")) == 0:
                say(f"guard: nothing to remove: no {options.chain} chain is installed")
            return 0
        return watch(names, iptables, say)
    except UsageError as error:
        say(str(error))
        return EX_USAGE
    except GuardError as error:
        say(str(error))
        return error.exit_status


def check_chain_name(chain: str) -> None:
    if not (0 < len(chain) <= 28) or not all(c.isalnum() or c in "-_" for c in chain):
        raise UsageError(f"guard: --chain {chain!r}: use up to 28 letters, digits, '-' or '_'")
    if chain.upper() in {DOCKER_USER, "DOCKER", "FORWARD", "INPUT", "OUTPUT"}:
        raise UsageError(f"guard: --chain {chain}: that chain is not the guard's to own")


def check_host(chain: str) -> Iptables:
    """Root, an iptables binary, Docker's chain: each missing one is its own clear error."""
    if os.geteuid() != 0:
        raise GuardError("guard: must run as root (it changes the host's iptables rules): "
                         "use sudo, or run it as a root systemd service", EX_NOPERM)
    binary = shutil.which("iptables")
    if binary is None:
        raise GuardError("guard: iptables not found on PATH: install iptables "
                         "(Debian: apt-get install iptables)")
    iptables = Iptables(chain, binary)
    iptables.require_docker_chain()
    return iptables


def check_networks(networks: Iterable[Mapping[str, Any]]) -> None:
    for network in networks:
        if bridge_interface(network) is None:
            raise UsageError(f"guard: --network {network.get('Name')} has driver "
                             f"{network.get('Driver')}: only bridge networks pass through the "
                             "host's iptables; protect a bridge network")


def dry_run(names: Sequence[str], chain: str, stdout: IO[str], say: Callable[[str], None]) -> int:
    """Print the commands that would build the chain from scratch; change nothing."""
    try:
        containers, networks, missing = fetch_state(connect(), names)
    except EngineError as error:
        raise GuardError(f"guard: {error}") from None
    check_networks(networks)
    for name in missing:
        say(f"guard: network {name} does not exist (yet): nothing to guard there")
    rules = plan(containers, networks, lambda line: say(f"guard: {line}"))
    lines = [shlex.join(["iptables", "-N", chain])]
    lines += [rule.command(chain) for rule in rules]
    lines.append(shlex.join(["iptables", "-I", DOCKER_USER, "1", "-j", chain]))
    stdout.write("".join(f"{line}\n" for line in lines))
    stdout.flush()
    return 0


class _Stop(Exception):
    """SIGTERM or SIGINT: stop watching."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stop(signal.Signals(signum).name)


_LOST = object()  # the event stream ended: the Engine went away


class _Events:
    """The Engine's event stream, read by a thread into a queue the main loop waits on.

    The main thread never blocks in a socket read, so SIGTERM stops it at once and every
    wait stays bounded.
    """

    def __init__(self, engine: Engine) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.stream = engine.event_stream({"type": ["container", "network"]})
        threading.Thread(target=self._read, name="linkinit-guard-events", daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self.stream:
                if relevant(event):
                    self.queue.put(event)
        except EngineError:  # the stream breaks when dockerd stops or the socket closes
            pass
        self.queue.put(_LOST)

    def close(self) -> None:
        self.stream.close()


def relevant(event: Mapping[str, Any]) -> bool:
    """Whether an Engine event can change the plan (who runs where, under which name)."""
    action = str(event.get("Action") or event.get("status") or "")
    kind = event.get("Type")
    return (kind == "container" and action in CONTAINER_ACTIONS) or (
        kind == "network" and action in NETWORK_ACTIONS
    )


def watch(names: Sequence[str], iptables: Iptables, say: Callable[[str], None]) -> int:
    """Reconcile now, then on every relevant event (and every minute) until SIGTERM."""
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    warned: set = set()

    def warn(line: str) -> None:
        if line not in warned:
            warned.add(line)
            say(f"guard: {line}")

    events = None
    try:
        engine = connect()
        networks, _ = _guarded(lambda: fetch_networks(engine, names))
        check_networks(networks)
        events = _guarded(lambda: _Events(engine))  # subscribe first: no event is lost
        reconcile(engine, names, iptables, say, warn)
        say(f"guard: guarding {', '.join(names)} with chain {iptables.chain}; "
            "stop with SIGTERM (the rules stay until linkinit guard --uninstall)")
        wait = RESYNC_SECONDS
        while True:
            item = _next(events.queue, wait)
            if item is _LOST:
                events.close()
                engine, events = _reconnect(say)
            try:
                reconcile(engine, names, iptables, say, warn)
                wait = RESYNC_SECONDS
            except GuardError as error:
                say(f"{error} (retrying in {RETRY_SECONDS:.0f} s)")
                wait = RETRY_SECONDS
    except _Stop as stop:
        say(f"guard: stopped by {stop}; the rules stay in place "
            f"(linkinit guard --uninstall --chain {iptables.chain} removes them)")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if events is not None:
            events.close()


def _next(events: queue.Queue, wait: float) -> Any:
    """The next event (None after ``wait`` seconds), with a burst coalesced into one."""
    try:
        item = events.get(timeout=wait)
    except queue.Empty:
        return None
    deadline = time.monotonic() + DEBOUNCE_SECONDS
    while item is not _LOST:
        try:
            item = events.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            break
    return item


def _guarded(work: Callable[[], Any]) -> Any:
    """An Engine request whose failure is the guard's one-line error."""
    try:
        return work()
    except EngineError as error:
        raise GuardError(f"guard: {error}") from None


def _reconnect(say: Callable[[str], None]) -> Tuple[Engine, _Events]:
    """Wait for the Engine to come back (doubling pauses, at most 30 s each)."""
    say("guard: lost the Docker Engine's event stream; reconnecting")
    pause = 1.0
    while True:
        try:
            engine = connect()
            events = _guarded(lambda: _Events(engine))  # noqa: B023 (called at once)
            say("guard: reconnected to the Docker Engine")
            return engine, events
        except GuardError:  # not back yet: try again later
            time.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX)


def reconcile(
    engine: Engine,
    names: Sequence[str],
    iptables: Iptables,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    """Fetch, plan, and make the chain match the plan."""
    try:
        containers, networks, missing = fetch_state(engine, names)
    except EngineError as error:
        raise GuardError(f"guard: the Docker Engine did not answer: {error}") from None
    for name in missing:
        warn(f"network {name} does not exist (yet): it is guarded once it does")
    for network in networks:
        if network.get("EnableIPv6"):
            warn(f"network {network.get('Name')} has IPv6: only its IPv4 traffic is guarded")
    iptables.apply(plan(containers, networks, warn), lambda line: say(f"guard: {line}"))
