"""``linkinit guard`` on the real Engine: link-only traffic between real containers.

Three containers on a network of the test's own: a child listening on an exposed port (6379)
and on a port it does not expose (7000), a parent linked to it by label, and a stranger.
Probes are ``nc -z`` from inside the containers, so test traffic stays between the project's
own containers. Other sessions run end-to-end tests on the same Engine and rely on the
default bridge: each test protects only the network it made, with an iptables chain of its
own (``--chain``), and its fixture uninstalls the guard in ``finally``. Every container and
network carries ``linkinit.test=guard`` and is removed by ID in teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, List, Optional

import docker
import pytest

from tests.support.paths import BASE_IMAGE, ROOT

from .dockerkit import wait_until

LABELS = {"linkinit.test": "guard"}
EXPOSED, HIDDEN = 6379, 7000
GUARD_STOP_TIMEOUT = 15  # seconds a guard may take to stop after SIGTERM
RULES_TIMEOUT = 20  # seconds the guard may take to follow an event
# Listens on both ports and closes each connection at once; ends by itself after 10 min.
LISTENER = f"""
import socket, threading, time
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port)); s.listen(16)
    while True:
        s.accept()[0].close()
for port in ({EXPOSED}, {HIDDEN}):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
print("listening", flush=True)
time.sleep(600)
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the guard changes iptables: root only")


def linkinit_command() -> List[str]:
    venv = ROOT / ".venv" / "bin" / "linkinit"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "linkinit"]


def iptables_rules(chain: str) -> Optional[List[str]]:
    """``iptables -S`` lines of a chain, None when the chain does not exist."""
    done = subprocess.run(["iptables", "-w", "5", "-S", chain], capture_output=True, text=True,
                          timeout=30, check=False)
    if done.returncode != 0:
        return None
    return [line for line in done.stdout.splitlines() if line.startswith("-A ")]


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=60)
        client.ping()
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"no base image {BASE_IMAGE}: run scripts/build-base (scripts/test does)")
    except docker.errors.DockerException as error:
        pytest.fail(f"no Docker Engine ({error}): start dockerd or run scripts/test")
    yield client
    client.close()


