"""Follow mode asks a probed child the same question as the start: a child back on a new
address is a change only once it answers its protocol; until then it is down, said why,
and looked at again soon (no event says when a server starts answering)."""

from __future__ import annotations

from pathlib import Path
from typing import List

from linkinit.init.follow import PROBE_POLL_SECONDS, Follower, Seen, follow
from linkinit.init.probes import Answer
from linkinit.init.supervise import parse_environ
from linkinit.model.declare import LinkSpec
from tests.unit.test_follow_changes import PARENT, FakeEngine, child, variables_for

LOADING = Answer(False, "LOADING Redis is loading the dataset in memory")


class Rig:
    def __init__(self, tmp_path: Path, wait: str) -> None:
        self.engine = FakeEngine()
        self.engine.containers["db1"] = child()
        self.lines: List[str] = []
        self.notified: List[list] = []
        self.answers: List[Answer] = []
        self.asked: List[str] = []
        self.links_path = tmp_path / "links"
        hosts = tmp_path / "hosts"
        hosts.write_text("127.0.0.1\tlocalhost\n")
        spec = LinkSpec("redis", "db1", wait, False, "label link.redis")
        given = {"redis": Seen("c" * 64, variables_for("10.5.0.2"))}
        self.follower = Follower(self.engine, PARENT, [spec], given, self.lines.append,
                                 self.notified.append, str(self.links_path), str(hosts))
        self.follower.ask = self.ask

    def ask(self, spec: LinkSpec, seen: object) -> Answer:
        self.asked.append(spec.wait)
        return self.answers.pop(0)


class Wake:
    def __init__(self) -> None:
        self.pauses: List[float] = []

    def wait(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return False


def test_a_child_back_on_a_new_address_changes_only_once_it_answers(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "redis")
    rig.engine.containers["db1"] = child(ip="10.5.0.7")
    rig.answers = [LOADING, Answer(True, "PONG")]
    wake = Wake()
    follow(rig.follower, wake, rounds=1)
    assert rig.notified == [] and not rig.links_path.exists()
    assert rig.lines == ["follow: redis (db1) is down (redis: LOADING Redis is loading the "
                         "dataset in memory); COMMAND keeps its last address until it comes "
                         "back"]
    assert wake.pauses == [PROBE_POLL_SECONDS], "a child that does not answer is asked again soon"
    follow(rig.follower, wake, rounds=1)
    assert rig.notified == [["redis"]]
    assert parse_environ(rig.links_path.read_bytes()) == dict(variables_for("10.5.0.7"))
    assert rig.lines[1:] == ["follow: redis (db1) is up again",
                             "follow: redis (db1) changed: now at 10.5.0.7"]
    assert wake.pauses[-1] > PROBE_POLL_SECONDS


def test_a_stopped_child_that_starts_but_does_not_answer_yet_is_reported_once(
        tmp_path: Path) -> None:
    """Stopped (down), then running but answering LOADING (still down, now said why, once),
    then serving on its new address (a change)."""
    rig = Rig(tmp_path, "redis")
    rig.engine.containers["db1"] = child(running=False)
    rig.follower.sync()
    rig.engine.containers["db1"] = child(ip="10.5.0.7")
    rig.answers = [LOADING, LOADING, Answer(True, "PONG")]
    rig.follower.sync()
    rig.follower.sync()
    assert rig.notified == []
    assert rig.follower.sync() == ["redis"]
    assert rig.lines == [
        "follow: redis (db1) is down; COMMAND keeps its last address until it comes back",
        "follow: redis (db1) runs but does not answer yet (redis: LOADING Redis is loading "
        "the dataset in memory)",
        "follow: redis (db1) is up again",
        "follow: redis (db1) changed: now at 10.5.0.7",
    ]


def test_modes_without_a_probe_are_not_asked(tmp_path: Path) -> None:
    """listening, healthy and started children are followed as before: nothing is asked."""
    for wait in ("listening", "healthy", "started"):
        rig = Rig(tmp_path, wait)
        rig.engine.containers["db1"] = child(ip="10.5.0.9")
        assert rig.follower.sync() == ["redis"]
        assert rig.asked == []
