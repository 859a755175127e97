"""Follow mode's watcher, against a scripted Engine: what is a change, and what it does.

The Engine is a dict of inspect documents (no socket); the links and hosts files are in a
temporary directory. The end-to-end behaviour (a real child restarted onto a new address)
is in tests/e2e/test_follow.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.engine.kinds import DOCKER
from linkinit.errors import EngineUnreachable, NotSwarmManager
from linkinit.init.follow import (
    RETRY_SECONDS,
    SERVICE_POLL_SECONDS,
    Follower,
    Seen,
    compare,
    encode_links,
    follow,
)
from linkinit.init.supervise import parse_environ
from linkinit.model import swarm
from linkinit.model.declare import LinkSpec

PARENT = {"Id": "p" * 64, "Name": "/webapp",
          "NetworkSettings": {"Networks": {"appnet": {"IPAddress": "10.5.0.3"}}}}


def child(ip: str = "10.5.0.2", cid: str = "c" * 64, running: bool = True,
          env: tuple = ("PASSWORD=x",)) -> dict:
    return {"Id": cid, "Name": "/db1",
            "State": {"Status": "running" if running else "exited", "Running": running},
            "Config": {"ExposedPorts": {"6379/tcp": {}}, "Env": list(env), "Hostname": cid[:12]},
            "NetworkSettings": {"Networks": {"appnet": {"IPAddress": ip if running else ""}}}}


class FakeEngine:
    """Answers inspect from ``containers``; ``down`` makes every request fail."""

    kind = DOCKER
    swarm_role: Optional[str] = None

    def __init__(self) -> None:
        self.containers: Dict[str, dict] = {}
        self.down = False

    def inspect_container(self, reference: str) -> Optional[dict]:
        if self.down:
            raise EngineUnreachable("cannot reach the Docker Engine")
        return self.containers.get(reference)

    def list_containers(self, filters: Optional[dict] = None) -> List[dict]:
        return []

    def inspect_service(self, reference: str) -> Optional[dict]:
        raise NotSwarmManager("This node is not a swarm manager.", 503, swarm.NOT_IN_SWARM)


SPEC = LinkSpec("redis", "db1", "listening", False, "label link.redis")


def variables_for(ip: str, password: str = "x") -> tuple:
    return (("REDIS_PORT", f"tcp://{ip}:6379"), ("REDIS_PORT_6379_TCP", f"tcp://{ip}:6379"),
            ("REDIS_PORT_6379_TCP_ADDR", ip), ("REDIS_PORT_6379_TCP_PORT", "6379"),
            ("REDIS_PORT_6379_TCP_PROTO", "tcp"), ("REDIS_NAME", "/webapp/redis"),
            ("REDIS_ENV_PASSWORD", password))


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.engine = FakeEngine()
        self.engine.containers["db1"] = child()
        self.lines: List[str] = []
        self.notified: List[list] = []
        self.links_path = tmp_path / "links"
        self.hosts_path = tmp_path / "hosts"
        self.hosts_path.write_text("127.0.0.1\tlocalhost\n10.5.0.2\tredis cccccccccccc db1\n")
        given = {"redis": Seen("c" * 64, variables_for("10.5.0.2"))}
        self.follower = Follower(self.engine, PARENT, [SPEC], given, self.lines.append,
                                 self.notified.append, str(self.links_path),
                                 str(self.hosts_path))


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_nothing_changed_means_no_file_no_hosts_and_no_notice(rig: Rig) -> None:
    assert rig.follower.sync() == []
    assert rig.notified == [] and rig.lines == [] and not rig.links_path.exists()


def test_a_new_address_rewrites_the_links_file_and_hosts_and_notifies_once(rig: Rig) -> None:
    rig.engine.containers["db1"] = child(ip="10.5.0.7")
    assert rig.follower.sync() == ["redis"]
    assert parse_environ(rig.links_path.read_bytes()) == dict(variables_for("10.5.0.7"))
    assert rig.hosts_path.read_text() == ("127.0.0.1\tlocalhost\n"
                                          "10.5.0.7\tredis cccccccccccc db1\n")
    assert rig.notified == [["redis"]]
    assert rig.lines == ["follow: redis (db1) changed: now at 10.5.0.7"]
    assert rig.follower.sync() == [] and rig.notified == [["redis"]]


def test_a_changed_environment_is_a_change(rig: Rig) -> None:
    rig.engine.containers["db1"] = child(env=("PASSWORD=rotated",))
    assert rig.follower.sync() == ["redis"]
    assert parse_environ(rig.links_path.read_bytes())["REDIS_ENV_PASSWORD"] == "rotated"


def test_a_recreated_container_is_a_change_even_with_the_same_values(rig: Rig) -> None:
    """compose recreate: same name and address, another container (its connections are gone)."""
    rig.engine.containers["db1"] = child(cid="d" * 64)
    assert rig.follower.sync() == ["redis"]


def test_a_child_that_stops_is_reported_once_and_is_no_change(rig: Rig) -> None:
    rig.engine.containers["db1"] = child(running=False)
    assert rig.follower.sync() == [] and rig.follower.sync() == []
    assert rig.lines == ["follow: redis (db1) is down; COMMAND keeps its last address "
                         "until it comes back"]
    assert rig.notified == []


def test_a_child_back_with_the_same_values_is_no_change(rig: Rig) -> None:
    rig.engine.containers["db1"] = child(running=False)
    rig.follower.sync()
    rig.engine.containers["db1"] = child()
    assert rig.follower.sync() == []
    assert rig.lines[-1] == "follow: redis (db1) is up again" and rig.notified == []


def test_a_child_back_on_another_address_is_a_change(rig: Rig) -> None:
    rig.engine.containers["db1"] = child(running=False)
    rig.follower.sync()
    rig.engine.containers["db1"] = child(ip="10.5.0.9")
    assert rig.follower.sync() == ["redis"] and rig.notified == [["redis"]]


class Sleeps:
    def __init__(self) -> None:
        self.pauses: List[float] = []

    def wait(self, timeout: float) -> bool:
        self.pauses.append(timeout)
        return False


def test_an_engine_that_fails_is_retried_with_backoff_and_logged_once(rig: Rig) -> None:
    rig.engine.down = True
    sleeps = Sleeps()
    follow(rig.follower, sleeps, resync=30, rounds=4)
    assert sleeps.pauses == list(RETRY_SECONDS[:4])
    assert rig.lines == ["follow: the Engine did not answer (cannot reach the Docker Engine); "
                         "retrying"]


def test_without_events_the_watcher_still_looks_every_resync(rig: Rig) -> None:
    sleeps = Sleeps()
    follow(rig.follower, sleeps, resync=30, rounds=3)
    assert sleeps.pauses == [30, 30, 30]


@pytest.mark.parametrize(
    ("given", "now", "expected"),
    [
        pytest.param({"a": Seen("1", (("A", "x"),))}, {"a": Seen("1", (("A", "x"),))},
                     ([], []), id="same"),
        pytest.param({"a": Seen("1", (("A", "x"),))}, {"a": Seen("1", (("A", "y"),))},
                     (["a"], []), id="value"),
        pytest.param({"a": Seen("1", (("A", "x"),))}, {"a": Seen("2", (("A", "x"),))},
                     (["a"], []), id="container"),
        pytest.param({"a": Seen("1", (("A", "x"),))}, {"a": None}, ([], ["a"]), id="down"),
    ],
)
def test_compare(given: dict, now: dict, expected: tuple) -> None:
    assert compare(given, now) == expected


@given(st.dictionaries(st.text(alphabet="ABCZ_019", min_size=1, max_size=8),
                       st.text(alphabet=st.characters(blacklist_characters="\0",
                                                      blacklist_categories=("Cs",)),
                               max_size=20)))
def test_property_the_links_file_reads_back_what_was_written(variables: dict) -> None:
    assert parse_environ(encode_links(variables)) == variables


def service_child(address: str, running: bool) -> dict:
    """A dnsrr swarm service ``db1`` shaped as a container, with its one task."""
    task = {"ID": "t1", "Slot": 1, "DesiredState": "running",
            "Status": {"State": "running" if running else "preparing"},
            "NetworksAttachments": [{"Network": {"ID": "n1", "Spec": {"Name": "appnet"}},
                                     "Addresses": [f"{address}/24"]}]}
    service = {"ID": "s" * 25, "Spec": {"Name": "db1", "EndpointSpec": {"Mode": "dnsrr"},
                                        "TaskTemplate": {"ContainerSpec": {"Env": ["PASSWORD=x"]}}}}
    return swarm.service_document(service, [task], {"Config": {"ExposedPorts": {"6379/tcp": {}}}})


def test_a_service_scaled_to_0_is_asked_for_every_second_until_a_task_runs(rig: Rig) -> None:
    """No event says a task started (swarm.py): while the service is down the watcher asks
    again every SERVICE_POLL_SECONDS, and sees it back on its new task's address."""
    rig.engine.containers["db1"] = service_child("10.5.0.2", running=False)
    sleeps = Sleeps()
    follow(rig.follower, sleeps, resync=30, rounds=2)
    assert sleeps.pauses == [SERVICE_POLL_SECONDS, SERVICE_POLL_SECONDS]
    rig.engine.containers["db1"] = service_child("10.5.0.8", running=True)
    follow(rig.follower, sleeps, resync=30, rounds=1)
    assert sleeps.pauses[-1] == 30
    assert rig.notified == [["redis"]]
    assert parse_environ(rig.links_path.read_bytes())["REDIS_PORT_6379_TCP_ADDR"] == "10.5.0.8"
