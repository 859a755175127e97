"""Podman's compatible API, made to read like Docker's: engines.py's differences as table cases.

The documents are trimmed from what Podman 4.3 (Debian 12) answered on this kind of machine;
no engine is involved. The end-to-end suite runs the same scenarios on the real Podman.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import pytest

from linkinit.engine import kinds as engines
from linkinit.engine.kinds import DOCKER, PODMAN, HealthchecksOnDemand, docker_shaped
from linkinit.engine.whoami import container_id_from_cgroup, container_id_from_mountinfo
from linkinit.errors import EngineRefused, EngineUnreachable
from linkinit.init.readiness import READY, observe
from linkinit.model import container as model
from linkinit.model.declare import LinkSpec
from linkinit.model.envvars import ResolvedLink, link_variables

ID = "2737a4d48b78522d0094e1dbd62065e3335b5136d91651fe486880e9ea6e9e4e"

DOCKER_PING = {"api-version": "1.41", "server": "Docker/20.10.24+dfsg1 (linux)"}
PODMAN_PING = {"api-version": "1.41", "libpod-api-version": "4.3.1",
               "server": "Libpod/4.3.1 (linux)"}


def podman_child(**changes: Any) -> Dict[str, Any]:
    """``podman run -d --name pt-a --expose 6379 -e PASSWORD=x ... sleep 300``, inspected."""
    document: Dict[str, Any] = {
        "Id": ID,
        "Name": "/pt-a",
        "State": {"Status": "running", "Running": True, "ExitCode": 0,
                  "Health": {"Status": "", "FailingStreak": 0, "Log": None}},
        "Config": {
            "Hostname": "2737a4d48b78",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm", "container=podman", "LANG=C.UTF-8", "PASSWORD=x",
                    "HOME=/root", "HOSTNAME=2737a4d48b78"],
            "ExposedPorts": {"6379/tcp": {}},
            "Labels": {},
            "Healthcheck": None,
        },
        "HostConfig": {"NetworkMode": "bridge"},
        "NetworkSettings": {
            "IPAddress": "10.88.0.6",
            "Networks": {"podman": {"Aliases": ["2737a4d48b78"], "NetworkID": "podman",
                                    "IPAddress": "10.88.0.6", "Gateway": "10.88.0.1"}},
        },
    }
    document.update(changes)
    return document


def on_network(mode: str) -> Dict[str, Any]:
    """A Podman container run with ``--network host`` or ``--network none``."""
    return podman_child(Id="b" * 64, Name=f"/on-{mode}", HostConfig={"NetworkMode": mode},
                        NetworkSettings={"IPAddress": "", "Networks": {}})


def with_healthcheck(status: str, interval_s: float = 0.2,
                     log: Optional[List[dict]] = None) -> Dict[str, Any]:
    document = podman_child()
    document["Config"] = dict(document["Config"], Healthcheck={
        "Test": ["CMD-SHELL", "test -f /tmp/ready"], "Interval": int(interval_s * 1e9),
        "Timeout": 30_000_000_000, "Retries": 3})
    document["State"] = dict(document["State"], Health={
        "Status": status, "FailingStreak": 0, "Log": log})
    return document


# -- which engine answers -----------------------------------------------------------------


@pytest.mark.parametrize(("headers", "kind"), [
    pytest.param(DOCKER_PING, DOCKER, id="docker"),
    pytest.param(PODMAN_PING, PODMAN, id="podman"),
    pytest.param({}, DOCKER, id="no-headers-is-docker"),
])
def test_the_engine_is_told_by_podmans_own_ping_header(headers, kind):
    """Podman's /_ping adds Libpod-Api-Version; Docker's answer has no such header."""
    assert engines.kind_from_headers(headers) is kind


def test_podman_is_followed_under_its_own_event_names():
    """Podman filters a container's end as 'died' and its removal as 'remove'."""
    assert {"died", "remove", "health_status", "start"} <= set(PODMAN.waking_events)
    assert {"die", "destroy"}.isdisjoint(PODMAN.waking_events)
    assert {"die", "destroy", "health_status", "start"} <= set(DOCKER.waking_events)


