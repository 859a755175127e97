"""`linkinit health`: what the list API's summaries say, and which links fail, as data.

The Engine and the ports are real in tests/e2e/test_health.py; here the pure rules, the
state file's round trip, and the answers that need no Engine.
"""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.init import health
from linkinit.model.container import Port
from linkinit.model.declare import LinkSpec
from linkinit.model.envvars import ResolvedLink


@pytest.mark.parametrize(
    ("summary", "state"),
    [
        ({"Id": "a", "State": "running", "Status": "Up 3 minutes (healthy)"},
         ("running", "healthy")),
        ({"Id": "a", "State": "running", "Status": "Up 3 minutes (unhealthy)"},
         ("running", "unhealthy")),
        ({"Id": "a", "State": "running", "Status": "Up 1 second (health: starting)"},
         ("running", "starting")),
        ({"Id": "a", "State": "running", "Status": "Up 3 minutes"}, ("running", "")),
        ({"Id": "a", "State": "exited", "Status": "Exited (0) 2 seconds ago"}, ("exited", "")),
        ({"Id": "a", "State": "running", "Status": "Up 3 minutes",
          "Health": {"Status": "unhealthy"}}, ("running", "unhealthy")),
    ],
)
def test_child_states_read_the_state_and_the_health_words(summary, state):
    """API 1.41 has health only in Status's words; a Health field (1.52) wins."""
    assert health.child_states([summary]) == {"a": state}


def link(wait: str = "listening", optional: bool = False, port: object = 6379) -> dict:
    return {"alias": "db", "child": "db1", "id": "a", "wait": wait, "optional": optional,
            "ip": "10.0.0.2", "port": port}


def closed(ip: str, port: int) -> bool:
    return False


def opened(ip: str, port: int) -> bool:
    return True


@pytest.mark.parametrize(
    ("entry", "state", "probe", "lines"),
    [
        (link(), ("running", ""), opened, []),
        (link(), ("running", "healthy"), opened, []),
        (link(), ("running", ""), closed, ["db (db1): 10.0.0.2:6379 refuses connections"]),
        (link(), None, opened, ["db (db1): the container COMMAND was given is gone"]),
        (link(), ("exited", ""), opened, ["db (db1): not running (exited)"]),
        (link(), ("running", "unhealthy"), opened, ["db (db1): its healthcheck says unhealthy"]),
        (link("healthy"), ("running", "starting"), opened,
         ["db (db1): its healthcheck says starting"]),
        (link("healthy"), ("running", "healthy"), closed, []),  # no port probe
        (link("started"), ("running", "unhealthy"), closed, []),  # running is enough
        (link("started"), ("paused", ""), opened, ["db (db1): not running (paused)"]),
        (link("none"), None, closed, []),
        (link(optional=True), None, closed, []),
        (link(port=None), ("running", ""), closed, []),  # no TCP port to probe
    ],
)
def test_failures_follow_each_wait_mode(entry, state, probe, lines):
    """Each wait mode's check, at the address and port COMMAND was given."""
    states = {} if state is None else {"a": state}
    assert health.failures([entry], states, probe) == lines


@given(st.lists(st.sampled_from(["started", "healthy", "listening", "none"]), max_size=5),
       st.sampled_from(["running", "exited", "paused"]))
def test_every_failing_line_names_a_required_link(waits, running):
    """One line per failing link at most, each naming its alias; optional ones never fail."""
    entries = [{**link(wait), "alias": f"l{i}", "optional": i % 2 == 1}
               for i, wait in enumerate(waits)]
    lines = health.failures(entries, {"a": (running, "")}, closed)
    required = [e for e in entries if not e["optional"] and e["wait"] != "none"]
    assert len(lines) == (len(required) if running != "running" else
                          sum(e["wait"] == "listening" for e in required))
    assert all(any(line.startswith(f"{e['alias']} (") for e in required) for line in lines)


