"""linkinit holds COMMAND until every child is ready, in any start order, and says why not."""

from __future__ import annotations

import time

import pytest

from .dockerkit import output, wait_exit, wait_until
from .linkkit import run_parent, start_child

SECOND = 1_000_000_000  # healthcheck intervals are in nanoseconds

pytestmark = pytest.mark.engines("docker", "podman")


def stderr_of(container):
    return output(container, stdout=False, stderr=True)


def health(test, interval=0.2):
    return {"test": ["CMD-SHELL", test], "interval": int(interval * SECOND),
            "timeout": 2 * SECOND, "retries": 1000}


def test_parent_started_before_the_child_waits_for_it(
    docker_client, linkinit_image, run_container, unique
):
    """The child is created after the parent starts: COMMAND runs once it listens."""
    name = unique("db")
    parent = run_parent(run_container, unique("web"),
                        ["--timeout", "30", "--", "sh", "-c", "echo $DB_PORT_6379_TCP_PORT"],
                        labels={"link.db": name})
    wait_until(lambda: "missing" in stderr_of(parent), timeout=15)
    start_child(docker_client, linkinit_image, name, expose=[6379],
                command=["nc", "-lk", "6379"])
    assert wait_exit(parent) == 0, stderr_of(parent)
    assert output(parent).strip() == "6379"
    progress = stderr_of(parent).splitlines()
    assert progress[0] == f"linkinit: waiting for db ({name}): missing"
    assert progress[-1].endswith("-> listening")


def test_child_listening_late_is_noticed(docker_client, linkinit_image, run_container, unique):
    """A running child whose port opens seconds later: port closed, then listening."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["sh", "-c", "until [ -f /tmp/go ]; do sleep 0.05; done; "
                                 "exec nc -lk 6379"])
    parent = run_parent(run_container, unique("web"), ["--timeout", "30", "--", "true"],
                        labels={"link.db": child.name})
    wait_until(lambda: "port 6379 closed" in stderr_of(parent), timeout=15)
    child.exec_run(["touch", "/tmp/go"])
    assert wait_exit(parent) == 0, stderr_of(parent)
    assert "port 6379 closed -> listening" in stderr_of(parent)


def test_healthcheck_turning_healthy_late(docker_client, linkinit_image, run_container, unique):
    """wait=healthy holds COMMAND through 'starting' until the HEALTHCHECK passes.

    On Podman without systemd no check runs by itself: linkinit runs it (at most once a
    second), and the child's own status says healthy afterwards.
    """
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        healthcheck=health("test -f /tmp/ready"))
    parent = run_parent(run_container, unique("web"), ["--timeout", "30", "--", "true"],
                        labels={"link.db": child.name, "link.db.wait": "healthy"})
    wait_until(lambda: "starting" in stderr_of(parent), timeout=15)
    child.exec_run(["touch", "/tmp/ready"])
    assert wait_exit(parent) == 0, stderr_of(parent)
    child.reload()
    assert child.attrs["State"]["Health"]["Status"] == "healthy"
    assert "starting -> healthy" in stderr_of(parent)


def test_unhealthy_child_times_out_with_its_last_check(
    engine, docker_client, linkinit_image, run_container, unique
):
    """A child whose healthcheck fails: 75, naming the state and what the check said."""
    child = start_child(docker_client, linkinit_image, unique("db"),
                        healthcheck={**health("echo disk full; exit 1"), "retries": 1})
    if engine.runs_healthchecks:  # else linkinit's own first check makes it unhealthy
        wait_until(lambda: docker_client.api.inspect_container(child.id)["State"]["Health"]
                   ["Status"] == "unhealthy", timeout=15)
    parent = run_parent(run_container, unique("web"), ["--timeout", "2", "--", "true"],
                        labels={"link.db": child.name, "link.db.wait": "healthy"})
    assert wait_exit(parent) == 75
    assert (f"db ({child.name}) not ready after 2s (wait=healthy): unhealthy; "
            "last seen: health unhealthy, last check said: disk full") in stderr_of(parent)


def test_child_that_never_listens_times_out_naming_the_port(
    docker_client, linkinit_image, run_container, unique
):
    """wait=listening (the default) on a port nobody opens: 75 and 'port 6379 closed'."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    parent = run_parent(run_container, unique("web"), ["--timeout", "2", "--", "true"],
                        labels={"link.db": child.name})
    assert wait_exit(parent) == 75
    assert f"db ({child.name}) not ready after 2s (wait=listening): port 6379 closed" in (
        stderr_of(parent))


def test_child_exiting_during_the_wait_is_reported(
    docker_client, linkinit_image, run_container, unique
):
    """A child that dies while the parent waits shows as exited(3), then times out."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["sh", "-c", "until [ -f /tmp/go ]; do sleep 0.05; done; exit 3"])
    parent = run_parent(run_container, unique("web"), ["--timeout", "6", "--", "true"],
                        labels={"link.db": child.name})
    wait_until(lambda: "port 6379 closed" in stderr_of(parent), timeout=15)
    child.exec_run(["touch", "/tmp/go"])
    assert wait_exit(parent) == 75
    stderr = stderr_of(parent)
    assert "port 6379 closed -> exited(3)" in stderr
    assert f"db ({child.name}) not ready after 6s (wait=listening): exited(3)" in stderr


def test_optional_missing_child_is_skipped(run_container, unique):
    """link.<alias>.optional=true: an absent child is skipped and COMMAND runs at once."""
    parent = run_parent(run_container, unique("web"),
                        ["--timeout", "30", "--", "sh", "-c", "echo ${CACHE_PORT:-none}"],
                        labels={"link.cache": unique("absent"), "link.cache.optional": "true"})
    assert wait_exit(parent, timeout=10) == 0, stderr_of(parent)
    assert output(parent).strip() == "none"
    assert "is optional and absent: skipped" in stderr_of(parent)


@pytest.mark.engines("docker")
def test_quiet_prints_no_progress(docker_client, linkinit_image, run_container, unique):
    """--quiet: the wait is silent on stderr; the failure itself is still reported."""
    parent = run_parent(run_container, unique("web"),
                        ["--quiet", "--timeout", "1", "--", "true"],
                        labels={"link.db": unique("absent")})
    assert wait_exit(parent) == 75
    stderr = stderr_of(parent)
    assert "waiting for" not in stderr
    assert "not ready after 1s" in stderr


def test_docker_stop_during_the_wait_ends_at_once_with_143(run_container, unique):
    """A stop while waiting for children ends linkinit at once, as killed by SIGTERM."""
    parent = run_parent(run_container, unique("web"), ["--timeout", "60", "--", "true"],
                        labels={"link.db": unique("absent")})
    wait_until(lambda: "missing" in stderr_of(parent), timeout=15)
    started = time.monotonic()
    parent.stop(timeout=10)
    stopped_in = time.monotonic() - started
    parent.reload()
    assert parent.attrs["State"]["ExitCode"] == 143
    assert stopped_in < 5, f"docker stop took {stopped_in:.1f}s: the Engine had to kill it"