@pytest.mark.parametrize(("status", "message", "ambiguous"), [
    pytest.param(404, "more than one result for container ID 7: container already exists",
                 True, id="podman-prefix"),
    pytest.param(400, "multiple IDs found with provided prefix: 7", True, id="docker-prefix"),
    pytest.param(400, "service db is ambiguous (2 matches found)", True, id="docker-service"),
    pytest.param(404, "no such container", False, id="podman-missing"),
    pytest.param(404, "No such container: multiple-db", False, id="docker-missing-odd-name"),
])
def test_an_ambiguous_id_prefix_is_recognised_on_either_engine(status, message, ambiguous):
    assert engines.is_ambiguous(status, message) is ambiguous
    assert (engines.answer_kind(status, message) == engines.AMBIGUOUS) is ambiguous


@pytest.mark.parametrize(("status", "message", "kind"), [
    (404, "No such container: db1", engines.MISSING),
    (503, "This node is not a swarm manager. Worker nodes can't be used to view or modify "
          "cluster state.", engines.NOT_MANAGER),
    (503, "This node is not a swarm manager. Use \"docker swarm init\"", engines.NOT_MANAGER),
    (500, "driver failed", engines.UNAVAILABLE),
    (503, "busy", engines.UNAVAILABLE),
    (409, "conflict", engines.REFUSED),
    (400, "bad parameter", engines.REFUSED),
])
def test_an_error_answer_is_read_one_way(status, message, kind):
    """The start path's client and the proxy both read an error answer with answer_kind."""
    assert engines.answer_kind(status, message) == kind


# -- documents ----------------------------------------------------------------------------


def test_podmans_added_variables_are_not_the_childs_environment():
    """container=podman, TERM=xterm and HOSTNAME leave Config.Env; the child's own stay."""
    shaped = docker_shaped(PODMAN, podman_child())
    assert shaped["Config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8", "PASSWORD=x", "HOME=/root",
    ]
    link = ResolvedLink(alias="redis", parent_name="web", ip="10.88.0.6",
                        ports=tuple(model.exposed_ports(shaped)),
                        env=model.environment_of(shaped))
    assert [key for key, _ in link_variables(link) if "_ENV_" in key] == [
        "REDIS_ENV_LANG", "REDIS_ENV_PASSWORD"]


def test_a_variable_the_child_sets_itself_to_another_value_is_kept():
    """TERM=vt100 or HOSTNAME=other were set by the user, not added by Podman."""
    child = podman_child()
    child["Config"]["Env"] = ["TERM=vt100", "HOSTNAME=other", "container=docker"]
    assert docker_shaped(PODMAN, child)["Config"]["Env"] == child["Config"]["Env"]


def test_docker_documents_are_left_as_they_are():
    child = podman_child()
    assert docker_shaped(DOCKER, child) is child


def test_reshaping_does_not_change_the_engines_answer():
    child = podman_child()
    before = copy.deepcopy(child)
    docker_shaped(PODMAN, child)
    assert child == before


def test_a_container_exited_but_not_cleaned_up_reads_exited():
    """Podman's 'stopped' (between died and cleanup) is Docker's 'exited', with its code."""
    child = podman_child(State={"Status": "stopped", "Running": False, "ExitCode": 3})
    seen = observe(LinkSpec("db", "pt-a", "listening"), podman_child(Name="/web"),
                   docker_shaped(PODMAN, child))
    assert seen.state == "exited(3)"


@pytest.mark.parametrize("mode", ["host", "none"])
def test_host_and_none_networks_get_their_entry_back(mode):
    """Podman answers Networks: {} where Docker names the host's or no network."""
    assert list(model.networks_of(docker_shaped(PODMAN, on_network(mode)))) == [mode]


def test_a_parent_on_the_host_network_reaches_a_podman_child():
    parent = docker_shaped(PODMAN, on_network("host"))
    child = docker_shaped(PODMAN, podman_child())
    assert model.shared_address(parent, child) == "10.88.0.6"


def test_network_id_being_a_name_changes_nothing_linkinit_reads():
    """Podman's NetworkID is "podman", the network's name: the shared network is by key."""
    parent = podman_child(Id="c" * 64, Name="/web")
    assert model.shared_networks(parent, podman_child()) == ["podman"]


def test_podmans_default_network_is_not_searched_for_aliases():
    """Like Docker's default bridge: no DNS answers an alias there, and searching it would
    inspect every container on the host at each look for a missing child."""
    assert model.alias_networks(podman_child()) == []
    user_network = podman_child()
    user_network["NetworkSettings"]["Networks"] = {"appnet": {"Aliases": ["db1"]}}
    assert model.alias_networks(user_network) == ["appnet"]