def test_the_state_records_what_command_was_given(tmp_path):
    """Each link's ID, wait mode, address and first TCP port; optional ones marked."""
    path = tmp_path / "health.json"
    specs = [LinkSpec("db", "db1", "healthy"), LinkSpec("cache", "c1", optional=True)]
    links = [ResolvedLink("db", "web", "10.0.0.2", (Port(53, "udp"), Port(6380, "tcp"),
                                                     Port(6379, "tcp")), (), "db1", "h", "a" * 64),
             ResolvedLink("cache", "web", "10.0.0.3", (), (), "c1", "h", "b" * 64)]
    health.record(str(path), "unix:///var/run/docker.sock", specs, links, (1, 41))
    assert json.loads(path.read_text()) == {
        "engine": "unix:///var/run/docker.sock",
        "api": [1, 41],
        "links": [
            {"alias": "db", "child": "db1", "id": "a" * 64, "wait": "healthy",
             "optional": False, "ip": "10.0.0.2", "port": 6379, "service": False},
            {"alias": "cache", "child": "c1", "id": "b" * 64, "wait": "listening",
             "optional": True, "ip": "10.0.0.3", "port": None, "service": False},
        ],
    }


@pytest.mark.parametrize(
    ("identifier", "service"),
    [("a" * 64, False), ("0123456789abcdef" * 4, False), ("x3ti8c1jg2a2fqkw3q0wvv2pi", True),
     ("A" * 64, True), ("a" * 63, True)],
)
def test_a_swarm_service_is_told_from_a_container_by_its_id(tmp_path, identifier, service):
    """A service's ID is not 64 hex digits: the list cannot show it, so its address alone
    is checked."""
    path = tmp_path / "health.json"
    link = ResolvedLink("db", "web", "10.0.0.2", (), (), "db1", "h", identifier)
    health.record(str(path), "unix:///x", [LinkSpec("db", "db1")], [link])
    assert json.loads(path.read_text())["links"][0]["service"] is service


def test_a_service_link_is_checked_at_its_address_only():
    """No container state for a service: running is assumed, the port decides."""
    entry = {**link(), "service": True}
    assert health.failures([entry], {}, opened) == []
    assert health.failures([entry], {}, closed) == [
        "db (db1): 10.0.0.2:6379 refuses connections"]


def test_an_unwritable_place_for_the_state_is_no_error(tmp_path):
    """A read-only /run must not stop COMMAND: nothing is written, nothing raised."""
    health.record(str(tmp_path / "missing" / "health.json"), "unix:///x", [], [])
    assert list(tmp_path.iterdir()) == []


def test_a_state_left_by_an_earlier_run_is_forgotten_at_start(tmp_path):
    """`docker restart` keeps /run: the start removes the old state before it waits."""
    path = tmp_path / "health.json"
    health.record(str(path), "unix:///x", [], [])
    health.forget(str(path))
    health.forget(str(path))  # nothing there: no error either
    assert not path.exists()


def run_health(argv, environ):
    out, err = io.StringIO(), io.StringIO()
    return health.main(argv, environ, out, err), out.getvalue(), err.getvalue()


def test_no_state_is_unhealthy_and_says_why(tmp_path):
    """Before COMMAND starts (or where /run is read-only): 1, one line naming the file."""
    path = tmp_path / "none.json"
    status, out, _ = run_health([], {"LINKINIT_HEALTH_FILE": str(path)})
    assert status == 1
    assert out == (f"linkinit: no state at {path} (No such file or directory): COMMAND has "
                   "not started yet, or /run is not writable (docker run --tmpfs /run)\n")


@pytest.mark.parametrize(
    ("probe", "status", "out"),
    [
        ("true", 0, "linkinit: healthy (no links)\n"),
        ("sh -c 'exit 3'", 1, "linkinit: unhealthy: probe sh -c 'exit 3': exited 3\n"),
        ("/nonexistent/check", 1,
         "linkinit: unhealthy: probe /nonexistent/check: cannot run it: "
         "No such file or directory\n"),
    ],
)
def test_the_application_probe_decides_too(tmp_path, probe, status, out):
    """--probe CMD runs the application's own check (no shell); its failure is a line."""
    path = tmp_path / "health.json"
    health.record(str(path), "unix:///nowhere", [], [])
    assert run_health(["--probe", probe], {"LINKINIT_HEALTH_FILE": str(path)})[:2] == (status,
                                                                                        out)


def test_bad_usage_is_64_with_one_line(tmp_path):
    status, out, err = run_health(["--bogus"], {})
    assert (status, out) == (64, "")
    assert err == ("linkinit: health: unrecognized arguments: --bogus "
                   "(see linkinit health --help)\n")