@dataclass
class Scene:
    """The test's network and containers, the guard's chain, and how to run the guard."""

    engine: docker.DockerClient
    token: str
    network: Any
    chain: str
    tmp: Path
    made: List[str] = field(default_factory=list)
    guards: List[subprocess.Popen] = field(default_factory=list)
    child: Any = None
    parent: Any = None
    stranger: Any = None

    def name(self, role: str) -> str:
        return f"lt-guard-{role}-{self.token}"

    def create(self, role: str, command: Any, labels: Optional[dict] = None,
               ports: Optional[list] = None) -> Any:
        """A container on the test network only, exposing ``ports`` (never publishing)."""
        api = self.engine.api
        created = api.create_container(
            BASE_IMAGE, command, name=self.name(role), labels={**LABELS, **(labels or {})},
            ports=ports, host_config=api.create_host_config(network_mode=self.network.name),
            networking_config=api.create_networking_config(
                {self.network.name: api.create_endpoint_config()}),
        )
        self.made.append(created["Id"])
        container = self.engine.containers.get(created["Id"])
        container.start()
        return container

    def ip(self, container: Any) -> str:
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]

    def reaches(self, source: Any, port: int) -> bool:
        """Whether ``source`` can open a TCP connection to the child's port (1 s, bounded)."""
        code, _ = source.exec_run(["timeout", "5", "nc", "-z", "-w", "1", self.ip(self.child),
                                   str(port)])
        return code == 0

    def start_guard(self) -> subprocess.Popen:
        """Run the guard; return once it says it is guarding (its first reconcile is done)."""
        path = self.tmp / f"guard-{len(self.guards)}.log"
        with open(path, "w") as log:
            process = subprocess.Popen(
                [*linkinit_command(), "guard", "--network", self.network.name,
                 "--chain", self.chain],
                stdout=log, stderr=subprocess.STDOUT,
            )
        self.guards.append(process)
        wait_until(lambda: "linkinit: guard: guarding" in path.read_text()
                   or process.poll() is not None, RULES_TIMEOUT, "the guard starts guarding")
        assert process.poll() is None, f"the guard exited: {self.guard_log()}"
        assert self.installed(), f"no chain in force: {self.guard_log()}"
        return process

    def stop_guard(self, process: subprocess.Popen) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=GUARD_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=GUARD_STOP_TIMEOUT)
            raise AssertionError(f"the guard ignored SIGTERM: {self.guard_log()}") from None

    def guard_log(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("guard-*.log")))

    def rules(self) -> List[str]:
        return iptables_rules(self.chain) or []

    def installed(self) -> bool:
        """The chain is jumped to and ends with its drop: the guard is in force."""
        rules = self.rules()
        jumped = f"-A DOCKER-USER -j {self.chain}" in (iptables_rules("DOCKER-USER") or [])
        return jumped and bool(rules) and rules[-1].endswith("-j DROP")

    def allows(self, parent: Any) -> List[str]:
        """The chain's rules that let ``parent`` through (none while it is not running)."""
        parent.reload()
        if parent.status != "running":
            return []
        return [rule for rule in self.rules() if f"-s {self.ip(parent)}/32" in rule]

    def uninstall(self) -> subprocess.CompletedProcess:
        return subprocess.run([*linkinit_command(), "guard", "--uninstall", "--chain", self.chain],
                              capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def scene(engine: docker.DockerClient, tmp_path: Path) -> Iterator[Scene]:
    """Child, parent and stranger on a fresh network; guard stopped and uninstalled after."""
    token = uuid.uuid4().hex[:8]
    network = engine.networks.create(f"lt-guard-{token}", driver="bridge", labels=LABELS)
    scene = Scene(engine, token, network, f"LG-{token}", tmp_path)
    try:
        scene.child = scene.create("child", ["python3", "-c", LISTENER], ports=[EXPOSED])
        wait_until(lambda: b"listening" in scene.child.logs(), 30, "the child listens")
        scene.parent = scene.create("parent", ["sleep", "600"],
                                    labels={"link.redis": scene.name("child")})
        scene.stranger = scene.create("stranger", ["sleep", "600"])
        yield scene
    finally:
        for process in scene.guards:
            with contextlib.suppress(Exception):
                scene.stop_guard(process)
        scene.uninstall()
        for cid in scene.made:
            with contextlib.suppress(docker.errors.NotFound):
                engine.api.remove_container(cid, force=True)
        network.remove()
        assert iptables_rules(scene.chain) is None, "the test left its chain behind"
        assert f"-A DOCKER-USER -j {scene.chain}" not in (iptables_rules("DOCKER-USER") or [])


@pytest.fixture
def guarded(scene: Scene) -> Scene:
    scene.start_guard()
    wait_until(lambda: scene.allows(scene.parent), RULES_TIMEOUT, "the parent's rule")
    return scene


def test_without_the_guard_every_container_reaches_every_port(scene: Scene) -> None:
    """Control: the probes can succeed, so a refusal below is the guard's doing."""
    assert scene.reaches(scene.parent, EXPOSED)
    assert scene.reaches(scene.parent, HIDDEN)
    assert scene.reaches(scene.stranger, EXPOSED)


def test_a_linked_parent_reaches_the_childs_exposed_port(guarded: Scene) -> None:
    assert guarded.reaches(guarded.parent, EXPOSED)


def test_a_linked_parent_cannot_reach_a_port_the_child_does_not_expose(guarded: Scene) -> None:
    assert not guarded.reaches(guarded.parent, HIDDEN)


def test_an_unlinked_container_cannot_reach_the_child_at_all(guarded: Scene) -> None:
    assert not guarded.reaches(guarded.stranger, EXPOSED)
    assert not guarded.reaches(guarded.stranger, HIDDEN)


def test_the_rules_follow_a_parent_that_stops_and_starts(guarded: Scene) -> None:
    """Stopped: its allow rule goes. Started again (maybe with a new address): it is back."""
    guarded.parent.stop(timeout=0)
    wait_until(lambda: not any("-p tcp" in rule for rule in guarded.rules()), RULES_TIMEOUT,
               "the stopped parent's rule goes")
    guarded.parent.start()
    wait_until(lambda: guarded.allows(guarded.parent), RULES_TIMEOUT,
               "the restarted parent's rule comes back")
    assert guarded.reaches(guarded.parent, EXPOSED)
    assert not guarded.reaches(guarded.stranger, EXPOSED)


def test_a_parent_started_after_the_guard_gets_its_rule(guarded: Scene) -> None:
    """A new parent is allowed on the event, without a restart of the guard."""
    late = guarded.create("late", ["sleep", "600"], labels={"link.db": guarded.name("child")})
    wait_until(lambda: guarded.allows(late), RULES_TIMEOUT, "the late parent's rule")
    assert guarded.reaches(late, EXPOSED)
    assert not guarded.reaches(late, HIDDEN)


def test_uninstall_restores_open_traffic(guarded: Scene) -> None:
    """Nothing left behind: no chain, no jump, and the stranger reaches the child again."""
    assert guarded.stop_guard(guarded.guards[-1]) == 0
    assert guarded.installed(), "SIGTERM alone leaves the rules in place"
    done = guarded.uninstall()
    assert done.returncode == 0, done.stderr
    assert iptables_rules(guarded.chain) is None
    assert f"-A DOCKER-USER -j {guarded.chain}" not in (iptables_rules("DOCKER-USER") or [])
    assert guarded.reaches(guarded.stranger, HIDDEN)
    assert guarded.reaches(guarded.parent, HIDDEN)


def test_a_restarted_guard_adds_no_duplicates(guarded: Scene) -> None:
    """Reconciling from scratch finds every rule in place and changes nothing."""
    before = guarded.rules()
    assert len(before) == len(set(before)) == 3  # replies, the one link, the drop
    assert guarded.stop_guard(guarded.guards[-1]) == 0
    guarded.start_guard()
    assert guarded.rules() == before
    jumps = [r for r in iptables_rules("DOCKER-USER") or [] if r.endswith(f"-j {guarded.chain}")]
    assert jumps == [f"-A DOCKER-USER -j {guarded.chain}"]
    assert guarded.reaches(guarded.parent, EXPOSED)


def test_dry_run_prints_the_rules_and_changes_nothing(scene: Scene) -> None:
    done = subprocess.run(
        [*linkinit_command(), "guard", "--dry-run", "--network", scene.network.name,
         "--chain", scene.chain],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"iptables -N {scene.chain}"
    assert lines[-1] == f"iptables -I DOCKER-USER 1 -j {scene.chain}"
    allow = [line for line in lines if f"-s {scene.ip(scene.parent)}/32" in line]
    assert len(allow) == 1 and f"--dport {EXPOSED}" in allow[0]
    assert lines[-2].endswith("-j DROP")
    assert iptables_rules(scene.chain) is None


def test_a_missing_iptables_is_one_line_and_exit_69() -> None:
    done = subprocess.run(
        [*linkinit_command(), "guard", "--network", "lt-guard-none", "--chain", "LG-NEVER"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": "/nonexistent"},
    )
    assert (done.returncode, done.stdout) == (69, "")
    assert done.stderr == ("linkinit: guard: iptables not found on PATH: install iptables "
                           "(Debian: apt-get install iptables)\n")