def test_an_empty_health_status_is_no_healthcheck_not_unhealthy():
    """State.Health {Status: ""} (Podman, no HEALTHCHECK) is ready for wait=healthy."""
    child = docker_shaped(PODMAN, podman_child())
    seen = observe(LinkSpec("db", "pt-a", "healthy"), podman_child(Name="/web"), child)
    assert seen.phase == READY
    assert model.health_of(child) is None


# -- this container ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(f"0::/libpod_parent/libpod-{ID}\n", ID, id="v2-cgroupfs"),
    pytest.param(f"9:name=systemd:/libpod_parent/libpod-{ID}\n1:cpu:/libpod_parent/libpod-{ID}"
                 f"\n0::/libpod_parent/libpod-{ID}\n", ID, id="v1-cgroupfs-as-on-this-machine"),
    pytest.param(f"0::/machine.slice/libpod-{ID}.scope\n", ID, id="systemd-scope"),
    pytest.param(f"0::/machine.slice/libpod-{ID}.scope/container\n", ID,
                 id="v2-payload-in-the-container-subgroup"),
    pytest.param(f"0::/kubepods.slice/crio-{ID}.scope\n", ID, id="cri-o-as-the-proxy-reads-it"),
    pytest.param(f"0::/libpod_parent/libpod-{ID[:63]}\n", None, id="63-hex-is-not-an-id"),
])
def test_podmans_libpod_cgroup_names_the_container(text, expected):
    assert container_id_from_cgroup(text) == expected


@pytest.mark.parametrize("root", [
    pytest.param("/run/containers/storage/overlay-containers", id="rootful-overlay"),
    pytest.param("/run/user/1001/containers/vfs-containers", id="rootless-vfs"),
])
def test_podmans_hostname_bind_mount_names_the_container(root):
    line = (f"87 79 254:0 {root}/{ID}/userdata/hostname "
            "/etc/hostname rw,relatime - ext4 /dev/vda rw\n")
    assert container_id_from_mountinfo(line) == ID


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("", {}, id="rootful-unprivileged-is-empty"),
    pytest.param('engine="podman-4.3.1"\nname="web"\nid="' + ID + '"\nimage="x"\nrootless=1\n',
                 {"engine": "podman-4.3.1", "name": "web", "id": ID, "image": "x",
                  "rootless": "1"}, id="privileged"),
])
def test_containerenv_fields(text, expected):
    assert engines.containerenv_fields(text) == expected


# -- healthchecks nobody runs ----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


class FakePodman:
    """Runs a check by turning the child healthy, as Podman does when the check passes."""

    def __init__(self, passes: bool = True, error: Optional[Exception] = None) -> None:
        self.runs: List[str] = []
        self.passes = passes
        self.error = error

    def run_healthcheck(self, cid: str) -> None:
        self.runs.append(cid)
        if self.error is not None:
            raise self.error

    def inspect_container(self, cid: str) -> dict:
        return with_healthcheck("healthy" if self.passes else "starting")


def test_a_pending_check_runs_at_once_then_at_most_once_per_interval():
    """The first look runs the check; looks within the interval (at least 1 s) do not."""
    podman, clock = FakePodman(passes=False), FakeClock()
    checks = HealthchecksOnDemand(podman, clock)
    assert checks.checked("healthy", with_healthcheck("starting"))["State"]["Health"][
        "Status"] == "starting"
    assert podman.runs == [ID]
    clock.now += 0.5  # the child's interval is 0.2 s: the 1 s floor holds
    checks.checked("healthy", with_healthcheck("starting"))
    assert podman.runs == [ID]
    assert checks.next_due_in() == pytest.approx(0.5)
    clock.now += 0.5
    checks.checked("listening", with_healthcheck("starting"))
    assert podman.runs == [ID, ID]


def test_a_check_run_makes_the_child_healthy_at_this_look():
    podman = FakePodman(passes=True)
    child = HealthchecksOnDemand(podman, FakeClock()).checked("healthy", with_healthcheck(
        "starting"))
    assert model.health_of(child) == "healthy"


def test_a_child_checked_by_someone_else_lately_is_not_checked_again():
    """With systemd's timers running checks, the last log entry is recent: linkinit waits."""
    clock = FakeClock()
    end = "2027-01-15T08:00:00.5Z"
    clock.now = engines.parse_timestamp(end) + 2.0  # type: ignore[operator]
    podman = FakePodman()
    child = with_healthcheck("starting", interval_s=5, log=[{"End": end, "ExitCode": 1}])
    HealthchecksOnDemand(podman, clock).checked("healthy", child)
    assert podman.runs == []


@pytest.mark.parametrize(("wait", "child"), [
    pytest.param("healthy", with_healthcheck("healthy"), id="already-healthy"),
    pytest.param("healthy", podman_child(), id="no-healthcheck"),
    pytest.param("started", with_healthcheck("starting"), id="wait-started-needs-no-health"),
    pytest.param("healthy", dict(with_healthcheck("starting"),
                                 State={"Status": "exited", "Running": False}), id="not-running"),
    pytest.param("healthy", None, id="missing"),
])
def test_no_check_is_run_where_none_is_needed(wait, child):
    podman = FakePodman()
    checks = HealthchecksOnDemand(podman, FakeClock())
    assert checks.checked(wait, child) is child
    assert podman.runs == []
    assert checks.next_due_in() is None


def test_a_child_gone_before_its_check_is_left_to_the_next_look():
    """A 404/409 from the check (removed or stopped meanwhile) is not a failure of the wait;
    an Engine that does not answer still is."""
    child = with_healthcheck("starting")
    gone = FakePodman(error=EngineRefused("container is not running", 409))
    assert HealthchecksOnDemand(gone, FakeClock()).checked("healthy", child) is child
    down = FakePodman(error=EngineUnreachable("no answer"))
    with pytest.raises(EngineUnreachable):
        HealthchecksOnDemand(down, FakeClock()).checked("healthy", child)


class FakeWake:
    def __init__(self) -> None:
        self.waits: List[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return False


def test_the_pause_ends_as_woken_when_a_check_is_due():
    """Without events (no systemd, no checks), the waiter still looks again when due."""
    clock = FakeClock()
    checks = HealthchecksOnDemand(FakePodman(passes=False), clock)
    checks.checked("healthy", with_healthcheck("starting"))
    source = FakeWake()
    wake = checks.wake(source)
    assert wake.wait(30.0) is True
    assert source.waits == [pytest.approx(1.0)]
    assert HealthchecksOnDemand(FakePodman(), clock).wake(source).wait(2.0) is False


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("2026-11-28T14:19:52.832606474Z", 1795875592.832606474, id="nanoseconds"),
    pytest.param("2026-11-28T14:19:52Z", 1795875592.0, id="whole-seconds"),
    pytest.param("0001-01-01T00:00:00Z", -62135596800.0, id="go-zero-time"),
    pytest.param("", None, id="empty"),
    pytest.param("2026-11-28T14:19:52+01:00", None, id="not-utc"),
])
def test_healthcheck_log_times_parse(text, expected):
    assert engines.parse_timestamp(text) == (pytest.approx(expected) if expected else None)


@pytest.mark.parametrize(
    ("environ", "files", "advice"),
    [
        ({"DOCKER_HOST": "unix:///bad.sock"}, [".dockerenv"],
         "DOCKER_HOST names it: set DOCKER_HOST to the Engine's socket "
         "(unix:///var/run/docker.sock) or unset it"),
        ({}, [".dockerenv"], "mount it with -v /var/run/docker.sock:/var/run/docker.sock"),
        ({}, [".containerenv"], engines.PODMAN.mount_hint),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, [],
         "mount it with -v /var/run/docker.sock:/var/run/docker.sock"),
        ({}, [], "is dockerd running on this host? (or set DOCKER_HOST to the Engine's socket)"),
    ],
    ids=["docker-host-named-it", "in-docker", "in-podman", "in-a-pod", "on-the-host"],
)
def test_a_missing_socket_gets_advice_for_where_linkinit_runs(
    tmp_path, monkeypatch, environ, files, advice
):
    """Mount advice only in a container; on the host, or when DOCKER_HOST named the socket,
    advice about the Engine or DOCKER_HOST instead."""
    monkeypatch.setattr(engines, "DOCKERENV", str(tmp_path / ".dockerenv"))
    monkeypatch.setattr(engines, "CONTAINERENV", str(tmp_path / ".containerenv"))
    for name in files:
        (tmp_path / name).write_text("")
    assert engines.missing_socket_advice(environ) == advice
